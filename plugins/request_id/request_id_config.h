#pragma once
// The request_id plugin type: settings `header`, `accept_incoming`, `response_header`.

#include <memory>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::plugins::request_id {

class Factory final : public plugin::Factory {
 public:
  std::string_view name() const override { return "request_id"; }
  std::string_view kind() const override { return "request_id"; }
  std::shared_ptr<const plugin::RouteConfig> parse(
      const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const override;
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig& config,
                                         plugin::WorkerState*) const override;
};

}  // namespace gw::plugins::request_id
