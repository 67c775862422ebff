#include "gateway/config/model.h"

namespace gw::config {

std::string Diagnostic::format() const {
  return where.file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": " +
         message;
}

}  // namespace gw::config
