#pragma once
// What the process has in flight toward one upstream, shared by every worker: open connections,
// connects in progress and requests, for the upstream and for each backend, checked against the
// upstream's caps (Envoy's circuit breakers, nginx's max_conns) and its retry budget. Like the
// HealthBoard, the counters are relaxed atomics, each set on a cache line of its own: a worker
// checks a cap with a load and counts with one fetch_add, never a lock. Check and count are two
// steps, so workers racing for the last slot may overshoot a cap by at most one each (as Envoy's).
// A reload that leaves the upstream as written keeps its board (runtime/snapshot), so requests in
// flight keep counting where they were admitted.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "gateway/config/model.h"

namespace gw::upstream {

// Named by observability::kCapNames, in this order.
enum class Cap : uint8_t { Connections, Pending, Requests };

class LoadBoard {
 public:
  // `budget`: none bounds the retries in flight by the default min_concurrency alone, and
  // without caps either, nothing but retries is counted (the cluster skips the board).
  LoadBoard(const config::UpstreamCaps& caps, const std::optional<config::RetryBudget>& budget,
            std::size_t backends);
  LoadBoard(const LoadBoard&) = delete;
  LoadBoard& operator=(const LoadBoard&) = delete;

  // Whether the cluster counts its requests and connections here: the caps or the budget read
  // them.
  bool counting() const { return counting_; }

  // The cap one more request to `backend` would go over, nullopt when it stays within all of
  // them. `newConnection`: the request needs a connection of its own (none idle to reuse), so the
  // connection and pending caps apply too.
  std::optional<Cap> overCap(std::size_t backend, bool newConnection) const;
  // The backend or the upstream has as many connections open as its cap allows.
  bool connectionsAtCap(std::size_t backend) const;

  // The counts, as the cluster leases, opens and closes connections.
  void requestStarted(std::size_t backend) { add(backend, &Counters::requests, 1); }
  void requestEnded(std::size_t backend) { add(backend, &Counters::requests, -1); }
  void connectStarted(std::size_t backend) {
    add(backend, &Counters::connections, 1);
    add(backend, &Counters::pending, 1);
  }
  void connectEnded(std::size_t backend) { add(backend, &Counters::pending, -1); }
  void connectionClosed(std::size_t backend) { add(backend, &Counters::connections, -1); }

  // Envoy's retry budget: one more retry may start while the retries in flight stay below
  // `percent` of the requests in flight (at least `min_concurrency`). True: it started, and
  // retryEnded() must follow.
  bool startRetry();
  void retryEnded() { retries_.fetch_sub(1, std::memory_order_relaxed); }

  // For the gauges and tests: what is in flight now (backend npos: the whole upstream).
  static constexpr std::size_t kWhole = static_cast<std::size_t>(-1);
  int64_t connections(std::size_t backend = kWhole) const {
    return at(backend).connections.load(std::memory_order_relaxed);
  }
  int64_t pending(std::size_t backend = kWhole) const {
    return at(backend).pending.load(std::memory_order_relaxed);
  }
  int64_t requests(std::size_t backend = kWhole) const {
    return at(backend).requests.load(std::memory_order_relaxed);
  }
  int64_t retries() const { return retries_.load(std::memory_order_relaxed); }

 private:
  struct alignas(64) Counters {
    std::atomic<int64_t> connections{0};
    std::atomic<int64_t> pending{0};
    std::atomic<int64_t> requests{0};
  };
  void add(std::size_t backend, std::atomic<int64_t> Counters::*counter, int64_t delta);
  const Counters& at(std::size_t backend) const {
    return backend == kWhole ? total_ : backends_[backend];
  }

  const config::CapLimits upstreamCaps_;
  const config::CapLimits backendCaps_;
  const config::RetryBudget budget_;
  const bool counting_;
  Counters total_;
  std::unique_ptr<Counters[]> backends_;
  alignas(64) std::atomic<int64_t> retries_{0};
};

}  // namespace gw::upstream
