#include "gateway/proxy/worker_context.h"

#include <algorithm>
#include <random>
#include <utility>

#include "gateway/proxy/exchange.h"

namespace gw::proxy {

WorkerContext::WorkerContext(unsigned index, event_base* base, plugin::Dispatcher& dispatcher,
                             const ServedConfig& served, upstream::HealthBoard& health,
                             std::shared_ptr<const void> keepAlive, uint64_t number,
                             const SharedServices& services, ConnectionHome& home)
    : index_(index),
      base_(base),
      dispatcher_(dispatcher),
      home_(home),
      graveyard_(base),
      timeouts_(base) {
  if (services.spans) spans_.emplace(*services.spans);
  if (services.accessLog) {
    accessLog_ = std::make_unique<observability::AccessLogBuffer>(*services.accessLog);
  }
  std::random_device random;
  idPrefix_ = (random() & 0xffffff00u) | (index & 0xffu);
  serve(served, health, std::move(keepAlive), number);
}

WorkerContext::~WorkerContext() { shutDown(); }

void WorkerContext::serve(const ServedConfig& served, upstream::HealthBoard& health,
                          std::shared_ptr<const void> keepAlive, uint64_t number) {
  applyLimits(served.config.limits);
  auto next = std::make_unique<Generation>(*this, served, health, std::move(keepAlive), number,
                                           current_.get());
  std::unique_ptr<Generation> previous = std::exchange(current_, std::move(next));
  if (!previous) return;
  Generation& replaced = *previous;
  replaced_.push_back(std::move(previous));
  replaced.replace();  // freed at once when no exchange holds it
}

void WorkerContext::applyLimits(const config::Limits& limits) {
  headLimits_ = {limits.request_line_bytes, limits.header_bytes, limits.header_count};
  upstreamHeadLimits_ = {limits.request_line_bytes, limits.upstream_header_bytes,
                         limits.upstream_header_count};
  headerTimeout_ = timeouts_.get(limits.client_header_timeout);
  bodyTimeout_ = timeouts_.get(limits.client_body_timeout);
  idleTimeout_ = timeouts_.get(limits.idle_timeout);
}

void WorkerContext::generationUnused(Generation& generation) {
  const auto found = std::find_if(replaced_.begin(), replaced_.end(),
                                  [&](const auto& owned) { return owned.get() == &generation; });
  if (found == replaced_.end()) return;
  current_->metrics().merge(generation.metrics());
  std::unique_ptr<Generation> owned = std::move(*found);
  replaced_.erase(found);
  graveyard_.bury(std::move(owned));
}

observability::WorkerMetrics WorkerContext::metricsTotal() const {
  observability::WorkerMetrics total = current_->metrics();
  for (const auto& generation : replaced_) total.merge(generation->metrics());
  return total;
}

void WorkerContext::shutDown() {
  flushTelemetry(true);  // the exchanges just cut are logged too
  backgroundFetches_.abortAll();
  for (const auto& cluster : current_->clusters()) cluster->closeAllIdle();
  for (const auto& generation : replaced_) {
    for (const auto& cluster : generation->clusters()) cluster->closeAllIdle();
  }
  graveyard_.reap();
}

int64_t WorkerContext::nowUs() const {
  timeval now;
  event_base_gettimeofday_cached(base_, &now);
  return int64_t(now.tv_sec) * 1'000'000 + now.tv_usec;
}

void WorkerContext::formatRequestId(uint64_t seq, char (&out)[kRequestIdLength]) const {
  // By hand: snprintf costs more than the rest of the access log line's ids together.
  constexpr char kHex[] = "0123456789abcdef";
  uint32_t prefix = idPrefix_;
  for (int i = 7; i >= 0; --i, prefix >>= 4) out[i] = kHex[prefix & 0xf];
  for (int i = 15; i >= 8; --i, seq >>= 4) out[i] = kHex[seq & 0xf];
}

std::string WorkerContext::formatRequestId(uint64_t seq) const {
  char text[kRequestIdLength];
  formatRequestId(seq, text);
  return {text, sizeof text};
}

void WorkerContext::flushTelemetry(bool force) {
  if (accessLog_ && (force || accessLog_->due(nowMs()))) accessLog_->flush();
  if (spans_) spans_->flush();
}

}  // namespace gw::proxy
