// cache `store: redis` through the real gatewayd: two instances on one real redis-server share
// their fills, entries expire with their freshness, a Redis that dies turns lookups into misses
// (never failed requests), and the admin purge reaches Redis. test_backend's /origin/ paths
// count the origin's answers; its "#k" body rank tells a shared copy from a fresh fetch.
#include <doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "test/support/harness.h"
#include "test/support/redis_server.h"

using namespace gw::it;

namespace {

// A catch-all route "cached" with `cache: {store: redis, ...}` in front of `b`, on `redis`.
std::string config(const Backend& b, const RedisServer& redis, std::string_view settings = "") {
  return subst(R"(workers: 2
listeners: [{address: 127.0.0.1, port: ${PORT}}]
redis:
  address: ${REDIS}
  command_timeout: 500ms
  reconnect_initial: 50ms
  reconnect_max: 200ms
upstreams: [{name: main, backends: ["${B}"]}]
routes:
  - name: cached
    match: {prefix: /}
    upstream: main
    plugins:
      - cache: {store: redis${S}}
)",
               {{"B", b.address()}, {"REDIS", redis.address()}, {"S", std::string(settings)}});
}

std::string cacheControl(std::string_view directives) {
  return "h=" + percentEncode("Cache-Control: " + std::string(directives));
}

std::string originBody(std::string_view path, int rank) {
  return "origin " + std::string(path) + " #" + std::to_string(rank);
}

Response fetch(const Gateway& gw, std::string_view target, std::string_view headers = {}) {
  Client c(gw.port());
  REQUIRE(c.send(get(target, headers)));
  Response r = c.read();
  REQUIRE_MESSAGE(r.complete, r.error);
  return r;
}

// The cache's keys in Redis (entries, Vary stubs and variants).
std::vector<std::string> cacheKeys(const RedisServer& redis) {
  std::vector<std::string> keys;
  std::istringstream lines(redis.call({"KEYS", "gw:c:{*"}));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) keys.push_back(line);
  }
  return keys;
}

double redisResult(const Gateway& gw, std::string_view result) {
  return metricSample(
      adminRequest(gw, "/metrics").body,
      "gatewayd_cache_redis_total{route=\"cached\",result=\"" + std::string(result) + "\"}");
}

// Two gatewayd instances on one redis-server, in front of one origin, connected.
struct TwoInstances {
  RedisServer redis;
  Backend b;
  Gateway first{config(b, redis)};
  Gateway second{config(b, redis)};

  TwoInstances() {
    waitRedisConnected(first);
    waitRedisConnected(second);
  }
};

}  // namespace

TEST_CASE("plugins cache redis: a fill through one instance is a hit on another") {
  TwoInstances both;
  auto& [redis, b, first, second] = both;
  const std::string target = "/origin/shared?" + cacheControl("max-age=60");

  Response filled = fetch(first, target);
  CHECK(filled.status == 200);
  CHECK(filled.body == originBody("/origin/shared", 1));
  // The SET is fire and forget: wait until Redis has it.
  REQUIRE(waitFor([&redis = redis] { return cacheKeys(redis).size() == 1; }, 2000ms));
  const std::string key = cacheKeys(redis)[0];
  CHECK(key.find("shared") == std::string::npos);  // a digest, not the URL
  const long ttl = std::stol(redis.call({"PTTL", key}));
  CHECK(ttl > 55'000);
  CHECK(ttl <= 60'000);

  Response shared = fetch(second, target);
  CHECK(shared.status == 200);
  CHECK(shared.body == originBody("/origin/shared", 1));  // the first instance's copy
  CHECK(shared.header("Cache-Status").value_or("").find("hit") != std::string::npos);
  CHECK(b.stats().requests == 1);
  CHECK(redisResult(second, "hit") == 1);
  CHECK(redisResult(first, "stored") == 1);
  CHECK(redisResult(first, "miss") == 1);

  // Now in the second instance's memory too: Redis is not asked again.
  CHECK(fetch(second, target).body == originBody("/origin/shared", 1));
  CHECK(redisResult(second, "hit") == 1);
  CHECK(b.stats().requests == 1);
}

TEST_CASE("plugins cache redis: Vary variants are shared each under their own key") {
  TwoInstances both;
  auto& [redis, b, first, second] = both;
  const std::string target = "/origin/varying?" + cacheControl("max-age=60") +
                             "&h=" + percentEncode("Vary: Accept-Language");
  CHECK(fetch(first, target, "Accept-Language: fr\r\n").body == originBody("/origin/varying", 1));
  CHECK(fetch(first, target, "Accept-Language: de\r\n").body == originBody("/origin/varying", 2));
  // One stub and two variants.
  REQUIRE(waitFor([&redis = redis] { return cacheKeys(redis).size() == 3; }, 2000ms));
  CHECK(fetch(second, target, "Accept-Language: de\r\n").body == originBody("/origin/varying", 2));
  CHECK(fetch(second, target, "Accept-Language: fr\r\n").body == originBody("/origin/varying", 1));
  CHECK(fetch(second, target, "Accept-Language: it\r\n").body == originBody("/origin/varying", 3));
  CHECK(b.stats().requests == 3);
}

TEST_CASE("plugins cache redis: an entry leaves Redis when its freshness ends") {
  TwoInstances both;
  auto& [redis, b, first, second] = both;
  const std::string target = "/origin/short?" + cacheControl("max-age=1");
  CHECK(fetch(first, target).body == originBody("/origin/short", 1));
  REQUIRE(waitFor([&redis = redis] { return cacheKeys(redis).size() == 1; }, 2000ms));
  CHECK(std::stol(redis.call({"PTTL", cacheKeys(redis)[0]})) <= 1000);
  // Redis drops it on time (its PX), so the other instance fetches anew.
  REQUIRE(waitFor([&redis = redis] { return cacheKeys(redis).empty(); }, 3000ms));
  CHECK(fetch(second, target).body == originBody("/origin/short", 2));
  CHECK(redisResult(second, "miss") == 1);
  CHECK(b.stats().requests == 2);
}

TEST_CASE("plugins cache redis: with Redis gone, requests are answered as misses") {
  RedisServer redis;
  Backend b;
  Gateway gw(config(b, redis));
  waitRedisConnected(gw);
  const std::string before = "/origin/before?" + cacheControl("max-age=60");
  CHECK(fetch(gw, before).body == originBody("/origin/before", 1));
  redis.kill();
  // Each request is answered in time: the breaker opens, and lookups fail at once then.
  for (int i = 0; i < 5; ++i) {
    const std::string target =
        "/origin/down-" + std::to_string(i) + "?" + cacheControl("max-age=60");
    const auto start = std::chrono::steady_clock::now();
    Response r = fetch(gw, target);
    CHECK(r.status == 200);
    CHECK(r.body == originBody("/origin/down-" + std::to_string(i), i + 2));
    CHECK(std::chrono::steady_clock::now() - start < 1500ms);
  }
  CHECK(redisResult(gw, "error") >= 1);
  // The memory tier goes on serving.
  CHECK(fetch(gw, before).body == originBody("/origin/before", 1));
  CHECK(b.stats().requests == 6);
  // Redis back (empty): fills reach it again once the workers have reconnected.
  redis.restart();
  waitRedisConnected(gw);
  const std::string after = "/origin/after?" + cacheControl("max-age=60");
  CHECK(fetch(gw, after).status == 200);
  CHECK(waitFor([&] { return cacheKeys(redis).size() == 1; }, 2000ms));
}

TEST_CASE("plugins cache redis: the admin purge reaches Redis, and only what it names") {
  TwoInstances both;
  auto& [redis, b, first, second] = both;
  const std::string query = "?" + cacheControl("max-age=60");
  for (const char* path : {"/origin/p/1", "/origin/p/2", "/origin/q/1"}) {
    CHECK(fetch(first, path + query).status == 200);
  }
  REQUIRE(waitFor([&redis = redis] { return cacheKeys(redis).size() == 3; }, 2000ms));

  Response purged = adminRequest(first, "/cache?prefix=/origin/p/", "DELETE");
  CHECK(purged.status == 200);
  CHECK(purged.body == "{\"purged\":2,\"redis_purges_queued\":1}\n");
  // A worker walks the keys in the background.
  REQUIRE(waitFor([&redis = redis] { return cacheKeys(redis).size() == 1; }, 3000ms));

  // The second instance never had /origin/p/1 in memory: it fetches it from the origin again,
  // while /origin/q/1 still comes from Redis.
  CHECK(fetch(second, "/origin/p/1" + query).body == originBody("/origin/p/1", 4));
  CHECK(fetch(second, "/origin/q/1" + query).body == originBody("/origin/q/1", 3));
  CHECK(b.stats().requests == 4);
  CHECK(first.log().find("\"msg\":\"redis cache purge\"") != std::string::npos);
}

TEST_CASE("plugins cache redis: store: redis without a redis: block is refused at its entry") {
  TempDir dir;
  const std::string path = dir.write("gw.yaml", R"(listeners:
  - address: 127.0.0.1
    port: 8080
upstreams:
  - name: main
    backends:
      - 127.0.0.1:9
routes:
  - name: cached
    match: {prefix: /}
    upstream: main
    plugins:
      - cache: {store: redis}
)");
  CommandResult result = runGatewaydCommand({"-t", "-c", path});
  CHECK(result.exit_code != 0);
  CHECK(result.err.find("gw.yaml:13:9: plugin 'cache' uses Redis: add a top-level 'redis:' "
                        "block (docs/configuration.md)") != std::string::npos);
}
