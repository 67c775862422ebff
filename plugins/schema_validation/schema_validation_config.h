#pragma once
// The schema_validation plugin type: the only file of the plugin that sees YAML. Settings:
//   schema_file: conf/schemas/order.json   # or `schema:` inline, a YAML mapping (not both)
//   max_body_bytes: 1MiB                    # bodies over this are the core's 413
//   max_depth: 64                           # deeper JSON nesting -> 400 VALIDATION_FAILED
//   max_validation_steps: 50000000          # more work -> 413 BODY_TOO_COMPLEX
//   max_validation_memory: 16MiB            # more validator state -> 413 BODY_TOO_COMPLEX
//   query:   {page: {type: integer, minimum: 1, required: true}, sort: {enum: [asc, desc]}}
//   headers: {X-Client: {pattern: "^[a-z]+$", required: true}}

#include "gateway/plugin/plugin.h"
#include "plugins/schema_validation/schema_validation.h"

namespace gw::plugins::schema_validation {

class Factory final : public plugin::Factory {
 public:
  std::string_view name() const override { return "schema_validation"; }
  std::shared_ptr<const plugin::RouteConfig> parse(
      const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const override;
  std::unique_ptr<plugin::WorkerState> makeWorkerState(const plugin::RouteConfig& config,
                                                       plugin::Dispatcher&) const override;
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig& config,
                                         plugin::WorkerState* state) const override;
  std::span<const observability::CounterFamily> counters() const override {
    return kCounterFamilies;
  }
};

}  // namespace gw::plugins::schema_validation
