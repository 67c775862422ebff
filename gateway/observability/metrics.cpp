#include "gateway/observability/metrics.h"

#include <algorithm>
#include <utility>

#include "gateway/config/model.h"

namespace gw::observability {

namespace {

constexpr int kOtherMethod = static_cast<int>(kMethodNames.size()) - 1;
constexpr std::size_t kNotFound = static_cast<std::size_t>(-1);

// The counter of (method, code), inserted in (method, code) order when first seen.
uint64_t& requestCount(std::vector<RouteMetrics::RequestCount>& requests, uint8_t method,
                       uint16_t code) {
  auto at = requests.begin();
  while (at != requests.end() && std::pair(at->method, at->code) < std::pair(method, code)) ++at;
  if (at == requests.end() || at->method != method || at->code != code) {
    at = requests.insert(at, RouteMetrics::RequestCount{method, code, 0});
  }
  return at->count;
}

// Plugin counters are summed only between shards of the same families (a registry is fixed for
// the life of the process, so across a reload too).
void mergeRoute(RouteMetrics& into, const RouteMetrics& from, bool sameCounters) {
  for (const RouteMetrics::RequestCount& entry : from.requests) {
    requestCount(into.requests, entry.method, entry.code) += entry.count;
  }
  into.duration.merge(from.duration);
  into.request_bytes += from.request_bytes;
  into.response_bytes += from.response_bytes;
  into.queue_joined += from.queue_joined;
  into.queue_left += from.queue_left;
  into.queue_wait_us += from.queue_wait_us;
  for (std::size_t i = 0; i < into.overloaded.size(); ++i) into.overloaded[i] += from.overloaded[i];
  if (!sameCounters) return;
  for (std::size_t i = 0; i < into.counters.size(); ++i) into.counters[i] += from.counters[i];
}

// Everything but the per-backend counters, which the caller matches up.
void mergeUpstreamTotals(UpstreamMetrics& into, const UpstreamMetrics& from) {
  into.duration.merge(from.duration);
  into.connects += from.connects;
  into.reuses += from.reuses;
  for (std::size_t i = 0; i < into.errors.size(); ++i) into.errors[i] += from.errors[i];
  for (std::size_t i = 0; i < into.overloaded.size(); ++i) into.overloaded[i] += from.overloaded[i];
  for (std::size_t i = 0; i < into.retries.size(); ++i) into.retries[i] += from.retries[i];
  into.retry_budget_exhausted += from.retry_budget_exhausted;
  into.per_try_timeouts += from.per_try_timeouts;
  into.active_connections += from.active_connections;
  into.idle_connections += from.idle_connections;
}

void mergeBackend(BackendMetrics& into, const BackendMetrics& from) {
  into.requests += from.requests;
  into.errors += from.errors;
}

std::size_t indexOf(const std::vector<std::string>& names, std::string_view name) {
  const auto at = std::find(names.begin(), names.end(), name);
  return at == names.end() ? kNotFound : static_cast<std::size_t>(at - names.begin());
}

std::size_t upstreamIndexOf(const MetricsLayout& layout, std::string_view name) {
  for (std::size_t i = 0; i < layout.upstreams.size(); ++i) {
    if (layout.upstreams[i].name == name) return i;
  }
  return kNotFound;
}

}  // namespace

std::size_t MetricsLayout::routeCounterSlots() const {
  std::size_t slots = 0;
  for (const CounterFamily& family : routeCounters) slots += family.series();
  return slots;
}

std::shared_ptr<const MetricsLayout> MetricsLayout::fromConfig(
    const config::Config& config, std::span<const CounterFamily> routeCounters) {
  auto layout = std::make_shared<MetricsLayout>();
  layout->routeCounters.assign(routeCounters.begin(), routeCounters.end());
  for (const config::RouteConfig& route : config.routes) {
    layout->routes.push_back(route.name);
    layout->limited.push_back(route.concurrency ? 1 : 0);
  }
  for (const config::UpstreamConfig& upstream : config.upstreams) {
    Upstream& names = layout->upstreams.emplace_back();
    names.name = upstream.name;
    for (const config::BackendConfig& backend : upstream.backends) {
      names.backends.push_back(config::hostPort(backend.host, backend.port));
    }
  }
  return layout;
}

void RouteMetrics::countRequest(int methodIndex, int code) {
  // An out-of-range index would index past kMethodNames at scrape; count it as OTHER instead.
  const int method = methodIndex >= 0 && methodIndex < kOtherMethod ? methodIndex : kOtherMethod;
  ++requestCount(requests, static_cast<uint8_t>(method), static_cast<uint16_t>(code));
}

WorkerMetrics::WorkerMetrics(std::shared_ptr<const MetricsLayout> layoutIn)
    : layout(std::move(layoutIn)),
      routes(layout->routes.size()),
      upstreams(layout->upstreams.size()) {
  for (RouteMetrics& route : routes) route.counters.resize(layout->routeCounterSlots());
  for (std::size_t i = 0; i < upstreams.size(); ++i) {
    upstreams[i].backends.resize(layout->upstreams[i].backends.size());
  }
}

int WorkerMetrics::methodIndex(std::string_view method) {
  for (int i = 0; i < kOtherMethod; ++i) {
    if (kMethodNames[static_cast<std::size_t>(i)] == method) return i;
  }
  return kOtherMethod;
}

void WorkerMetrics::merge(const WorkerMetrics& other) {
  const bool sameLayout = layout == other.layout || *layout == *other.layout;
  const bool sameCounters = sameLayout || layout->routeCounters == other.layout->routeCounters;
  for (std::size_t from = 0; from < other.routes.size(); ++from) {
    const std::size_t into =
        sameLayout ? from : indexOf(layout->routes, other.layout->routes[from]);
    if (into != kNotFound) mergeRoute(routes[into], other.routes[from], sameCounters);
  }
  for (std::size_t from = 0; from < other.upstreams.size(); ++from) {
    const MetricsLayout::Upstream& names = other.layout->upstreams[from];
    const std::size_t into = sameLayout ? from : upstreamIndexOf(*layout, names.name);
    if (into == kNotFound) continue;
    mergeUpstreamTotals(upstreams[into], other.upstreams[from]);
    for (std::size_t b = 0; b < names.backends.size(); ++b) {
      const std::size_t target =
          sameLayout ? b : indexOf(layout->upstreams[into].backends, names.backends[b]);
      if (target != kNotFound) {
        mergeBackend(upstreams[into].backends[target], other.upstreams[from].backends[b]);
      }
    }
  }
  downstream_connections += other.downstream_connections;
  downstream_connections_accepted += other.downstream_connections_accepted;
  tls_handshakes += other.tls_handshakes;
  tls_sessions_resumed += other.tls_sessions_resumed;
  for (std::size_t i = 0; i < tls_handshake_failures.size(); ++i) {
    tls_handshake_failures[i] += other.tls_handshake_failures[i];
  }
  redis.merge(other.redis);
}

void RedisMetrics::merge(const RedisMetrics& other) {
  for (std::size_t i = 0; i < round_trip.size(); ++i) round_trip[i].merge(other.round_trip[i]);
  for (std::size_t i = 0; i < errors.size(); ++i) errors[i] += other.errors[i];
  for (std::size_t i = 0; i < rejected.size(); ++i) rejected[i] += other.rejected[i];
  reconnects += other.reconnects;
  pending += other.pending;
}

}  // namespace gw::observability
