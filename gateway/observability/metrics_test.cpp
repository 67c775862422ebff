#include "gateway/observability/metrics.h"

#include <doctest.h>

#include <algorithm>

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
constexpr std::size_t kCacheStale = 2, kRejections = 9, kShadowExceeded = 10, kSchemaFailures = 16;

std::shared_ptr<const obs::MetricsLayout> tinyLayout() {
  auto layout = std::make_shared<obs::MetricsLayout>();
  layout->routes = {"r"};
  layout->routeCounters.assign(pluginFamilies().begin(), pluginFamilies().end());
  layout->upstreams = {{"u", {"127.0.0.1:9000"}}};
  return layout;
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
  REQUIRE(a.routes[0].counters.size() == 17);
  a.routes[0].counters[kRejections] = 1;
  b.routes[0].counters[kShadowExceeded] = 2;
  b.routes[0].counters[kCacheStale] = 1;
  a.routes[0].counters[kSchemaFailures] = 3;
  a.routes[0].queue_joined = 4;
  b.routes[0].queue_joined = 1;
  a.routes[0].queue_left = 3;
  b.routes[0].queue_wait_us = 700;
  a.routes[0].overloaded = {1, 2};
  b.routes[0].overloaded = {3, 0};
  a.upstreams[0].connects = 2;
  b.upstreams[0].reuses = 9;
  b.upstreams[0].countError(obs::UpstreamErrorKind::Reset);
  a.upstreams[0].active_connections = 1;
  b.upstreams[0].active_connections = -1;  // a worker's gauge may dip while the sum holds
  b.upstreams[0].idle_connections = 4;
  a.upstreams[0].overloaded = {1, 0, 2};
  b.upstreams[0].overloaded = {0, 3, 4};
  a.upstreams[0].retries = {1, 2, 0, 0};
  b.upstreams[0].retries = {0, 1, 5, 1};
  a.upstreams[0].retry_budget_exhausted = 2;
  b.upstreams[0].retry_budget_exhausted = 3;
  b.upstreams[0].per_try_timeouts = 6;
  a.upstreams[0].backends[0] = {3, 1};
  b.upstreams[0].backends[0] = {4, 0};
  a.downstream_connections = 2;
  b.downstream_connections = 3;
  b.downstream_connections_accepted = 11;
  a.tls_handshakes = 4;
  b.tls_handshakes = 6;
  b.tls_sessions_resumed = 5;
  a.countHandshakeFailure(gw::net::HandshakeFailure::Timeout);
  b.countHandshakeFailure(gw::net::HandshakeFailure::Timeout);
  b.countHandshakeFailure(gw::net::HandshakeFailure::Other);

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
  CHECK(route.counters == std::vector<uint64_t>{0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 3});
  CHECK(route.queue_joined == 5);
  CHECK(route.queue_left == 3);
  CHECK(route.queue_wait_us == 700);
  CHECK(route.overloaded == decltype(route.overloaded){4, 2});
  const obs::UpstreamMetrics& upstream = total.upstreams[0];
  CHECK(upstream.connects == 2);
  CHECK(upstream.reuses == 9);
  CHECK(upstream.errors[static_cast<std::size_t>(obs::UpstreamErrorKind::Reset)] == 1);
  CHECK(upstream.active_connections == 0);
  CHECK(upstream.idle_connections == 4);
  CHECK(upstream.overloaded == decltype(upstream.overloaded){1, 3, 6});
  CHECK(upstream.retries == decltype(upstream.retries){1, 3, 5, 1});
  CHECK(upstream.retry_budget_exhausted == 5);
  CHECK(upstream.per_try_timeouts == 6);
  CHECK(upstream.backends[0].requests == 7);
  CHECK(upstream.backends[0].errors == 1);
  CHECK(total.downstream_connections == 5);
  CHECK(total.downstream_connections_accepted == 11);
  CHECK(total.tls_handshakes == 10);
  CHECK(total.tls_sessions_resumed == 5);
  CHECK(total.tls_handshake_failures ==
        decltype(total.tls_handshake_failures){2, 0, 0, 0, 0, 0, 1});  // timeout, ..., other
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
  CHECK(total.routes[0].counters == std::vector<uint64_t>(17, 0));
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
  CHECK(layout->routeCounters.size() == 9);
  CHECK(layout->routeCounterSlots() == 17);
  REQUIRE(layout->upstreams.size() == 1);
  CHECK(layout->upstreams[0].name == "pool");
  CHECK(layout->upstreams[0].backends == std::vector<std::string>{"127.0.0.1:9000", "[::1]:9001"});
}

namespace gw::observability {

TEST_CASE("merge sums the Redis connection's round trips, errors, rejections and gauges") {
  const auto layout = std::make_shared<MetricsLayout>();
  WorkerMetrics a(layout);
  WorkerMetrics b(layout);
  a.redis.round_trip[static_cast<std::size_t>(RedisCommand::RateLimit)].observe(300);
  b.redis.round_trip[static_cast<std::size_t>(RedisCommand::RateLimit)].observe(700);
  a.redis.countError(RedisError::Timeout);
  b.redis.countError(RedisError::Timeout);
  b.redis.countError(RedisError::AuthFailed);
  a.redis.countRejection(RedisRejection::Overloaded);
  a.redis.reconnects = 2;
  b.redis.reconnects = 3;
  a.redis.pending = 4;
  b.redis.pending = 1;
  a.merge(b);
  CHECK(a.redis.round_trip[static_cast<std::size_t>(RedisCommand::RateLimit)].count() == 2);
  CHECK(a.redis.round_trip[static_cast<std::size_t>(RedisCommand::RateLimit)].sumMicros() == 1000);
  CHECK(a.redis.errors[static_cast<std::size_t>(RedisError::Timeout)] == 2);
  CHECK(a.redis.errors[static_cast<std::size_t>(RedisError::AuthFailed)] == 1);
  CHECK(a.redis.rejected[static_cast<std::size_t>(RedisRejection::Overloaded)] == 1);
  CHECK(a.redis.reconnects == 5);
  CHECK(a.redis.pending == 5);
}

}  // namespace gw::observability
