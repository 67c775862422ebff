#pragma once
// The rate_limit plugin type: settings `limits` (required: list of {requests, window, name}),
// `key`, `missing_key`, `headers`, `mode`, `max_keys`, `max_key_bytes`, and for counters in Redis
// `store`, `on_redis_error`, `scope`, `batch`, `max_batch`, `memo_keys`. Each instance gets its own
// counter table, so a route may list rate_limit twice (a per-IP tier before auth, a per-key tier
// after it).

#include <memory>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"
#include "plugins/rate_limit/rate_limit.h"

namespace gw::plugins::rate_limit {

class Factory final : public plugin::Factory {
 public:
  std::string_view name() const override { return "rate_limit"; }
  bool allowsRepeats() const override { return true; }
  std::shared_ptr<const plugin::RouteConfig> parse(
      const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const override;
  std::unique_ptr<plugin::WorkerState> makeWorkerState(
      const plugin::RouteConfig& config, plugin::Dispatcher& dispatcher) const override;
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig& config,
                                         plugin::WorkerState*) const override;
  std::span<const observability::CounterFamily> counters() const override {
    return kCounterFamilies;
  }
  std::span<const std::string_view> logFields() const override { return kLogFields; }
};

}  // namespace gw::plugins::rate_limit
