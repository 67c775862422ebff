#include "gateway/observability/metrics.h"

#include <algorithm>
#include <charconv>
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

// ---- merging ----

// Plugin counters are summed only between shards of the same families (a registry is fixed for
// the life of the process, so across a reload too).
void mergeRoute(RouteMetrics& into, const RouteMetrics& from, bool sameCounters) {
  for (const RouteMetrics::RequestCount& entry : from.requests) {
    requestCount(into.requests, entry.method, entry.code) += entry.count;
  }
  into.duration.merge(from.duration);
  into.request_bytes += from.request_bytes;
  into.response_bytes += from.response_bytes;
  if (!sameCounters) return;
  for (std::size_t i = 0; i < into.counters.size(); ++i) into.counters[i] += from.counters[i];
}

// Everything but the per-backend counters, which the caller matches up.
void mergeUpstreamTotals(UpstreamMetrics& into, const UpstreamMetrics& from) {
  into.duration.merge(from.duration);
  into.connects += from.connects;
  into.reuses += from.reuses;
  for (std::size_t i = 0; i < into.errors.size(); ++i) into.errors[i] += from.errors[i];
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

// ---- rendering ----

void appendSigned(std::string& out, int64_t value) {
  if (value < 0) out.push_back('-');
  appendUnsigned(out, value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value));
}

// Appends key="value" to `labels` (comma-separated), escaping the value as the format requires.
void appendLabel(std::string& labels, std::string_view key, std::string_view value) {
  if (!labels.empty()) labels.push_back(',');
  labels.append(key).append("=\"");
  for (const char c : value) {
    switch (c) {
      case '\\':
        labels.append("\\\\");
        break;
      case '"':
        labels.append("\\\"");
        break;
      case '\n':
        labels.append("\\n");
        break;
      default:
        labels.push_back(c);
    }
  }
  labels.push_back('"');
}

// The state of one render, handed to each family's writer.
struct Scrape {
  const WorkerMetrics& total;
  const GlobalMetrics& global;
  const ProcessSample& process;
  std::string& out;
  std::string labels;  // scratch, reused for every series

  void beginSample(std::string_view name) {
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.push_back(' ');
  }
  void sample(std::string_view name, uint64_t value) {
    beginSample(name);
    appendUnsigned(out, value);
    out.push_back('\n');
  }
  void signedSample(std::string_view name, int64_t value) {
    beginSample(name);
    appendSigned(out, value);
    out.push_back('\n');
  }
  void secondsSample(std::string_view name, uint64_t micros) {
    beginSample(name);
    appendMicrosAsSeconds(out, micros);
    out.push_back('\n');
  }

  // Leaves labels == route="NAME" for route i.
  void routeLabel(std::size_t i) {
    labels.clear();
    appendLabel(labels, "route", total.layout->routes[i]);
  }
  void upstreamLabel(std::size_t i) {
    labels.clear();
    appendLabel(labels, "upstream", total.layout->upstreams[i].name);
  }

  void perRoute(std::string_view name, uint64_t RouteMetrics::*counter) {
    for (std::size_t i = 0; i < total.routes.size(); ++i) {
      routeLabel(i);
      sample(name, total.routes[i].*counter);
    }
  }
  void perUpstream(std::string_view name, uint64_t UpstreamMetrics::*counter) {
    for (std::size_t i = 0; i < total.upstreams.size(); ++i) {
      upstreamLabel(i);
      sample(name, total.upstreams[i].*counter);
    }
  }
  void perBackend(std::string_view name, uint64_t BackendMetrics::*counter) {
    for (std::size_t u = 0; u < total.upstreams.size(); ++u) {
      for (std::size_t b = 0; b < total.upstreams[u].backends.size(); ++b) {
        upstreamLabel(u);
        appendLabel(labels, "backend", total.layout->upstreams[u].backends[b]);
        sample(name, total.upstreams[u].backends[b].*counter);
      }
    }
  }
  void unlabelled(std::string_view name, uint64_t value) {
    labels.clear();
    sample(name, value);
  }
};

struct Family {
  std::string_view name;
  std::string_view type;
  std::string_view help;
  void (*write)(Scrape&, std::string_view name);
};

// The core's families, in exposition order: the lists both the renderer and metricFamilyNames()
// use.
constexpr Family kRouteFamilies[] = {
    {"gatewayd_http_requests_total", "counter",
     "HTTP requests answered, by route, method and status code.",
     [](Scrape& s, std::string_view name) {
       char code[8];
       for (std::size_t i = 0; i < s.total.routes.size(); ++i) {
         for (const RouteMetrics::RequestCount& entry : s.total.routes[i].requests) {
           s.routeLabel(i);
           appendLabel(s.labels, "method", kMethodNames[entry.method]);
           appendLabel(
               s.labels, "code",
               std::string_view(code, std::to_chars(code, code + sizeof code, entry.code).ptr));
           s.sample(name, entry.count);
         }
       }
     }},
    {"gatewayd_http_request_duration_seconds", "histogram",
     "Time from the first request byte to the last response byte, by route.",
     [](Scrape& s, std::string_view name) {
       for (std::size_t i = 0; i < s.total.routes.size(); ++i) {
         s.routeLabel(i);
         s.total.routes[i].duration.appendPrometheus(s.out, name, s.labels);
       }
     }},
    {"gatewayd_request_bytes_total", "counter", "Request bytes received from clients, by route.",
     [](Scrape& s, std::string_view name) { s.perRoute(name, &RouteMetrics::request_bytes); }},
    {"gatewayd_response_bytes_total", "counter", "Response bytes sent to clients, by route.",
     [](Scrape& s, std::string_view name) { s.perRoute(name, &RouteMetrics::response_bytes); }},
};

// After the route families above, the plugins' (MetricsLayout::routeCounters), then these.
constexpr Family kLaterFamilies[] = {
    {"gatewayd_upstream_request_duration_seconds", "histogram",
     "Time from sending a request upstream to its complete response, by upstream.",
     [](Scrape& s, std::string_view name) {
       for (std::size_t i = 0; i < s.total.upstreams.size(); ++i) {
         s.upstreamLabel(i);
         s.total.upstreams[i].duration.appendPrometheus(s.out, name, s.labels);
       }
     }},
    {"gatewayd_upstream_connections", "gauge",
     "Upstream connections by state: active (carrying a request) or idle (pooled).",
     [](Scrape& s, std::string_view name) {
       for (std::size_t i = 0; i < s.total.upstreams.size(); ++i) {
         s.upstreamLabel(i);
         appendLabel(s.labels, "state", "active");
         s.signedSample(name, s.total.upstreams[i].active_connections);
         s.upstreamLabel(i);
         appendLabel(s.labels, "state", "idle");
         s.signedSample(name, s.total.upstreams[i].idle_connections);
       }
     }},
    {"gatewayd_upstream_connects_total", "counter", "New upstream connections opened.",
     [](Scrape& s, std::string_view name) { s.perUpstream(name, &UpstreamMetrics::connects); }},
    {"gatewayd_upstream_reuses_total", "counter",
     "Upstream requests sent on a pooled keep-alive connection.",
     [](Scrape& s, std::string_view name) { s.perUpstream(name, &UpstreamMetrics::reuses); }},
    {"gatewayd_upstream_errors_total", "counter", "Upstream failures by upstream and kind.",
     [](Scrape& s, std::string_view name) {
       for (std::size_t i = 0; i < s.total.upstreams.size(); ++i) {
         for (std::size_t k = 0; k < kUpstreamErrorKindNames.size(); ++k) {
           s.upstreamLabel(i);
           appendLabel(s.labels, "kind", kUpstreamErrorKindNames[k]);
           s.sample(name, s.total.upstreams[i].errors[k]);
         }
       }
     }},
    {"gatewayd_upstream_backend_requests_total", "counter", "Requests sent to each backend.",
     [](Scrape& s, std::string_view name) { s.perBackend(name, &BackendMetrics::requests); }},
    {"gatewayd_upstream_backend_errors_total", "counter", "Failed requests to each backend.",
     [](Scrape& s, std::string_view name) { s.perBackend(name, &BackendMetrics::errors); }},
    {"gatewayd_upstream_backend_healthy", "gauge",
     "1 if the backend is in the load balancer, 0 if health checks took it out.",
     [](Scrape& s, std::string_view name) {
       const auto& health = s.global.backend_healthy;
       for (std::size_t u = 0; u < s.total.layout->upstreams.size() && u < health.size(); ++u) {
         const auto& backends = s.total.layout->upstreams[u].backends;
         for (std::size_t b = 0; b < backends.size() && b < health[u].size(); ++b) {
           s.upstreamLabel(u);
           appendLabel(s.labels, "backend", backends[b]);
           s.sample(name, health[u][b] ? 1 : 0);
         }
       }
     }},
    {"gatewayd_downstream_connections", "gauge", "Client connections open now.",
     [](Scrape& s, std::string_view name) {
       s.labels.clear();
       s.signedSample(name, s.total.downstream_connections);
     }},
    {"gatewayd_downstream_connections_accepted_total", "counter", "Client connections accepted.",
     [](Scrape& s, std::string_view name) {
       s.unlabelled(name, s.total.downstream_connections_accepted);
     }},
    {"gatewayd_config_reloads_total", "counter", "Configuration reloads by result.",
     [](Scrape& s, std::string_view name) {
       s.labels.clear();
       appendLabel(s.labels, "result", "success");
       s.sample(name, s.global.config_reloads_success);
       s.labels.clear();
       appendLabel(s.labels, "result", "failure");
       s.sample(name, s.global.config_reloads_failure);
     }},
    {"gatewayd_config_generation", "gauge",
     "Generation of the live configuration (1 at start, +1 per successful reload).",
     [](Scrape& s, std::string_view name) { s.unlabelled(name, s.global.config_generation); }},
    {"gatewayd_log_dropped_total", "counter",
     "Access log lines dropped because the writer could not keep up.",
     [](Scrape& s, std::string_view name) { s.unlabelled(name, s.global.log_lines_dropped); }},
    {"gatewayd_trace_spans_exported_total", "counter", "Trace spans exported over OTLP.",
     [](Scrape& s, std::string_view name) { s.unlabelled(name, s.global.trace_spans_exported); }},
    {"gatewayd_trace_spans_dropped_total", "counter",
     "Trace spans dropped (export queue full or collector failing).",
     [](Scrape& s, std::string_view name) { s.unlabelled(name, s.global.trace_spans_dropped); }},
    {"gatewayd_build_info", "gauge", "Always 1; the version is in the label.",
     [](Scrape& s, std::string_view name) {
       s.labels.clear();
       appendLabel(s.labels, "version", s.global.version);
       s.sample(name, 1);
     }},
    {"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
     [](Scrape& s, std::string_view name) {
       s.labels.clear();
       s.secondsSample(name, s.process.cpu_micros);
     }},
    {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
     [](Scrape& s, std::string_view name) { s.unlabelled(name, s.process.resident_memory_bytes); }},
    {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
     [](Scrape& s, std::string_view name) { s.unlabelled(name, s.process.virtual_memory_bytes); }},
    {"process_open_fds", "gauge", "Number of open file descriptors.",
     [](Scrape& s, std::string_view name) { s.unlabelled(name, s.process.open_fds); }},
    {"process_max_fds", "gauge", "Maximum number of open file descriptors.",
     [](Scrape& s, std::string_view name) { s.unlabelled(name, s.process.max_fds); }},
    {"process_start_time_seconds", "gauge",
     "Start time of the process since unix epoch in seconds.",
     [](Scrape& s, std::string_view name) {
       s.labels.clear();
       s.secondsSample(name, s.process.start_time_micros);
     }},
};

void writeHeader(std::string& out, std::string_view name, std::string_view type,
                 std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void writeFamilies(Scrape& scrape, std::span<const Family> families) {
  for (const Family& family : families) {
    writeHeader(scrape.out, family.name, family.type, family.help);
    family.write(scrape, family.name);
  }
}

// Each route's series of each plugin family, from the route's block of plugin counters.
void writePluginFamilies(Scrape& s) {
  std::size_t first = 0;  // the family's first slot
  for (const CounterFamily& family : s.total.layout->routeCounters) {
    writeHeader(s.out, family.name, "counter", family.help);
    for (std::size_t i = 0; i < s.total.routes.size(); ++i) {
      for (std::size_t v = 0; v < family.series(); ++v) {
        s.routeLabel(i);
        if (!family.label.empty()) appendLabel(s.labels, family.label, family.values[v]);
        s.sample(family.name, s.total.routes[i].counters[first + v]);
      }
    }
    first += family.series();
  }
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
  for (const config::RouteConfig& route : config.routes) layout->routes.push_back(route.name);
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
  // An out-of-range index would index past kMethodNames at render; count it as OTHER instead.
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
}

void renderPrometheus(const WorkerMetrics& total, const GlobalMetrics& global,
                      const ProcessSample& process, std::string& out) {
  out.clear();
  Scrape scrape{total, global, process, out, {}};
  writeFamilies(scrape, kRouteFamilies);
  writePluginFamilies(scrape);
  writeFamilies(scrape, kLaterFamilies);
}

std::vector<std::string_view> metricFamilyNames(const MetricsLayout& layout) {
  std::vector<std::string_view> names;
  for (const Family& family : kRouteFamilies) names.push_back(family.name);
  for (const CounterFamily& family : layout.routeCounters) names.push_back(family.name);
  for (const Family& family : kLaterFamilies) names.push_back(family.name);
  return names;
}

}  // namespace gw::observability
