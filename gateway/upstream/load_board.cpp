#include "gateway/upstream/load_board.h"

#include <algorithm>

namespace gw::upstream {

namespace {

bool reached(uint32_t cap, const std::atomic<int64_t>& count) {
  return cap != 0 && count.load(std::memory_order_relaxed) >= int64_t(cap);
}

// Which of `caps` (0: none) `counters` are at.
template <typename Counters>
std::optional<Cap> capReached(const config::CapLimits& caps, const Counters& counters,
                              bool newConnection) {
  if (reached(caps.max_requests, counters.requests)) return Cap::Requests;
  if (!newConnection) return std::nullopt;
  if (reached(caps.max_pending, counters.pending)) return Cap::Pending;
  if (reached(caps.max_connections, counters.connections)) return Cap::Connections;
  return std::nullopt;
}

}  // namespace

LoadBoard::LoadBoard(const config::UpstreamCaps& caps,
                     const std::optional<config::RetryBudget>& budget, std::size_t backends)
    : upstreamCaps_(caps.upstream),
      backendCaps_(caps.per_backend),
      budget_(budget ? *budget : config::RetryBudget{.percent = 0}),
      counting_(caps.any() || budget.has_value()),
      backends_(std::make_unique<Counters[]>(backends)) {}

std::optional<Cap> LoadBoard::overCap(std::size_t backend, bool newConnection) const {
  if (auto cap = capReached(backendCaps_, backends_[backend], newConnection)) return cap;
  return capReached(upstreamCaps_, total_, newConnection);
}

bool LoadBoard::connectionsAtCap(std::size_t backend) const {
  return reached(backendCaps_.max_connections, backends_[backend].connections) ||
         reached(upstreamCaps_.max_connections, total_.connections);
}

void LoadBoard::add(std::size_t backend, std::atomic<int64_t> Counters::*counter, int64_t delta) {
  (total_.*counter).fetch_add(delta, std::memory_order_relaxed);
  (backends_[backend].*counter).fetch_add(delta, std::memory_order_relaxed);
}

bool LoadBoard::startRetry() {
  const int64_t active = total_.requests.load(std::memory_order_relaxed);
  const int64_t allowed =
      std::max<int64_t>(budget_.min_concurrency, active * budget_.percent / 100);
  if (retries_.fetch_add(1, std::memory_order_relaxed) < allowed) return true;
  retries_.fetch_sub(1, std::memory_order_relaxed);
  return false;
}

}  // namespace gw::upstream
