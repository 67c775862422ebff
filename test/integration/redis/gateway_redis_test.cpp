// The `redis:` block through the real gatewayd: each worker's connection to a real redis-server,
// what /status, /ready and /metrics say of it while Redis is up, killed and restarted, and a
// reload keeping or replacing the connections.
#include <doctest.h>

#include <string>

#include "test/support/harness.h"
#include "test/support/redis_server.h"

using namespace gw::it;

namespace {

std::string redisConfig(const Backend& b, const RedisServer& redis, std::string_view extra = {}) {
  return apiConfig(
      b, 2,
      "redis:\n  address: " + redis.address() +
          "\n  connect_timeout: 200ms\n  command_timeout: 100ms\n"
          "  reconnect_initial: 20ms\n  reconnect_max: 200ms\n  half_open_probes: 1\n" +
          std::string(extra));
}

// The connections Redis has from gatewayd's workers, by their CLIENT SETNAME.
int workerClients(const RedisServer& redis) {
  const std::string clients = redis.call({"CLIENT", "LIST"});
  int count = 0;
  for (std::size_t at = clients.find("name=gatewayd-w"); at != std::string::npos;
       at = clients.find("name=gatewayd-w", at + 1)) {
    ++count;
  }
  return count;
}

// The ids Redis gave gatewayd's worker connections, in CLIENT LIST order.
std::string workerClientIds(const RedisServer& redis) {
  std::string ids;
  std::size_t line = 0;
  const std::string clients = redis.call({"CLIENT", "LIST"});
  while (line < clients.size()) {
    const std::size_t end = std::min(clients.find('\n', line), clients.size());
    const std::string entry = clients.substr(line, end - line);
    if (entry.find("name=gatewayd-w") != std::string::npos) {
      ids += entry.substr(0, entry.find(' ')) + ";";
    }
    line = end + 1;
  }
  return ids;
}

bool statusHas(const Gateway& gw, std::string_view text) {
  return adminRequest(gw, "/status").body.find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("redis in gatewayd: /status, /ready and metrics with Redis up, killed and restarted") {
  Backend b;
  RedisServer redis;
  Gateway gw(redisConfig(b, redis));
  // Each worker connects (CLIENT SETNAME gatewayd-w<i>); without commands they stay half-open.
  REQUIRE(waitFor([&] { return workerClients(redis) == 2; }, 5000ms));
  REQUIRE(waitFor([&] { return statusHas(gw, "\"half_open\":2"); }, 5000ms));
  const Response status = adminRequest(gw, "/status");
  CHECK(status.body.find(",\"redis\":{\"address\":\"" + redis.address() +
                         "\",\"workers\":{\"connecting\":0,\"closed\":0,\"half_open\":2,"
                         "\"open\":0}}}") != std::string::npos);
  Response ready = adminRequest(gw, "/ready");
  CHECK(ready.status == 200);
  CHECK(ready.body == "{\"status\":\"ready\",\"redis\":{\"address\":\"" + redis.address() +
                          "\",\"workers\":{\"connecting\":0,\"closed\":0,\"half_open\":2,"
                          "\"open\":0}}}\n");
  std::string metrics = adminRequest(gw, "/metrics").body;
  CHECK(metricSample(metrics, "gatewayd_redis_workers{state=\"half_open\"}") == 2);
  CHECK(metricSample(metrics, "gatewayd_redis_workers{state=\"open\"}") == 0);
  CHECK(metricSample(metrics, "gatewayd_redis_pending") == 0);
  CHECK(metricSample(metrics, "gatewayd_redis_reconnects_total") == 0);
  CHECK(metricSample(metrics, "gatewayd_redis_errors_total{reason=\"timeout\"}") == 0);
  CHECK(metricSample(metrics, "gatewayd_redis_rejected_total{reason=\"down\"}") == 0);
  CHECK(metricSample(metrics, "gatewayd_redis_round_trip_seconds_count{command=\"rate_limit\"}") ==
        0);
  const std::string problems = promtoolProblems(metrics);
  CHECK_MESSAGE(problems.empty(), problems);

  redis.kill();
  REQUIRE(waitFor([&] { return statusHas(gw, "\"open\":2"); }, 5000ms));
  ready = adminRequest(gw, "/ready");
  CHECK(ready.status == 200);  // readiness.require_redis is off by default
  CHECK(ready.body.find("\"open\":2") != std::string::npos);
  REQUIRE(waitFor(
      [&] {
        return metricSample(adminRequest(gw, "/metrics").body,
                            "gatewayd_redis_errors_total{reason=\"connect_failed\"}") >= 2;
      },
      5000ms));
  CHECK(Client(gw.port()).roundTrip(get("/api/x")).status == 200);  // no plugin needs it

  redis.restart();
  // Back within reconnect_max + connect_timeout (and a margin for a loaded machine).
  CHECK(waitFor([&] { return statusHas(gw, "\"half_open\":2"); }, 200ms + 200ms + 1000ms));
  metrics = adminRequest(gw, "/metrics").body;
  CHECK(metricSample(metrics, "gatewayd_redis_reconnects_total") >= 2);
  CHECK(metricSample(metrics, "gatewayd_redis_workers{state=\"half_open\"}") == 2);
  CHECK(workerClients(redis) == 2);
}

TEST_CASE("redis in gatewayd: readiness.require_redis answers 503 while a breaker is open") {
  Backend b;
  RedisServer redis;
  Gateway gw(redisConfig(b, redis, "readiness:\n  require_redis: true\n"));
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 5000ms));
  redis.kill();
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").status == 503; }, 5000ms));
  const Response ready = adminRequest(gw, "/ready");
  CHECK(ready.body.find("\"reasons\":[\"redis is unreachable from ") != std::string::npos);
  CHECK(ready.body.find(" of 2 workers\"]") != std::string::npos);
  redis.restart();
  CHECK(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 5000ms));
}

TEST_CASE("redis in gatewayd: a reload keeps the connections unless the block changed") {
  Backend b;
  RedisServer redis;
  Gateway gw(redisConfig(b, redis));
  REQUIRE(waitFor([&] { return workerClients(redis) == 2; }, 5000ms));
  const std::string before = workerClientIds(redis);

  // Another key prefix is the plugins' business: the same connections.
  gw.rewriteConfig(redisConfig(b, redis, "  key_prefix: 'other:'\n"));
  REQUIRE(adminRequest(gw, "/reload", "POST").status == 200);
  CHECK(workerClientIds(redis) == before);

  // Another database: new connections; the old ones are closed.
  gw.rewriteConfig(redisConfig(b, redis, "  database: 2\n"));
  REQUIRE(adminRequest(gw, "/reload", "POST").status == 200);
  REQUIRE(waitFor([&] { return workerClients(redis) == 2 && workerClientIds(redis) != before; },
                  5000ms));
  CHECK(redis.call({"CLIENT", "LIST"}).find(" db=2 ") != std::string::npos);
  CHECK(waitFor([&] { return statusHas(gw, "\"half_open\":2"); }, 5000ms));

  // No block at all: the connections go, /status no longer shows Redis.
  gw.rewriteConfig(apiConfig(b, 2));
  REQUIRE(adminRequest(gw, "/reload", "POST").status == 200);
  CHECK(waitFor([&] { return workerClients(redis) == 0; }, 5000ms));
  CHECK_FALSE(statusHas(gw, "\"redis\""));
  CHECK(adminRequest(gw, "/metrics").body.find("gatewayd_redis_") == std::string::npos);
}
