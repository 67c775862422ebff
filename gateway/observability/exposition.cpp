#include "gateway/observability/exposition.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <limits>
#include <string_view>
#include <utility>

namespace gw::observability {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// What one scrape collects from, handed to each family's collector.
struct Sources {
  const WorkerMetrics& total;
  const GlobalMetrics& global;
  const ProcessSample& process;

  ClientMetric::Label route(std::size_t i) const { return {"route", total.layout->routes[i]}; }
  ClientMetric::Label upstream(std::size_t i) const {
    return {"upstream", total.layout->upstreams[i].name};
  }
};

double seconds(uint64_t micros) { return static_cast<double>(micros) / 1e6; }

// A sample of a counter or gauge family, whichever `family` is.
void addSample(MetricFamily& family, Labels labels, double value) {
  ClientMetric& metric = family.metric.emplace_back();
  metric.label = std::move(labels);
  (family.type == MetricType::Counter ? metric.counter.value : metric.gauge.value) = value;
}

void addHistogram(MetricFamily& family, Labels labels, const Histogram& histogram) {
  ClientMetric& metric = family.metric.emplace_back();
  metric.label = std::move(labels);
  metric.histogram = clientHistogram(histogram);
}

void perRoute(const Sources& s, MetricFamily& family, uint64_t RouteMetrics::*counter) {
  for (std::size_t i = 0; i < s.total.routes.size(); ++i) {
    addSample(family, {s.route(i)}, static_cast<double>(s.total.routes[i].*counter));
  }
}

void perUpstream(const Sources& s, MetricFamily& family, uint64_t UpstreamMetrics::*counter) {
  for (std::size_t i = 0; i < s.total.upstreams.size(); ++i) {
    addSample(family, {s.upstream(i)}, static_cast<double>(s.total.upstreams[i].*counter));
  }
}

// One series per upstream and value of `label`, counted in `counts` (indexed like `names`).
template <std::size_t N>
void perUpstreamAnd(const Sources& s, MetricFamily& family, std::string_view label,
                    const std::array<std::string_view, N>& names,
                    std::array<uint64_t, N> UpstreamMetrics::*counts) {
  for (std::size_t i = 0; i < s.total.upstreams.size(); ++i) {
    for (std::size_t k = 0; k < N; ++k) {
      addSample(family, {s.upstream(i), {std::string(label), std::string(names[k])}},
                static_cast<double>((s.total.upstreams[i].*counts)[k]));
    }
  }
}

void perBackend(const Sources& s, MetricFamily& family, uint64_t BackendMetrics::*counter) {
  for (std::size_t u = 0; u < s.total.upstreams.size(); ++u) {
    const auto& backends = s.total.layout->upstreams[u].backends;
    for (std::size_t b = 0; b < backends.size(); ++b) {
      addSample(family, {s.upstream(u), {"backend", backends[b]}},
                static_cast<double>(s.total.upstreams[u].backends[b].*counter));
    }
  }
}

using EjectionList = std::vector<std::pair<std::string, uint64_t>>;
void perEjectionReason(const Sources& s, MetricFamily& family,
                       EjectionList GlobalMetrics::Ejections::*list) {
  const auto& ejections = s.global.upstream_ejections;
  for (std::size_t u = 0; u < s.total.upstreams.size() && u < ejections.size(); ++u) {
    for (const auto& [reason, count] : ejections[u].*list) {
      addSample(family, {s.upstream(u), {"reason", reason}}, static_cast<double>(count));
    }
  }
}

void unlabelled(MetricFamily& family, uint64_t value) {
  addSample(family, {}, static_cast<double>(value));
}

struct Family {
  std::string_view name;
  MetricType type;
  std::string_view help;
  void (*collect)(const Sources&, MetricFamily&);
};

// The core's families, in exposition order.
constexpr Family kRouteFamilies[] = {
    {"gatewayd_http_requests_total", MetricType::Counter,
     "HTTP requests answered, by route, method and status code.",
     [](const Sources& s, MetricFamily& family) {
       for (std::size_t i = 0; i < s.total.routes.size(); ++i) {
         for (const RouteMetrics::RequestCount& entry : s.total.routes[i].requests) {
           addSample(family,
                     {s.route(i),
                      {"method", std::string(kMethodNames[entry.method])},
                      {"code", std::to_string(entry.code)}},
                     static_cast<double>(entry.count));
         }
       }
     }},
    {"gatewayd_http_request_duration_seconds", MetricType::Histogram,
     "Time from the first request byte to the last response byte, by route.",
     [](const Sources& s, MetricFamily& family) {
       for (std::size_t i = 0; i < s.total.routes.size(); ++i) {
         addHistogram(family, {s.route(i)}, s.total.routes[i].duration);
       }
     }},
    {"gatewayd_request_bytes_total", MetricType::Counter,
     "Request bytes received from clients, by route.",
     [](const Sources& s, MetricFamily& family) {
       perRoute(s, family, &RouteMetrics::request_bytes);
     }},
    {"gatewayd_response_bytes_total", MetricType::Counter,
     "Response bytes sent to clients, by route.",
     [](const Sources& s, MetricFamily& family) {
       perRoute(s, family, &RouteMetrics::response_bytes);
     }},
};

// The routes with a concurrency limit (routes[].concurrency), one series each.
void perLimitedRoute(const Sources& s, MetricFamily& family, double (*value)(const RouteMetrics&)) {
  for (std::size_t i = 0; i < s.total.routes.size(); ++i) {
    if (s.total.layout->isLimited(i)) addSample(family, {s.route(i)}, value(s.total.routes[i]));
  }
}

// Only when some route has a concurrency limit, after the route families.
constexpr Family kRouteQueueFamilies[] = {
    {"gatewayd_route_queue_depth", MetricType::Gauge,
     "Requests waiting for one of the route's concurrency slots, by route.",
     [](const Sources& s, MetricFamily& family) {
       perLimitedRoute(s, family, [](const RouteMetrics& route) {
         return static_cast<double>(route.queue_joined - route.queue_left);
       });
     }},
    {"gatewayd_route_queued_total", MetricType::Counter,
     "Requests that waited for one of the route's concurrency slots, by route.",
     [](const Sources& s, MetricFamily& family) {
       perLimitedRoute(s, family, [](const RouteMetrics& route) {
         return static_cast<double>(route.queue_joined);
       });
     }},
    {"gatewayd_route_queue_wait_seconds_total", MetricType::Counter,
     "Time requests spent waiting for the route's concurrency slots, summed, by route.",
     [](const Sources& s, MetricFamily& family) {
       perLimitedRoute(s, family,
                       [](const RouteMetrics& route) { return seconds(route.queue_wait_us); });
     }},
    {"gatewayd_route_overloaded_total", MetricType::Counter,
     "Requests refused with ROUTE_OVERLOADED, by route and why (queue_full, queue_timeout).",
     [](const Sources& s, MetricFamily& family) {
       for (std::size_t i = 0; i < s.total.routes.size(); ++i) {
         if (!s.total.layout->isLimited(i)) continue;
         for (std::size_t k = 0; k < kRouteOverloadNames.size(); ++k) {
           addSample(family, {s.route(i), {"reason", std::string(kRouteOverloadNames[k])}},
                     static_cast<double>(s.total.routes[i].overloaded[k]));
         }
       }
     }},
};

// After the route families above, the plugins' (MetricsLayout::routeCounters), then these.
constexpr Family kLaterFamilies[] = {
    {"gatewayd_upstream_request_duration_seconds", MetricType::Histogram,
     "Time from sending a request upstream to its complete response, by upstream.",
     [](const Sources& s, MetricFamily& family) {
       for (std::size_t i = 0; i < s.total.upstreams.size(); ++i) {
         addHistogram(family, {s.upstream(i)}, s.total.upstreams[i].duration);
       }
     }},
    {"gatewayd_upstream_connections", MetricType::Gauge,
     "Upstream connections by state: active (carrying a request) or idle (pooled).",
     [](const Sources& s, MetricFamily& family) {
       for (std::size_t i = 0; i < s.total.upstreams.size(); ++i) {
         const UpstreamMetrics& upstream = s.total.upstreams[i];
         addSample(family, {s.upstream(i), {"state", "active"}},
                   static_cast<double>(upstream.active_connections));
         addSample(family, {s.upstream(i), {"state", "idle"}},
                   static_cast<double>(upstream.idle_connections));
       }
     }},
    {"gatewayd_upstream_connects_total", MetricType::Counter, "New upstream connections opened.",
     [](const Sources& s, MetricFamily& family) {
       perUpstream(s, family, &UpstreamMetrics::connects);
     }},
    {"gatewayd_upstream_reuses_total", MetricType::Counter,
     "Upstream requests sent on a pooled keep-alive connection.",
     [](const Sources& s, MetricFamily& family) {
       perUpstream(s, family, &UpstreamMetrics::reuses);
     }},
    {"gatewayd_upstream_errors_total", MetricType::Counter,
     "Upstream failures by upstream and kind.",
     [](const Sources& s, MetricFamily& family) {
       perUpstreamAnd(s, family, "kind", kUpstreamErrorKindNames, &UpstreamMetrics::errors);
     }},
    {"gatewayd_upstream_overloaded_total", MetricType::Counter,
     "Requests refused with UPSTREAM_OVERLOADED, by upstream and the cap they met.",
     [](const Sources& s, MetricFamily& family) {
       perUpstreamAnd(s, family, "cap", kCapNames, &UpstreamMetrics::overloaded);
     }},
    {"gatewayd_upstream_retries_total", MetricType::Counter,
     "Retries started toward an upstream, by what failed the attempt before.",
     [](const Sources& s, MetricFamily& family) {
       perUpstreamAnd(s, family, "reason", kRetryReasonNames, &UpstreamMetrics::retries);
     }},
    {"gatewayd_upstream_retry_budget_exhausted_total", MetricType::Counter,
     "Retries the upstream's retry budget refused (the failure went to the client).",
     [](const Sources& s, MetricFamily& family) {
       perUpstream(s, family, &UpstreamMetrics::retry_budget_exhausted);
     }},
    {"gatewayd_upstream_per_try_timeouts_total", MetricType::Counter,
     "Attempts that ran out of their route's per-try timeout.",
     [](const Sources& s, MetricFamily& family) {
       perUpstream(s, family, &UpstreamMetrics::per_try_timeouts);
     }},
    {"gatewayd_upstream_backend_requests_total", MetricType::Counter,
     "Requests sent to each backend.",
     [](const Sources& s, MetricFamily& family) {
       perBackend(s, family, &BackendMetrics::requests);
     }},
    {"gatewayd_upstream_backend_errors_total", MetricType::Counter,
     "Failed requests to each backend.",
     [](const Sources& s, MetricFamily& family) {
       perBackend(s, family, &BackendMetrics::errors);
     }},
    {"gatewayd_upstream_backend_healthy", MetricType::Gauge,
     "1 if the backend is in the load balancer, 0 if health checks took it out.",
     [](const Sources& s, MetricFamily& family) {
       const auto& health = s.global.backend_healthy;
       for (std::size_t u = 0; u < s.total.layout->upstreams.size() && u < health.size(); ++u) {
         const auto& backends = s.total.layout->upstreams[u].backends;
         for (std::size_t b = 0; b < backends.size() && b < health[u].size(); ++b) {
           addSample(family, {s.upstream(u), {"backend", backends[b]}}, health[u][b] ? 1 : 0);
         }
       }
     }},
    {"gatewayd_upstream_ejections_total", MetricType::Counter,
     "Backends ejected by outlier detection, by upstream and reason.",
     [](const Sources& s, MetricFamily& family) {
       perEjectionReason(s, family, &GlobalMetrics::Ejections::done);
     }},
    {"gatewayd_upstream_ejections_refused_total", MetricType::Counter,
     "Ejections outlier detection asked for but the ejection cap refused, by upstream and reason.",
     [](const Sources& s, MetricFamily& family) {
       perEjectionReason(s, family, &GlobalMetrics::Ejections::refused);
     }},
    {"gatewayd_downstream_connections", MetricType::Gauge, "Client connections open now.",
     [](const Sources& s, MetricFamily& family) {
       addSample(family, {}, static_cast<double>(s.total.downstream_connections));
     }},
    {"gatewayd_downstream_connections_accepted_total", MetricType::Counter,
     "Client connections accepted.",
     [](const Sources& s, MetricFamily& family) {
       unlabelled(family, s.total.downstream_connections_accepted);
     }},
    {"gatewayd_tls_handshakes_total", MetricType::Counter,
     "TLS handshakes completed on the listeners, resumed ones included.",
     [](const Sources& s, MetricFamily& family) { unlabelled(family, s.total.tls_handshakes); }},
    {"gatewayd_tls_sessions_resumed_total", MetricType::Counter,
     "TLS handshakes that resumed a session with a ticket instead of a full handshake.",
     [](const Sources& s, MetricFamily& family) {
       unlabelled(family, s.total.tls_sessions_resumed);
     }},
    {"gatewayd_tls_handshake_failures_total", MetricType::Counter,
     "TLS handshakes on the listeners that failed, by reason.",
     [](const Sources& s, MetricFamily& family) {
       for (std::size_t r = 0; r < net::kHandshakeFailureNames.size(); ++r) {
         addSample(family, {{"reason", std::string(net::kHandshakeFailureNames[r])}},
                   static_cast<double>(s.total.tls_handshake_failures[r]));
       }
     }},
    {"gatewayd_config_reloads_total", MetricType::Counter, "Configuration reloads by result.",
     [](const Sources& s, MetricFamily& family) {
       addSample(family, {{"result", "success"}},
                 static_cast<double>(s.global.config_reloads_success));
       addSample(family, {{"result", "failure"}},
                 static_cast<double>(s.global.config_reloads_failure));
     }},
    {"gatewayd_config_generation", MetricType::Gauge,
     "Generation of the live configuration (1 at start, +1 per successful reload).",
     [](const Sources& s, MetricFamily& family) {
       unlabelled(family, s.global.config_generation);
     }},
    {"gatewayd_log_dropped_total", MetricType::Counter,
     "Access log lines dropped because the writer could not keep up.",
     [](const Sources& s, MetricFamily& family) {
       unlabelled(family, s.global.log_lines_dropped);
     }},
    {"gatewayd_trace_spans_exported_total", MetricType::Counter, "Trace spans exported over OTLP.",
     [](const Sources& s, MetricFamily& family) {
       unlabelled(family, s.global.trace_spans_exported);
     }},
    {"gatewayd_trace_spans_dropped_total", MetricType::Counter,
     "Trace spans dropped (export queue full or collector failing).",
     [](const Sources& s, MetricFamily& family) {
       unlabelled(family, s.global.trace_spans_dropped);
     }},
    {"gatewayd_build_info", MetricType::Gauge, "Always 1; the version is in the label.",
     [](const Sources& s, MetricFamily& family) {
       addSample(family, {{"version", s.global.version}}, 1);
     }},
    {"process_cpu_seconds_total", MetricType::Counter,
     "Total user and system CPU time spent in seconds.",
     [](const Sources& s, MetricFamily& family) {
       addSample(family, {}, seconds(s.process.cpu_micros));
     }},
    {"process_resident_memory_bytes", MetricType::Gauge, "Resident memory size in bytes.",
     [](const Sources& s, MetricFamily& family) {
       unlabelled(family, s.process.resident_memory_bytes);
     }},
    {"process_virtual_memory_bytes", MetricType::Gauge, "Virtual memory size in bytes.",
     [](const Sources& s, MetricFamily& family) {
       unlabelled(family, s.process.virtual_memory_bytes);
     }},
    {"process_open_fds", MetricType::Gauge, "Number of open file descriptors.",
     [](const Sources& s, MetricFamily& family) { unlabelled(family, s.process.open_fds); }},
    {"process_max_fds", MetricType::Gauge, "Maximum number of open file descriptors.",
     [](const Sources& s, MetricFamily& family) { unlabelled(family, s.process.max_fds); }},
    {"process_start_time_seconds", MetricType::Gauge,
     "Start time of the process since unix epoch in seconds.",
     [](const Sources& s, MetricFamily& family) {
       addSample(family, {}, seconds(s.process.start_time_micros));
     }},
};

// With a `redis:` block only (GlobalMetrics::redis_workers set).
constexpr Family kRedisFamilies[] = {
    {"gatewayd_redis_round_trip_seconds", MetricType::Histogram,
     "Time from sending a Redis command to its reply, by what the command was for.",
     [](const Sources& s, MetricFamily& family) {
       for (std::size_t c = 0; c < kRedisCommandNames.size(); ++c) {
         addHistogram(family, {{"command", std::string(kRedisCommandNames[c])}},
                      s.total.redis.round_trip[c]);
       }
     }},
    {"gatewayd_redis_errors_total", MetricType::Counter,
     "Redis commands and connection attempts that failed, by reason.",
     [](const Sources& s, MetricFamily& family) {
       for (std::size_t r = 0; r < kRedisErrorNames.size(); ++r) {
         addSample(family, {{"reason", std::string(kRedisErrorNames[r])}},
                   static_cast<double>(s.total.redis.errors[r]));
       }
     }},
    {"gatewayd_redis_rejected_total", MetricType::Counter,
     "Redis commands refused without being sent: the breaker is open (down) or max_pending "
     "commands are in flight (overloaded).",
     [](const Sources& s, MetricFamily& family) {
       for (std::size_t r = 0; r < kRedisRejectionNames.size(); ++r) {
         addSample(family, {{"reason", std::string(kRedisRejectionNames[r])}},
                   static_cast<double>(s.total.redis.rejected[r]));
       }
     }},
    {"gatewayd_redis_reconnects_total", MetricType::Counter,
     "Redis connection attempts after each worker's first.",
     [](const Sources& s, MetricFamily& family) { unlabelled(family, s.total.redis.reconnects); }},
    {"gatewayd_redis_pending", MetricType::Gauge, "Redis commands in flight, over all workers.",
     [](const Sources& s, MetricFamily& family) {
       addSample(family, {}, static_cast<double>(s.total.redis.pending));
     }},
    {"gatewayd_redis_workers", MetricType::Gauge,
     "Workers by the state of their Redis connection's circuit breaker.",
     [](const Sources& s, MetricFamily& family) {
       for (std::size_t i = 0; i < kRedisStateNames.size(); ++i) {
         addSample(family, {{"state", std::string(kRedisStateNames[i])}},
                   static_cast<double>((*s.global.redis_workers)[i]));
       }
     }},
};

void collectFamilies(const Sources& s, std::span<const Family> families,
                     std::vector<MetricFamily>& out) {
  for (const Family& family : families) {
    MetricFamily& collected = out.emplace_back();
    collected.name = family.name;
    collected.help = family.help;
    collected.type = family.type;
    family.collect(s, collected);
  }
}

// Each route's series of each plugin family, from the route's block of plugin counters.
void collectPluginFamilies(const Sources& s, std::vector<MetricFamily>& out) {
  std::size_t first = 0;  // the family's first slot
  for (const CounterFamily& family : s.total.layout->routeCounters) {
    MetricFamily& collected = out.emplace_back();
    collected.name = family.name;
    collected.help = family.help;
    collected.type = MetricType::Counter;
    for (std::size_t i = 0; i < s.total.routes.size(); ++i) {
      for (std::size_t v = 0; v < family.series(); ++v) {
        Labels labels{s.route(i)};
        if (!family.label.empty()) {
          labels.push_back({std::string(family.label), std::string(family.values[v])});
        }
        addSample(collected, std::move(labels),
                  static_cast<double>(s.total.routes[i].counters[first + v]));
      }
    }
    first += family.series();
  }
}

}  // namespace

std::vector<MetricFamily> ScrapeCollectable::Collect() const {
  const Sources sources{total_, global_, process_};
  std::vector<MetricFamily> families;
  families.reserve(std::size(kRouteFamilies) + total_.layout->routeCounters.size() +
                   std::size(kLaterFamilies));
  collectFamilies(sources, kRouteFamilies, families);
  const auto& limited = total_.layout->limited;
  if (std::find(limited.begin(), limited.end(), 1) != limited.end()) {
    collectFamilies(sources, kRouteQueueFamilies, families);
  }
  collectPluginFamilies(sources, families);
  collectFamilies(sources, kLaterFamilies, families);
  if (global_.redis_workers) collectFamilies(sources, kRedisFamilies, families);
  return families;
}

ClientMetric::Histogram clientHistogram(const Histogram& histogram) {
  ClientMetric::Histogram out;
  out.sample_count = histogram.count();
  out.sample_sum = seconds(histogram.sumMicros());
  out.bucket.reserve(Histogram::kBucketCount);
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < Histogram::kBucketCount; ++i) {
    cumulative += histogram.bucket(i);
    const double bound = i < Histogram::kBoundsMicros.size()
                             ? seconds(Histogram::kBoundsMicros[i])
                             : std::numeric_limits<double>::infinity();
    out.bucket.push_back({.cumulative_count = cumulative, .upper_bound = bound});
  }
  return out;
}

std::string textExposition(const prometheus::Collectable& collectable) {
  return prometheus::TextSerializer().Serialize(collectable.Collect());
}

}  // namespace gw::observability
