// The one list of built-in plugin types. Each plugin is added here by an explicit line: a static
// library drops object files nothing refers to, so self-registering globals would vanish.

#include <memory>

#include "gateway/plugin/registry.h"
#include "plugins/cache/cache_config.h"
#include "plugins/cors/cors_config.h"
#include "plugins/ip_filter/ip_filter_config.h"
#include "plugins/rate_limit/rate_limit_config.h"
#include "plugins/request_id/request_id_config.h"
#include "plugins/schema_validation/schema_validation_config.h"
#include "plugins/security_headers/security_headers_config.h"

namespace gw::plugin {

const Registry& Registry::builtin() {
  static const Registry registry = [] {
    Registry r;
    r.add(std::make_unique<plugins::request_id::Factory>());
    r.add(std::make_unique<plugins::security_headers::Factory>());
    r.add(std::make_unique<plugins::rate_limit::Factory>());
    r.add(std::make_unique<plugins::schema_validation::Factory>());
    r.add(std::make_unique<plugins::ip_filter::Factory>());
    r.add(std::make_unique<plugins::cors::Factory>());
    r.add(std::make_unique<plugins::cache::Factory>());
    return r;
  }();
  return registry;
}

}  // namespace gw::plugin
