#pragma once
// The cors plugin type: settings `allow_origins`, `allow_methods`, `allow_headers`,
// `expose_headers`, `allow_credentials`, `max_age`.

#include <memory>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::plugins::cors {

class Factory final : public plugin::Factory {
 public:
  std::string_view name() const override { return "cors"; }
  std::shared_ptr<const plugin::RouteConfig> parse(
      const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const override;
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig& config,
                                         plugin::WorkerState*) const override;
};

}  // namespace gw::plugins::cors
