#pragma once
// The security_headers plugin type: settings `headers`, `upstream_values`, `hide_powered_by`,
// `hide_server`.

#include <memory>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::plugins::security_headers {

class Factory final : public plugin::Factory {
 public:
  std::string_view name() const override { return "security_headers"; }
  std::shared_ptr<const plugin::RouteConfig> parse(
      const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const override;
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig& config,
                                         plugin::WorkerState*) const override;
};

}  // namespace gw::plugins::security_headers
