#pragma once
// The ip_filter plugin type: settings `allow` and `deny`, lists of CIDR blocks or addresses.

#include <memory>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::plugins::ip_filter {

class Factory final : public plugin::Factory {
 public:
  std::string_view name() const override { return "ip_filter"; }
  std::shared_ptr<const plugin::RouteConfig> parse(
      const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const override;
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig& config,
                                         plugin::WorkerState*) const override;
};

}  // namespace gw::plugins::ip_filter
