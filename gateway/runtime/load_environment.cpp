#include "gateway/runtime/load_environment.h"

#include <algorithm>

#include "gateway/observability/access_log.h"
#include "gateway/observability/otlp_exporter.h"

namespace gw::runtime {

config::LoadEnvironment loadEnvironment(const plugin::Registry& plugins) {
  return {
      plugins,
      [&plugins](std::string_view name) {
        const auto pluginFields = plugins.logFields();
        return observability::AccessLogFormat::fieldByName(name).has_value() ||
               std::find(pluginFields.begin(), pluginFields.end(), name) != pluginFields.end();
      },
      [](std::string_view endpoint) -> std::optional<std::string> {
        const auto parsed = observability::parseOtlpEndpoint(endpoint);
        if (parsed.ok()) return std::nullopt;
        return parsed.error().message;
      },
  };
}

}  // namespace gw::runtime
