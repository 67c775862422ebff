// The one list of built-in plugin types. Each plugin is added here by an explicit line: a static
// library drops object files nothing refers to, so self-registering globals would vanish.

#include <memory>

#include "gateway/plugin/registry.h"
#include "plugins/request_id/request_id_config.h"
#include "plugins/security_headers/security_headers_config.h"

namespace gw::plugin {

const Registry& Registry::builtin() {
  static const Registry registry = [] {
    Registry r;
    r.add(std::make_unique<plugins::request_id::Factory>());
    r.add(std::make_unique<plugins::security_headers::Factory>());
    // Plugins being written in parallel join here, one line each:
    //   rate_limit, schema_validation, cors, ip_filter
    return r;
  }();
  return registry;
}

}  // namespace gw::plugin
