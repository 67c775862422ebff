#pragma once
// The plugin instances of one exchange, created from the route's bindings, and the order the
// phases run them in: the YAML order, in every phase. The chain owns its place in a phase: a
// phase stops at the first plugin that does not return Continue; after a Stop, the next run() of
// the same phase goes on from the plugin after it (Envoy's continueDecoding); any other run starts
// the phase over from the first plugin. What Stop and Respond mean in each phase is the exchange's
// (see plugin.h). A chain outlives its exchange (workers recycle them): a plugin that recycle()s
// itself serves the next exchange of the same binding instead of a fresh instance.

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/plugin/plugin.h"

namespace gw::proxy {

class FilterChain {
 public:
  FilterChain() = default;
  ~FilterChain();
  // Readies this exchange's plugin instances (after finish() of the previous exchange, if any):
  // the recycled ones of the same bindings, and new ones.
  void start(const std::vector<config::PluginBinding>& bindings,
             std::span<plugin::WorkerState* const> states);
  FilterChain(const FilterChain&) = delete;
  FilterChain& operator=(const FilterChain&) = delete;

  enum class Phase : uint8_t { RequestHeaders, RequestBody, ResponseHeaders, ResponseBody };

  bool empty() const { return instances_.empty(); }
  // Runs `phase` (with `body` and `end` in the body phases). Continue: every plugin continued.
  // Stop or Respond: the status of the plugin that stopped the phase; after a Stop, the next
  // run() of this phase begins with the plugin after it.
  plugin::Status run(Phase phase, plugin::Context& ctx, std::string_view body = {},
                     bool end = false);
  // The status the last plugin returned cannot be honoured in this phase: the next run() goes on
  // with the plugin after it, as after a Stop.
  void passOver() { interrupted_ = true; }
  // The name of the plugin that returned the last Stop or Respond, for diagnostics.
  std::string_view stoppedBy() const;
  // onComplete for every plugin, once; then onDestroy; then each keeps itself or is destroyed.
  void finish(const plugin::Context& ctx) noexcept;

 private:
  // Recycling an instance is sound only for the settings and worker state it was made with:
  // holding the settings keeps their address from naming other settings later.
  struct Instance {
    std::unique_ptr<plugin::Plugin> plugin;  // null: destroyed at finish(), created at start()
    std::shared_ptr<const config::PluginSettings> settings;
    plugin::WorkerState* state = nullptr;
  };
  void destroyAll() noexcept;

  std::vector<Instance> instances_;
  std::size_t next_ = 0;
  Phase phase_ = Phase::RequestHeaders;
  const std::vector<config::PluginBinding>* bindings_ = nullptr;
  bool interrupted_ = false;  // the phase stopped at a Stop: run() goes on from next_
  bool finished_ = false;
};

}  // namespace gw::proxy
