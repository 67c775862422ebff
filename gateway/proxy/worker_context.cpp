#include "gateway/proxy/worker_context.h"

#include <random>

#include "gateway/proxy/exchange.h"

namespace gw::proxy {

WorkerContext::WorkerContext(unsigned index, event_base* base, plugin::Dispatcher& dispatcher,
                             const ServedConfig& served, const SharedServices& services,
                             ConnectionHome& home)
    : base_(base),
      dispatcher_(dispatcher),
      served_(served),
      home_(home),
      graveyard_(base),
      timeouts_(base),
      metrics_(served.metricsLayout) {
  const config::Limits& limits = served.config.limits;
  headLimits_ = {limits.request_line_bytes, limits.header_bytes, limits.header_count};
  upstreamHeadLimits_ = {limits.request_line_bytes, limits.upstream_header_bytes,
                         limits.upstream_header_count};
  headerTimeout_ = timeouts_.get(limits.client_header_timeout);
  bodyTimeout_ = timeouts_.get(limits.client_body_timeout);
  idleTimeout_ = timeouts_.get(limits.idle_timeout);
  const auto& upstreams = served.config.upstreams;
  for (std::size_t i = 0; i < upstreams.size(); ++i) {
    clusters_.push_back(std::make_unique<upstream::Cluster>(
        upstreams[i], served.backendAddresses[i], base, graveyard_, timeouts_, upstreamHeadLimits_,
        upstreamBlocks_, metrics_.upstreams[i], services.health, i, served.upstreamTls[i]));
  }
  auto addRoute = [&](const config::RouteConfig& route) {
    routeTimeouts_.push_back({timeouts_.get(route.timeouts.connect),
                              timeouts_.get(route.timeouts.read),
                              timeouts_.get(route.timeouts.send)});
    auto& views = pluginStateViews_.emplace_back();
    for (const auto& binding : route.plugins) {
      pluginStates_.push_back(
          plugin::factoryOf(binding).makeWorkerState(plugin::settingsOf(binding), dispatcher_));
      views.push_back(pluginStates_.back().get());
    }
  };
  for (const auto& route : served.config.routes) addRoute(route);
  addRoute(served.unrouted);  // at unroutedIndex()
  if (services.spans) spans_.emplace(*services.spans);
  if (services.accessLog) {
    accessLog_ = std::make_unique<observability::AccessLogBuffer>(*services.accessLog);
  }
  std::random_device random;
  idPrefix_ = (random() & 0xffffff00u) | (index & 0xffu);
}

WorkerContext::~WorkerContext() { shutDown(); }

void WorkerContext::shutDown() {
  flushTelemetry(true);  // the exchanges just cut are logged too
  backgroundFetches_.abortAll();
  for (auto& cluster : clusters_) cluster->closeAllIdle();
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
