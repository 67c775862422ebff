#include "gateway/observability/metrics.h"

#include <doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gateway/config/model.h"
#include "gateway/plugin/registry.h"

namespace obs = gw::observability;
using obs::WorkerMetrics;

namespace {

// The plugins' counter families, as gatewayd registers them: the cache's (slots 0-3, by
// result), rate_limit's two (4, 5), schema_validation's (6).
std::span<const obs::CounterFamily> pluginFamilies() {
  return gw::plugin::Registry::builtin().counterFamilies();
}
constexpr std::size_t kCacheHit = 0, kCacheStale = 2, kRejections = 4, kShadowExceeded = 5,
                      kSchemaFailures = 6;

std::shared_ptr<const obs::MetricsLayout> tinyLayout() {
  auto layout = std::make_shared<obs::MetricsLayout>();
  layout->routes = {"r"};
  layout->routeCounters.assign(pluginFamilies().begin(), pluginFamilies().end());
  layout->upstreams = {{"u", {"127.0.0.1:9000"}}};
  return layout;
}

std::string render(const WorkerMetrics& total, const obs::GlobalMetrics& global = {},
                   const obs::ProcessSample& process = {}) {
  std::string out;
  obs::renderPrometheus(total, global, process, out);
  return out;
}

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("methodIndex maps the fixed set and everything else to OTHER") {
  for (std::size_t i = 0; i < obs::kMethodNames.size(); ++i) {
    CHECK(WorkerMetrics::methodIndex(obs::kMethodNames[i]) == static_cast<int>(i));
  }
  const int other = static_cast<int>(obs::kMethodNames.size()) - 1;
  CHECK(obs::kMethodNames[static_cast<std::size_t>(other)] == "OTHER");
  CHECK(WorkerMetrics::methodIndex("get") == other);  // methods are case-sensitive
  CHECK(WorkerMetrics::methodIndex("PROPFIND") == other);
  CHECK(WorkerMetrics::methodIndex("") == other);
  CHECK(WorkerMetrics::methodIndex("GETX") == other);
}

TEST_CASE("countRequest keeps one sparse entry per (method, code), in order") {
  obs::RouteMetrics route;
  route.countRequest(WorkerMetrics::methodIndex("POST"), 201);
  route.countRequest(WorkerMetrics::methodIndex("GET"), 404);
  route.countRequest(WorkerMetrics::methodIndex("GET"), 200);
  route.countRequest(WorkerMetrics::methodIndex("GET"), 404);
  route.countRequest(99, 200);  // out of range: OTHER
  REQUIRE(route.requests.size() == 4);
  CHECK(route.requests[0].method == 0);
  CHECK(route.requests[0].code == 200);
  CHECK(route.requests[0].count == 1);
  CHECK(route.requests[1].code == 404);
  CHECK(route.requests[1].count == 2);
  CHECK(route.requests[2].method == 2);
  CHECK(route.requests[2].code == 201);
  CHECK(route.requests[3].method == obs::kMethodNames.size() - 1);
}

TEST_CASE("WorkerMetrics sizes its vectors from the layout") {
  auto layout = std::make_shared<obs::MetricsLayout>();
  layout->routes = {"a", "b", "c"};
  layout->upstreams = {{"x", {"h:1", "h:2"}}, {"y", {}}};
  const WorkerMetrics shard(layout);
  CHECK(shard.routes.size() == 3);
  REQUIRE(shard.upstreams.size() == 2);
  CHECK(shard.upstreams[0].backends.size() == 2);
  CHECK(shard.upstreams[1].backends.empty());
}

TEST_CASE("merge of shards with one layout sums every counter and gauge") {
  const auto layout = tinyLayout();
  WorkerMetrics a(layout);
  WorkerMetrics b(layout);
  a.routes[0].countRequest(0, 200);
  b.routes[0].countRequest(0, 200);
  b.routes[0].countRequest(2, 500);
  a.routes[0].duration.observe(100);
  b.routes[0].duration.observe(2'000);
  a.routes[0].request_bytes = 10;
  b.routes[0].request_bytes = 5;
  b.routes[0].response_bytes = 7;
  REQUIRE(a.routes[0].counters.size() == 7);
  a.routes[0].counters[kRejections] = 1;
  b.routes[0].counters[kShadowExceeded] = 2;
  b.routes[0].counters[kCacheStale] = 1;
  a.routes[0].counters[kSchemaFailures] = 3;
  a.upstreams[0].connects = 2;
  b.upstreams[0].reuses = 9;
  b.upstreams[0].countError(obs::UpstreamErrorKind::Reset);
  a.upstreams[0].active_connections = 1;
  b.upstreams[0].active_connections = -1;  // a worker's gauge may dip while the sum holds
  b.upstreams[0].idle_connections = 4;
  a.upstreams[0].backends[0] = {3, 1};
  b.upstreams[0].backends[0] = {4, 0};
  a.downstream_connections = 2;
  b.downstream_connections = 3;
  b.downstream_connections_accepted = 11;

  WorkerMetrics total(std::make_shared<obs::MetricsLayout>(*layout));  // equal, not the same
  total.merge(a);
  total.merge(b);
  const obs::RouteMetrics& route = total.routes[0];
  REQUIRE(route.requests.size() == 2);
  CHECK(route.requests[0].count == 2);
  CHECK(route.requests[1].code == 500);
  CHECK(route.duration.count() == 2);
  CHECK(route.duration.sumMicros() == 2'100);
  CHECK(route.request_bytes == 15);
  CHECK(route.response_bytes == 7);
  CHECK(route.counters == std::vector<uint64_t>{0, 0, 1, 0, 1, 2, 3});
  const obs::UpstreamMetrics& upstream = total.upstreams[0];
  CHECK(upstream.connects == 2);
  CHECK(upstream.reuses == 9);
  CHECK(upstream.errors[static_cast<std::size_t>(obs::UpstreamErrorKind::Reset)] == 1);
  CHECK(upstream.active_connections == 0);
  CHECK(upstream.idle_connections == 4);
  CHECK(upstream.backends[0].requests == 7);
  CHECK(upstream.backends[0].errors == 1);
  CHECK(total.downstream_connections == 5);
  CHECK(total.downstream_connections_accepted == 11);
}

TEST_CASE("merge across a layout change matches routes, upstreams and backends by name") {
  auto before = std::make_shared<obs::MetricsLayout>();
  before->routes = {"gone", "kept"};
  before->upstreams = {{"old", {"h:1"}}, {"api", {"h:1", "h:2"}}};
  auto after = std::make_shared<obs::MetricsLayout>();
  after->routes = {"kept", "new"};
  after->upstreams = {{"api", {"h:2", "h:3"}}};

  WorkerMetrics old(before);
  old.routes[0].request_bytes = 100;
  old.routes[1].request_bytes = 7;
  old.upstreams[0].connects = 50;
  old.upstreams[1].connects = 3;
  old.upstreams[1].backends[0].requests = 10;
  old.upstreams[1].backends[1].requests = 20;

  WorkerMetrics carried(after);
  carried.merge(old);
  CHECK(carried.routes[0].request_bytes == 7);
  CHECK(carried.routes[1].request_bytes == 0);
  CHECK(carried.upstreams[0].connects == 3);
  CHECK(carried.upstreams[0].backends[0].requests == 20);
  CHECK(carried.upstreams[0].backends[1].requests == 0);
}

TEST_CASE("plugin counters are summed only between shards of the same families") {
  auto other = std::make_shared<obs::MetricsLayout>(*tinyLayout());
  other->routeCounters.pop_back();  // another set of families: slots mean other things
  WorkerMetrics old(other);
  old.routes[0].counters[kRejections] = 5;
  old.routes[0].request_bytes = 9;
  WorkerMetrics total(tinyLayout());
  total.merge(old);
  CHECK(total.routes[0].request_bytes == 9);
  CHECK(total.routes[0].counters == std::vector<uint64_t>(7, 0));
}

TEST_CASE("MetricsLayout::fromConfig takes names in config order, IPv6 backends bracketed") {
  gw::config::Config config;
  config.routes.resize(2);
  config.routes[0].name = "api";
  config.routes[1].name = "route-2";
  config.upstreams.resize(1);
  config.upstreams[0].name = "pool";
  config.upstreams[0].backends.resize(2);
  config.upstreams[0].backends[0].host = "127.0.0.1";
  config.upstreams[0].backends[0].port = 9000;
  config.upstreams[0].backends[1].host = "::1";
  config.upstreams[0].backends[1].port = 9001;
  const auto layout = obs::MetricsLayout::fromConfig(config, pluginFamilies());
  CHECK(layout->routes == std::vector<std::string>{"api", "route-2"});
  CHECK(layout->routeCounters.size() == 4);
  CHECK(layout->routeCounterSlots() == 7);
  REQUIRE(layout->upstreams.size() == 1);
  CHECK(layout->upstreams[0].name == "pool");
  CHECK(layout->upstreams[0].backends == std::vector<std::string>{"127.0.0.1:9000", "[::1]:9001"});
}

TEST_CASE("renderPrometheus renders a tiny layout exactly") {
  WorkerMetrics total(tinyLayout());
  total.routes[0].countRequest(WorkerMetrics::methodIndex("GET"), 200);
  total.routes[0].countRequest(WorkerMetrics::methodIndex("GET"), 200);
  total.routes[0].countRequest(WorkerMetrics::methodIndex("BREW"), 418);
  total.routes[0].duration.observe(1'500);
  total.routes[0].request_bytes = 120;
  total.routes[0].response_bytes = 4096;
  total.routes[0].counters[kRejections] = 1;
  total.routes[0].counters[kCacheHit] = 1;
  total.upstreams[0].duration.observe(250'000);
  total.upstreams[0].connects = 1;
  total.upstreams[0].reuses = 2;
  total.upstreams[0].countError(obs::UpstreamErrorKind::Timeout);
  total.upstreams[0].idle_connections = 1;
  total.upstreams[0].backends[0].requests = 3;
  total.downstream_connections = 1;
  total.downstream_connections_accepted = 4;
  obs::GlobalMetrics global;
  global.version = "0.1.0";
  global.config_reloads_success = 1;
  global.config_generation = 2;
  global.backend_healthy = {{true}};
  obs::ProcessSample process;
  process.resident_memory_bytes = 1'000'000;
  process.virtual_memory_bytes = 5'000'000;
  process.open_fds = 12;
  process.max_fds = 1024;
  process.cpu_micros = 1'250'000;
  process.start_time_micros = 1'700'000'000'500'000;

  const std::string expected =
      R"(# HELP gatewayd_http_requests_total HTTP requests answered, by route, method and status code.
# TYPE gatewayd_http_requests_total counter
gatewayd_http_requests_total{route="r",method="GET",code="200"} 2
gatewayd_http_requests_total{route="r",method="OTHER",code="418"} 1
# HELP gatewayd_http_request_duration_seconds Time from the first request byte to the last response byte, by route.
# TYPE gatewayd_http_request_duration_seconds histogram
gatewayd_http_request_duration_seconds_bucket{route="r",le="0.0005"} 0
gatewayd_http_request_duration_seconds_bucket{route="r",le="0.001"} 0
gatewayd_http_request_duration_seconds_bucket{route="r",le="0.0025"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="0.005"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="0.01"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="0.025"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="0.05"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="0.1"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="0.25"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="0.5"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="1"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="2.5"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="5"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="10"} 1
gatewayd_http_request_duration_seconds_bucket{route="r",le="+Inf"} 1
gatewayd_http_request_duration_seconds_sum{route="r"} 0.0015
gatewayd_http_request_duration_seconds_count{route="r"} 1
# HELP gatewayd_request_bytes_total Request bytes received from clients, by route.
# TYPE gatewayd_request_bytes_total counter
gatewayd_request_bytes_total{route="r"} 120
# HELP gatewayd_response_bytes_total Response bytes sent to clients, by route.
# TYPE gatewayd_response_bytes_total counter
gatewayd_response_bytes_total{route="r"} 4096
# HELP gatewayd_cache_requests_total Cache lookups by route and result.
# TYPE gatewayd_cache_requests_total counter
gatewayd_cache_requests_total{route="r",result="hit"} 1
gatewayd_cache_requests_total{route="r",result="miss"} 0
gatewayd_cache_requests_total{route="r",result="stale"} 0
gatewayd_cache_requests_total{route="r",result="bypass"} 0
# HELP gatewayd_rate_limit_rejections_total Requests rejected by an enforced rate limit, by route.
# TYPE gatewayd_rate_limit_rejections_total counter
gatewayd_rate_limit_rejections_total{route="r"} 1
# HELP gatewayd_rate_limit_shadow_exceeded_total Requests over a shadow-mode rate limit (let through), by route.
# TYPE gatewayd_rate_limit_shadow_exceeded_total counter
gatewayd_rate_limit_shadow_exceeded_total{route="r"} 0
# HELP gatewayd_schema_validation_failures_total Requests rejected by schema validation, by route.
# TYPE gatewayd_schema_validation_failures_total counter
gatewayd_schema_validation_failures_total{route="r"} 0
# HELP gatewayd_upstream_request_duration_seconds Time from sending a request upstream to its complete response, by upstream.
# TYPE gatewayd_upstream_request_duration_seconds histogram
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="0.0005"} 0
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="0.001"} 0
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="0.0025"} 0
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="0.005"} 0
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="0.01"} 0
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="0.025"} 0
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="0.05"} 0
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="0.1"} 0
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="0.25"} 1
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="0.5"} 1
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="1"} 1
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="2.5"} 1
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="5"} 1
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="10"} 1
gatewayd_upstream_request_duration_seconds_bucket{upstream="u",le="+Inf"} 1
gatewayd_upstream_request_duration_seconds_sum{upstream="u"} 0.25
gatewayd_upstream_request_duration_seconds_count{upstream="u"} 1
# HELP gatewayd_upstream_connections Upstream connections by state: active (carrying a request) or idle (pooled).
# TYPE gatewayd_upstream_connections gauge
gatewayd_upstream_connections{upstream="u",state="active"} 0
gatewayd_upstream_connections{upstream="u",state="idle"} 1
# HELP gatewayd_upstream_connects_total New upstream connections opened.
# TYPE gatewayd_upstream_connects_total counter
gatewayd_upstream_connects_total{upstream="u"} 1
# HELP gatewayd_upstream_reuses_total Upstream requests sent on a pooled keep-alive connection.
# TYPE gatewayd_upstream_reuses_total counter
gatewayd_upstream_reuses_total{upstream="u"} 2
# HELP gatewayd_upstream_errors_total Upstream failures by upstream and kind.
# TYPE gatewayd_upstream_errors_total counter
gatewayd_upstream_errors_total{upstream="u",kind="connect"} 0
gatewayd_upstream_errors_total{upstream="u",kind="timeout"} 1
gatewayd_upstream_errors_total{upstream="u",kind="reset"} 0
gatewayd_upstream_errors_total{upstream="u",kind="protocol"} 0
# HELP gatewayd_upstream_backend_requests_total Requests sent to each backend.
# TYPE gatewayd_upstream_backend_requests_total counter
gatewayd_upstream_backend_requests_total{upstream="u",backend="127.0.0.1:9000"} 3
# HELP gatewayd_upstream_backend_errors_total Failed requests to each backend.
# TYPE gatewayd_upstream_backend_errors_total counter
gatewayd_upstream_backend_errors_total{upstream="u",backend="127.0.0.1:9000"} 0
# HELP gatewayd_upstream_backend_healthy 1 if the backend is in the load balancer, 0 if health checks took it out.
# TYPE gatewayd_upstream_backend_healthy gauge
gatewayd_upstream_backend_healthy{upstream="u",backend="127.0.0.1:9000"} 1
# HELP gatewayd_downstream_connections Client connections open now.
# TYPE gatewayd_downstream_connections gauge
gatewayd_downstream_connections 1
# HELP gatewayd_downstream_connections_accepted_total Client connections accepted.
# TYPE gatewayd_downstream_connections_accepted_total counter
gatewayd_downstream_connections_accepted_total 4
# HELP gatewayd_config_reloads_total Configuration reloads by result.
# TYPE gatewayd_config_reloads_total counter
gatewayd_config_reloads_total{result="success"} 1
gatewayd_config_reloads_total{result="failure"} 0
# HELP gatewayd_config_generation Generation of the live configuration (1 at start, +1 per successful reload).
# TYPE gatewayd_config_generation gauge
gatewayd_config_generation 2
# HELP gatewayd_log_dropped_total Access log lines dropped because the writer could not keep up.
# TYPE gatewayd_log_dropped_total counter
gatewayd_log_dropped_total 0
# HELP gatewayd_trace_spans_exported_total Trace spans exported over OTLP.
# TYPE gatewayd_trace_spans_exported_total counter
gatewayd_trace_spans_exported_total 0
# HELP gatewayd_trace_spans_dropped_total Trace spans dropped (export queue full or collector failing).
# TYPE gatewayd_trace_spans_dropped_total counter
gatewayd_trace_spans_dropped_total 0
# HELP gatewayd_build_info Always 1; the version is in the label.
# TYPE gatewayd_build_info gauge
gatewayd_build_info{version="0.1.0"} 1
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.25
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1000000
# HELP process_virtual_memory_bytes Virtual memory size in bytes.
# TYPE process_virtual_memory_bytes gauge
process_virtual_memory_bytes 5000000
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 12
# HELP process_max_fds Maximum number of open file descriptors.
# TYPE process_max_fds gauge
process_max_fds 1024
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1700000000.5
)";
  CHECK(render(total, global, process) == expected);
}

TEST_CASE("renderPrometheus escapes label values") {
  auto layout = std::make_shared<obs::MetricsLayout>();
  layout->routes = {"a\"b\\c\nd"};
  const WorkerMetrics total(layout);
  obs::GlobalMetrics global;
  global.version = "1.0\"x";
  const std::string out = render(total, global);
  CHECK(out.find("gatewayd_request_bytes_total{route=\"a\\\"b\\\\c\\nd\"} 0\n") !=
        std::string::npos);
  CHECK(out.find("gatewayd_build_info{version=\"1.0\\\"x\"} 1\n") != std::string::npos);
}

TEST_CASE("renderPrometheus writes HELP and TYPE for exactly the families it names") {
  const std::string out = render(WorkerMetrics(tinyLayout()));
  std::size_t types = 0;
  for (std::size_t at = out.find("# TYPE "); at != std::string::npos;
       at = out.find("# TYPE ", at + 1)) {
    ++types;
  }
  CHECK(types == obs::metricFamilyNames(*tinyLayout()).size());
  for (const std::string_view name : obs::metricFamilyNames(*tinyLayout())) {
    INFO(name);
    CHECK(out.find("# HELP " + std::string(name) + " ") != std::string::npos);
    CHECK(out.find("# TYPE " + std::string(name) + " ") != std::string::npos);
  }
  std::string reused = "stale content";
  obs::renderPrometheus(WorkerMetrics(tinyLayout()), {}, {}, reused);
  CHECK(reused == out);  // `out` is replaced, not appended to
}

TEST_CASE("promtool check metrics accepts the exposition") {
  const char* promtool = "/usr/bin/promtool";
  if (::access(promtool, X_OK) != 0) {
    FAIL(
        "/usr/bin/promtool is missing: scripts/setup.sh installs the prometheus package (the "
        "suite requires it)");
  }
  auto layout = std::make_shared<obs::MetricsLayout>();
  layout->routes = {"api", "weird \"route\"\\\n"};
  layout->upstreams = {{"pool", {"127.0.0.1:9000", "[::1]:9001"}}, {"empty", {}}};
  WorkerMetrics total(layout);
  total.routes[0].countRequest(WorkerMetrics::methodIndex("GET"), 200);
  total.routes[0].countRequest(WorkerMetrics::methodIndex("DELETE"), 503);
  total.routes[1].duration.observe(42);
  total.upstreams[0].duration.observe(99'999'999);
  obs::GlobalMetrics global;
  global.version = "0.1.0";
  global.backend_healthy = {{true, false}};
  const obs::ProcessSample process = obs::sampleProcess();

  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("gw_promtool_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "metrics.txt") << render(total, global, process);
  const std::string command = std::string(promtool) + " check metrics < " +
                              (dir / "metrics.txt").string() + " > " +
                              (dir / "output.txt").string() + " 2>&1";
  const int status = std::system(command.c_str());
  const std::string output = slurp(dir / "output.txt");
  fs::remove_all(dir);
  CHECK(output == "");
  CHECK(status == 0);
}

TEST_CASE("renderPrometheus renders a gauge sum that is transiently negative") {
  WorkerMetrics total(tinyLayout());
  total.downstream_connections = -2;
  total.upstreams[0].active_connections = INT64_MIN;
  const std::string out = render(total);
  CHECK(out.find("\ngatewayd_downstream_connections -2\n") != std::string::npos);
  CHECK(out.find("{upstream=\"u\",state=\"active\"} -9223372036854775808\n") != std::string::npos);
}
