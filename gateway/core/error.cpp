#include "gateway/core/error.h"

namespace gw::core {

int httpStatus(ErrorCode code) {
  switch (code) {
#define GW_ERROR_STATUS(name, status, wire) \
  case ErrorCode::name:                     \
    return status;
    GW_ERROR_CODES(GW_ERROR_STATUS)
#undef GW_ERROR_STATUS
  }
  return 500;
}

std::string_view wireCode(ErrorCode code) {
  switch (code) {
#define GW_ERROR_WIRE(name, status, wire) \
  case ErrorCode::name:                   \
    return wire;
    GW_ERROR_CODES(GW_ERROR_WIRE)
#undef GW_ERROR_WIRE
  }
  return "INTERNAL_ERROR";
}

}  // namespace gw::core
