#include "gateway/observability/exposition.h"

#include <doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "gateway/plugin/registry.h"

namespace obs = gw::observability;
using obs::WorkerMetrics;

namespace {

// Slots of the builtin plugins' counters: the cache's by result (0-3) and by Redis result (4-8),
// then rate_limit's (9).
constexpr std::size_t kCacheHit = 0, kRejections = 9;

// One route "r" with the builtin plugins' counters, one upstream "u" with one backend.
std::shared_ptr<const obs::MetricsLayout> tinyLayout() {
  auto layout = std::make_shared<obs::MetricsLayout>();
  layout->routes = {"r"};
  const auto plugins = gw::plugin::Registry::builtin().counterFamilies();
  layout->routeCounters.assign(plugins.begin(), plugins.end());
  layout->upstreams = {{"u", {"127.0.0.1:9000"}}};
  return layout;
}

std::string render(const WorkerMetrics& total, const obs::GlobalMetrics& global = {},
                   const obs::ProcessSample& process = {}) {
  return obs::textExposition(obs::ScrapeCollectable(total, global, process));
}

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The value of the one sample line that starts with `series` + " ".
std::string sampleText(const std::string& exposition, const std::string& series) {
  const std::size_t at = exposition.find("\n" + series + " ");
  if (at == std::string::npos) return "(no sample " + series + ")";
  const std::size_t begin = at + 1 + series.size() + 1;
  return exposition.substr(begin, exposition.find('\n', begin) - begin);
}

}  // namespace

TEST_CASE("the exposition of a tiny layout, exactly") {
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
  total.upstreams[0].overloaded[2] = 4;
  total.upstreams[0].retries[0] = 3;
  total.upstreams[0].retry_budget_exhausted = 2;
  total.upstreams[0].per_try_timeouts = 1;
  total.upstreams[0].idle_connections = 1;
  total.upstreams[0].backends[0].requests = 3;
  total.downstream_connections = 1;
  total.downstream_connections_accepted = 4;
  total.tls_handshakes = 5;
  total.tls_sessions_resumed = 3;
  total.countHandshakeFailure(gw::net::HandshakeFailure::ProtocolVersion);
  obs::GlobalMetrics global;
  global.version = "0.1.0";
  global.config_reloads_success = 1;
  global.config_generation = 2;
  global.backend_healthy = {{true}};
  global.upstream_ejections = {
      {{{"consecutive_5xx", 2}, {"success_rate", 1}}, {{"success_rate", 3}}}};
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
gatewayd_http_request_duration_seconds_count{route="r"} 1
gatewayd_http_request_duration_seconds_sum{route="r"} 0.0015
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
# HELP gatewayd_cache_redis_total Cache Redis tier by route and result: lookups after a memory miss (hit, miss, error), fills (stored, too_large).
# TYPE gatewayd_cache_redis_total counter
gatewayd_cache_redis_total{route="r",result="hit"} 0
gatewayd_cache_redis_total{route="r",result="miss"} 0
gatewayd_cache_redis_total{route="r",result="error"} 0
gatewayd_cache_redis_total{route="r",result="stored"} 0
gatewayd_cache_redis_total{route="r",result="too_large"} 0
# HELP gatewayd_rate_limit_rejections_total Requests rejected by an enforced rate limit, by route.
# TYPE gatewayd_rate_limit_rejections_total counter
gatewayd_rate_limit_rejections_total{route="r"} 1
# HELP gatewayd_rate_limit_shadow_exceeded_total Requests over a shadow-mode rate limit (let through), by route.
# TYPE gatewayd_rate_limit_shadow_exceeded_total counter
gatewayd_rate_limit_shadow_exceeded_total{route="r"} 0
# HELP gatewayd_rate_limit_redis_fallback_total Requests Redis could not decide on (unreachable, timed out, bad reply), by route and on_redis_error policy.
# TYPE gatewayd_rate_limit_redis_fallback_total counter
gatewayd_rate_limit_redis_fallback_total{route="r",policy="allow"} 0
gatewayd_rate_limit_redis_fallback_total{route="r",policy="deny"} 0
# HELP gatewayd_rate_limit_memo_refusals_total Requests refused from the refusal memo without asking Redis, by route.
# TYPE gatewayd_rate_limit_memo_refusals_total counter
gatewayd_rate_limit_memo_refusals_total{route="r"} 0
# HELP gatewayd_rate_limit_redis_calls_total Script calls sent to Redis by store: redis or hybrid (one per group of a key's requests waiting together, or per lease), by route.
# TYPE gatewayd_rate_limit_redis_calls_total counter
gatewayd_rate_limit_redis_calls_total{route="r"} 0
# HELP gatewayd_rate_limit_redis_waits_total Requests that waited for Redis's answer (store: redis: each one Redis decides; hybrid: those that found no usable lease), by route.
# TYPE gatewayd_rate_limit_redis_waits_total counter
gatewayd_rate_limit_redis_waits_total{route="r"} 0
# HELP gatewayd_schema_validation_failures_total Requests rejected by schema validation, by route.
# TYPE gatewayd_schema_validation_failures_total counter
gatewayd_schema_validation_failures_total{route="r"} 0
# HELP gatewayd_upstream_request_duration_seconds Time from sending a request upstream to its complete response, by upstream.
# TYPE gatewayd_upstream_request_duration_seconds histogram
gatewayd_upstream_request_duration_seconds_count{upstream="u"} 1
gatewayd_upstream_request_duration_seconds_sum{upstream="u"} 0.25
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
# HELP gatewayd_upstream_overloaded_total Requests refused with UPSTREAM_OVERLOADED, by upstream and the cap they met.
# TYPE gatewayd_upstream_overloaded_total counter
gatewayd_upstream_overloaded_total{upstream="u",cap="connections"} 0
gatewayd_upstream_overloaded_total{upstream="u",cap="pending"} 0
gatewayd_upstream_overloaded_total{upstream="u",cap="requests"} 4
# HELP gatewayd_upstream_retries_total Retries started toward an upstream, by what failed the attempt before.
# TYPE gatewayd_upstream_retries_total counter
gatewayd_upstream_retries_total{upstream="u",reason="connect_failure"} 3
gatewayd_upstream_retries_total{upstream="u",reason="reset"} 0
gatewayd_upstream_retries_total{upstream="u",reason="status"} 0
gatewayd_upstream_retries_total{upstream="u",reason="per_try_timeout"} 0
# HELP gatewayd_upstream_retry_budget_exhausted_total Retries the upstream's retry budget refused (the failure went to the client).
# TYPE gatewayd_upstream_retry_budget_exhausted_total counter
gatewayd_upstream_retry_budget_exhausted_total{upstream="u"} 2
# HELP gatewayd_upstream_per_try_timeouts_total Attempts that ran out of their route's per-try timeout.
# TYPE gatewayd_upstream_per_try_timeouts_total counter
gatewayd_upstream_per_try_timeouts_total{upstream="u"} 1
# HELP gatewayd_upstream_backend_requests_total Requests sent to each backend.
# TYPE gatewayd_upstream_backend_requests_total counter
gatewayd_upstream_backend_requests_total{upstream="u",backend="127.0.0.1:9000"} 3
# HELP gatewayd_upstream_backend_errors_total Failed requests to each backend.
# TYPE gatewayd_upstream_backend_errors_total counter
gatewayd_upstream_backend_errors_total{upstream="u",backend="127.0.0.1:9000"} 0
# HELP gatewayd_upstream_backend_healthy 1 if the backend is in the load balancer, 0 if health checks took it out.
# TYPE gatewayd_upstream_backend_healthy gauge
gatewayd_upstream_backend_healthy{upstream="u",backend="127.0.0.1:9000"} 1
# HELP gatewayd_upstream_ejections_total Backends ejected by outlier detection, by upstream and reason.
# TYPE gatewayd_upstream_ejections_total counter
gatewayd_upstream_ejections_total{upstream="u",reason="consecutive_5xx"} 2
gatewayd_upstream_ejections_total{upstream="u",reason="success_rate"} 1
# HELP gatewayd_upstream_ejections_refused_total Ejections outlier detection asked for but the ejection cap refused, by upstream and reason.
# TYPE gatewayd_upstream_ejections_refused_total counter
gatewayd_upstream_ejections_refused_total{upstream="u",reason="success_rate"} 3
# HELP gatewayd_downstream_connections Client connections open now.
# TYPE gatewayd_downstream_connections gauge
gatewayd_downstream_connections 1
# HELP gatewayd_downstream_connections_accepted_total Client connections accepted.
# TYPE gatewayd_downstream_connections_accepted_total counter
gatewayd_downstream_connections_accepted_total 4
# HELP gatewayd_tls_handshakes_total TLS handshakes completed on the listeners, resumed ones included.
# TYPE gatewayd_tls_handshakes_total counter
gatewayd_tls_handshakes_total 5
# HELP gatewayd_tls_sessions_resumed_total TLS handshakes that resumed a session with a ticket instead of a full handshake.
# TYPE gatewayd_tls_sessions_resumed_total counter
gatewayd_tls_sessions_resumed_total 3
# HELP gatewayd_tls_handshake_failures_total TLS handshakes on the listeners that failed, by reason.
# TYPE gatewayd_tls_handshake_failures_total counter
gatewayd_tls_handshake_failures_total{reason="timeout"} 0
gatewayd_tls_handshake_failures_total{reason="protocol_version"} 1
gatewayd_tls_handshake_failures_total{reason="no_shared_cipher"} 0
gatewayd_tls_handshake_failures_total{reason="no_application_protocol"} 0
gatewayd_tls_handshake_failures_total{reason="certificate_rejected"} 0
gatewayd_tls_handshake_failures_total{reason="closed"} 0
gatewayd_tls_handshake_failures_total{reason="other"} 0
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

TEST_CASE("the exposition escapes label values") {
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

TEST_CASE("the route queue families: only when a route has a limit, one series per such route") {
  CHECK(render(WorkerMetrics(tinyLayout())).find("gatewayd_route_queue") == std::string::npos);
  auto layout = std::make_shared<obs::MetricsLayout>(*tinyLayout());
  layout->routes = {"free", "limited"};
  layout->limited = {0, 1};
  WorkerMetrics total(layout);
  obs::RouteMetrics& limited = total.routes[1];
  limited.queue_joined = 5;
  limited.queue_left = 3;
  limited.queue_wait_us = 1'250'000;
  limited.overloaded = {2, 1};
  const std::string out = render(total);
  CHECK(sampleText(out, "gatewayd_route_queue_depth{route=\"limited\"}") == "2");
  CHECK(sampleText(out, "gatewayd_route_queued_total{route=\"limited\"}") == "5");
  CHECK(sampleText(out, "gatewayd_route_queue_wait_seconds_total{route=\"limited\"}") == "1.25");
  CHECK(
      sampleText(out, "gatewayd_route_overloaded_total{route=\"limited\",reason=\"queue_full\"}") ==
      "2");
  CHECK(sampleText(out,
                   "gatewayd_route_overloaded_total{route=\"limited\",reason=\"queue_timeout\"}") ==
        "1");
  CHECK(out.find("gatewayd_route_queue_depth{route=\"free\"}") == std::string::npos);
}

TEST_CASE("every collected family has a unique name, a HELP text and one HELP and TYPE line") {
  const WorkerMetrics total(tinyLayout());
  const obs::GlobalMetrics global;
  const obs::ProcessSample process;
  const obs::ScrapeCollectable collectable(total, global, process);
  const auto families = collectable.Collect();
  CHECK(families.size() == 35 + tinyLayout()->routeCounters.size());  // the core's and the plugins'
  const std::string out = obs::textExposition(collectable);
  std::set<std::string> names;
  std::size_t types = 0;
  for (std::size_t at = out.find("# TYPE "); at != std::string::npos;
       at = out.find("# TYPE ", at + 1)) {
    ++types;
  }
  CHECK(types == families.size());
  for (const prometheus::MetricFamily& family : families) {
    INFO(family.name);
    CHECK(names.insert(family.name).second);
    CHECK(!family.help.empty());  // prometheus-cpp leaves out the HELP line of an empty help
    CHECK(out.find("# HELP " + family.name + " " + family.help + "\n") != std::string::npos);
    CHECK(out.find("# TYPE " + family.name + " ") != std::string::npos);
  }
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

TEST_CASE("the exposition renders a gauge sum that is transiently negative") {
  WorkerMetrics total(tinyLayout());
  total.downstream_connections = -2;
  total.upstreams[0].active_connections = INT64_MIN;
  const std::string out = render(total);
  CHECK(out.find("\ngatewayd_downstream_connections -2\n") != std::string::npos);
  // A double's 16 significant digits: the float64 a scraper stores is the same as for
  // -9223372036854775808.
  const std::string active =
      sampleText(out, R"(gatewayd_upstream_connections{upstream="u",state="active"})");
  CHECK(active == "-9.223372036854776e+18");
  CHECK(std::strtod(active.c_str(), nullptr) == static_cast<double>(INT64_MIN));
}

TEST_CASE("values are doubles: integers exact to 2^53, 16 significant digits past it") {
  WorkerMetrics total(tinyLayout());
  total.routes[0].request_bytes = (uint64_t{1} << 53);
  total.routes[0].response_bytes = UINT64_MAX;
  const std::string out = render(total);
  CHECK(sampleText(out, R"(gatewayd_request_bytes_total{route="r"})") == "9007199254740992");
  CHECK(sampleText(out, R"(gatewayd_response_bytes_total{route="r"})") == "1.844674407370955e+19");
}

TEST_CASE("clientHistogram makes our buckets cumulative, in seconds, +Inf last") {
  obs::Histogram h;
  h.observe(400);
  h.observe(1'000);
  h.observe(20'000'000);
  const prometheus::ClientMetric::Histogram client = obs::clientHistogram(h);
  CHECK(client.sample_count == 3);
  CHECK(client.sample_sum == doctest::Approx(20.0014).epsilon(1e-15));
  REQUIRE(client.bucket.size() == obs::Histogram::kBucketCount);
  CHECK(client.bucket[0].upper_bound == 0.0005);
  CHECK(client.bucket[0].cumulative_count == 1);
  CHECK(client.bucket[1].upper_bound == 0.001);
  for (std::size_t i = 1; i < obs::Histogram::kBoundsMicros.size(); ++i) {
    CHECK(client.bucket[i].upper_bound == obs::Histogram::kBoundsMicros[i] / 1e6);
    CHECK(client.bucket[i].cumulative_count == 2);
  }
  CHECK(client.bucket.back().upper_bound == std::numeric_limits<double>::infinity());
  CHECK(client.bucket.back().cumulative_count == 3);

  const prometheus::ClientMetric::Histogram empty = obs::clientHistogram(obs::Histogram());
  CHECK(empty.sample_count == 0);
  CHECK(empty.sample_sum == 0);
  for (const auto& bucket : empty.bucket) CHECK(bucket.cumulative_count == 0);
}

TEST_CASE("a histogram's series: _count and _sum, then one bucket per bound and +Inf, no other") {
  WorkerMetrics total(tinyLayout());
  total.routes[0].duration.observe(20'000'000);
  const std::string out = render(total);
  const std::string name = "gatewayd_http_request_duration_seconds";
  CHECK(sampleText(out, name + R"(_count{route="r"})") == "1");
  CHECK(sampleText(out, name + R"(_sum{route="r"})") == "20");
  CHECK(sampleText(out, name + R"(_bucket{route="r",le="10"})") == "0");
  CHECK(sampleText(out, name + R"(_bucket{route="r",le="+Inf"})") == "1");
  std::size_t infs = 0;
  for (std::size_t at = out.find("le=\"+Inf\""); at != std::string::npos;
       at = out.find("le=\"+Inf\"", at + 1)) {
    ++infs;
  }
  CHECK(infs == 2);  // one per histogram series: the route's and the upstream's
}
