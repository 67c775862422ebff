#include "gateway/runtime/load_environment.h"

#include "gateway/observability/access_log.h"
#include "gateway/observability/otlp_exporter.h"

namespace gw::runtime {

config::LoadEnvironment loadEnvironment(const config::PluginCatalogue& plugins) {
  return {
      plugins,
      [](std::string_view name) {
        return observability::AccessLogFormat::fieldByName(name).has_value();
      },
      [](std::string_view endpoint) -> std::optional<std::string> {
        const auto parsed = observability::parseOtlpEndpoint(endpoint);
        if (parsed.ok()) return std::nullopt;
        return parsed.error().message;
      },
  };
}

}  // namespace gw::runtime
