#pragma once
// One loaded configuration as one worker serves it: the routes and their plugins' per-worker
// state, the upstream clusters with their pools, the route timeouts and the metric shard they
// count into. A worker serves new requests on its current generation; an exchange keeps the one
// it began on until it ends (a Hold), so a reload never changes a request in flight. A generation
// left behind by a reload lives until its last hold is released; its counts then join the
// current shard. What a reload left unchanged is carried into the next generation rather than
// rebuilt: clusters of an upstream written the same (pool and balancer state), and the worker
// state of a plugin entry whose settings object the reload kept (runtime/reload_plan.h).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/core/graveyard.h"
#include "gateway/net/socket.h"
#include "gateway/net/tls_client.h"
#include "gateway/observability/access_log.h"
#include "gateway/observability/metrics.h"
#include "gateway/plugin/plugin.h"
#include "gateway/proxy/route_gate.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/health.h"

namespace gw::proxy {

class WorkerContext;
class Router;

// What the proxy reads of one loaded configuration. runtime::Snapshot owns all of it; the
// generation built on it keeps it alive.
struct ServedConfig {
  const config::Config& config;
  const Router& router;
  // Per upstream, per backend (as in config), resolved at load.
  const std::vector<std::vector<net::SocketAddress>>& backendAddresses;
  // Per upstream: its TLS client side, null for plain HTTP.
  const std::vector<std::shared_ptr<const net::TlsClientContext>>& upstreamTls;
  // Per upstream: the process-wide counts its caps and retry budget read.
  const std::vector<std::shared_ptr<upstream::LoadBoard>>& upstreamLoads;
  // Per route: the process-wide concurrency gate of a route with `concurrency:`, else null.
  const std::vector<std::shared_ptr<RouteGate>>& routeGates;
  std::shared_ptr<const observability::MetricsLayout> metricsLayout;
  const observability::AccessLogFormat* accessLogFormat;  // null when the access log is off
  // The global plugin list, for answers no route took; at index config.routes.size().
  const config::RouteConfig& unrouted;
};

class Generation final : public core::Retirable {
 public:
  // `keepAlive` owns what `served` and `health` refer to. `previous`: the generation this one
  // replaces on the same worker, whose unchanged parts it takes over (null at start).
  Generation(WorkerContext& worker, const ServedConfig& served, upstream::HealthBoard& health,
             std::shared_ptr<const void> keepAlive, uint64_t number, Generation* previous);
  ~Generation() override;
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Keeps a generation alive while an exchange (or a fetch started by one) uses it.
  class Hold {
   public:
    Hold() = default;
    explicit Hold(Generation& generation) : generation_(&generation) { ++generation.holds_; }
    Hold(Hold&& other) noexcept : generation_(std::exchange(other.generation_, nullptr)) {}
    Hold& operator=(Hold&& other) noexcept {
      if (this != &other) {
        release();
        generation_ = std::exchange(other.generation_, nullptr);
      }
      return *this;
    }
    ~Hold() { release(); }
    Generation* get() const { return generation_; }
    Generation& operator*() const { return *generation_; }
    Generation* operator->() const { return generation_; }
    explicit operator bool() const { return generation_ != nullptr; }

   private:
    void release() {
      if (generation_ && --generation_->holds_ == 0 && generation_->replaced_) {
        generation_->unused();
      }
      generation_ = nullptr;
    }
    Generation* generation_ = nullptr;
  };

  WorkerContext& worker() const { return worker_; }
  uint64_t number() const { return number_; }
  const config::Config& config() const { return served_.config; }
  const Router& router() const { return served_.router; }
  const observability::MetricsLayout& metricsLayout() const { return *served_.metricsLayout; }
  const observability::AccessLogFormat* accessLogFormat() const { return served_.accessLogFormat; }
  const config::RouteConfig& unrouted() const { return served_.unrouted; }
  std::size_t unroutedIndex() const { return served_.config.routes.size(); }

  // The shard this generation's exchanges count into (this worker's thread only).
  observability::WorkerMetrics& metrics() { return metrics_; }
  const observability::WorkerMetrics& metrics() const { return metrics_; }
  std::span<const std::shared_ptr<upstream::Cluster>> clusters() const { return clusters_; }
  upstream::Cluster& cluster(std::size_t upstreamIndex) { return *clusters_[upstreamIndex]; }
  const upstream::Timeouts& routeTimeouts(std::size_t routeIndex) const {
    return routeTimeouts_[routeIndex];
  }
  // This worker's queue for the route's concurrency gate (null: the route has no limit).
  RouteQueue* routeQueue(std::size_t routeIndex) const { return routeQueues_[routeIndex].get(); }
  // This worker's state of each plugin binding of a route (null where a plugin keeps none).
  std::span<plugin::WorkerState* const> pluginStates(std::size_t routeIndex) const {
    return pluginStateViews_[routeIndex];
  }

  std::span<const std::shared_ptr<RouteQueue>> routeQueues() const { return routeQueues_; }

  // A newer generation took over for new requests: this one ends when its last hold goes.
  void replace();
  bool replaced() const { return replaced_; }

 private:
  // Replaced and no longer held: the worker folds its counts into the current shard.
  void unused();

  WorkerContext& worker_;
  ServedConfig served_;
  std::shared_ptr<const void> keepAlive_;
  uint64_t number_;
  observability::WorkerMetrics metrics_;  // before the clusters, which count into it
  std::vector<std::shared_ptr<upstream::Cluster>> clusters_;
  std::vector<upstream::Timeouts> routeTimeouts_;
  // Per route (the unrouted one last, always null); shared with the next generation when the
  // reload kept the route's gate.
  std::vector<std::shared_ptr<RouteQueue>> routeQueues_;
  // Per route (the unrouted list last), per binding; shared with the next generation when the
  // reload kept the binding's settings.
  std::vector<std::vector<std::shared_ptr<plugin::WorkerState>>> pluginStates_;
  std::vector<std::vector<plugin::WorkerState*>> pluginStateViews_;
  std::size_t holds_ = 0;
  bool replaced_ = false;
};

}  // namespace gw::proxy
