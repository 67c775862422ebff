#pragma once
// One upstream as one worker sees it: its backends, their idle keep-alive connections and the
// load balancer's state. Owned by one worker thread; nothing here is shared or locked.

#include <event2/event.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/core/fast_random.h"
#include "gateway/core/graveyard.h"
#include "gateway/core/timeouts.h"
#include "gateway/http/parser.h"
#include "gateway/net/socket.h"
#include "gateway/net/tls_client.h"
#include "gateway/observability/metrics.h"
#include "gateway/upstream/connection.h"
#include "gateway/upstream/health.h"
#include "gateway/upstream/load_board.h"
#include "gateway/upstream/maglev.h"

namespace gw::upstream {

struct Backend {
  const config::BackendConfig* config = nullptr;
  net::SocketAddress address;
  std::string authority;  // "host:port", the Host sent when a route does not preserve it
  int64_t currentWeight = 0;
  int64_t downUntilMs = 0;  // skipped by the balancer until then
  // Connections leased to exchanges now. Each carries one request (HTTP/1.1), so this is also
  // the backend's outstanding requests from this worker: what least-request balancing and the
  // per-backend caps read.
  std::size_t leased = 0;
  std::vector<std::unique_ptr<Connection>> idle;  // most recently used last
  net::TlsSession tlsSession;  // TLS upstream: the last session, resumed by the next connection
};

class Cluster {
 public:
  Cluster(const config::UpstreamConfig& config, std::vector<net::SocketAddress> addresses,
          event_base* base, core::Graveyard& graveyard, core::TimeoutCache& timeouts,
          const http::HeadLimits& responseLimits, core::BlockRecycler& blocks,
          observability::UpstreamMetrics& metrics, HealthBoard& health, std::size_t index,
          std::shared_ptr<const net::TlsClientContext> tls = nullptr);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const config::UpstreamConfig& config() const { return *config_; }
  std::size_t backendCount() const { return backends_.size(); }

  // The upstream's load-balancing policy, over backends the health board finds usable, not
  // marked down and not in `tried` (bit i = backend i); when every usable candidate is marked
  // down, the one down longest is tried anyway.
  //  - round_robin: smooth weighted round robin (as nginx);
  //  - least_request: the less loaded (leased / weight) of two random candidates (Envoy's
  //    LEAST_REQUEST, power of two choices);
  //  - hash: the backend owning `hashKey` in the Maglev table; when it is out, the key's own
  //    next hash, and so on, so only an absent backend's keys move and they come back with it.
  //    Without a key (no such header or cookie), or when the probes find nobody: round robin.
  Backend* pick(uint64_t tried, std::optional<uint64_t> hashKey = std::nullopt);
  // False when the health board has every backend out: the request gets its 503 at once.
  bool anyUsable() const { return health_->anyUsable(index_, nowMs()); }
  // The outcome of an exchange with a backend, for passive health checks and outlier detection.
  // Each returns why the backend was ejected when this report ejected it.
  std::optional<EjectionReason> reportResponse(const Backend& backend, int status) {
    // A success needs no clock (reading the loop's cached time takes its lock).
    if (status < 500) {
      health_->reportSuccess(index_, indexOf(backend));
      return std::nullopt;
    }
    return health_->reportResponse(index_, indexOf(backend), status, nowMs());
  }
  std::optional<EjectionReason> reportFailure(const Backend& backend) {
    return health_->reportFailure(index_, indexOf(backend), nowMs());
  }
  std::size_t indexOf(const Backend& backend) const;

  // The process-wide counts and caps of this upstream. Set once, before the first lease: a
  // cluster a reload keeps keeps its board too. Requests and connections are counted there only
  // when the upstream has caps or a retry budget.
  void shareLoad(LoadBoard& load) {
    load_ = &load;
    counting_ = load.counting() ? &load : nullptr;
  }
  LoadBoard* load() { return load_; }
  // The cap a request to `backend` would go over (nullopt: none), checked before it leases a
  // connection, so a backend at its cap can be passed over for another. A connection of this
  // worker's pool leaves the connection and pending caps out of it.
  // `freshConnection`: the request may not take a pooled one.
  std::optional<Cap> overCap(const Backend& backend, bool freshConnection) const {
    if (!counting_) return std::nullopt;
    return counting_->overCap(indexOf(backend), freshConnection || backend.idle.empty());
  }
  // A connect this worker started completed.
  void connected(Connection& connection);

  // An idle pooled connection to this backend, or nullptr.
  std::unique_ptr<Connection> takeIdle(Backend& backend);
  // A new connection whose connect is in progress; nullptr with err set on immediate failure.
  std::unique_ptr<Connection> connect(Backend& backend, int& err);
  // A connection whose exchange finished cleanly: pooled if there is room, closed otherwise.
  void release(std::unique_ptr<Connection> connection);
  // Closes a leased connection (error, or not reusable). Memory is freed after the callbacks
  // unwind.
  void retire(std::unique_ptr<Connection> connection);
  // An idle connection expired or the backend closed it.
  void dropIdle(Connection& connection);
  void closeAllIdle();
  // A reload left this upstream as written: the worker's next generation takes this cluster, its
  // pool and balancer state included, bound to that generation's copy of the same settings, its
  // metric shard and its health board (where the upstream may sit at another index).
  // New connections take that generation's TLS client side (its CA bundle read again).
  void rebind(const config::UpstreamConfig& config, observability::UpstreamMetrics& metrics,
              HealthBoard& health, std::size_t index,
              std::shared_ptr<const net::TlsClientContext> tls);

  void markDown(Backend& backend);
  void markUp(Backend& backend) { backend.downUntilMs = 0; }

  const timeval* idleTimeout() const { return idleTimeout_; }
  event_base* base() const { return base_; }
  observability::UpstreamMetrics& metrics() { return *metrics_; }
  // Connections leased to exchanges now, and parked in the pool: the gauges, read at scrape.
  std::size_t leasedConnections() const { return leased_; }
  std::size_t idleConnections() const;

 private:
  int64_t nowMs() const;
  void bury(std::unique_ptr<Connection> connection);
  bool atConnectionCap(const Backend& backend) const {
    return counting_ && counting_->connectionsAtCap(indexOf(backend));
  }
  // Whether backend i may be picked: not tried, usable, not marked down. One only marked down
  // becomes `leastRecentlyDown` when it has been down longer than that one.
  bool ready(std::size_t i, uint64_t tried, int64_t now, Backend*& leastRecentlyDown);
  Backend* pickRoundRobin(uint64_t tried, int64_t now);
  Backend* pickLeastRequest(uint64_t tried, int64_t now);
  Backend* pickHashed(uint64_t tried, uint64_t key, int64_t now);

  const config::UpstreamConfig* config_;
  event_base* base_;
  core::Graveyard& graveyard_;
  const http::HeadLimits& responseLimits_;
  core::BlockRecycler& blocks_;
  const timeval* idleTimeout_;
  std::vector<Backend> backends_;
  observability::UpstreamMetrics* metrics_;
  HealthBoard* health_;
  std::size_t index_;  // of this upstream in the config, and on the health board
  std::shared_ptr<const net::TlsClientContext> tls_;  // null: plain HTTP
  std::size_t leased_ = 0;
  LoadBoard* load_ = nullptr;
  LoadBoard* counting_ = nullptr;  // load_ when it counts, else null
  config::BalancingPolicy policy_;
  std::optional<MaglevTable> maglev_;  // policy hash
  std::vector<uint32_t> candidates_;   // least_request's scratch: backend indices
  core::FastRandom random_;
};

}  // namespace gw::upstream
