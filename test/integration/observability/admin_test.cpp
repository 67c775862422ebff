// The admin listener through the real gatewayd: its endpoints, and /metrics counting exactly the
// traffic a test sent (across several workers), in a format promtool accepts.
#include <doctest.h>

#include <rapidjson/document.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

std::string routesConfig(const Backend& b, int workers) {
  return apiConfig(b, workers, {},
                   "  - name: bytes\n    match: {prefix: /bytes/}\n    upstream: main\n");
}

// Route "cached" (test_backend's scripted /origin/ paths, behind a cache) and "plain" (no cache).
std::string cachedConfig(const Backend& b) {
  return subst(R"(workers: 2
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends:
      - ${B}
routes:
  - name: cached
    match: {prefix: /origin/}
    upstream: main
    plugins:
      - cache: {}
  - name: plain
    match: {prefix: /}
    upstream: main
)",
               {{"B", b.address()}});
}

// A GET of `path` the origin answers as fresh for a minute, with `query` added, on a connection
// of its own (so the two workers take turns).
Response fetchCacheable(const Gateway& gw, std::string_view path, std::string_view query = {}) {
  Client c(gw.port());
  std::string target = std::string(path) + "?h=Cache-Control%3A%20max-age%3D60";
  if (!query.empty()) {
    target += '&';
    target += query;
  }
  return c.roundTrip(get(target));
}

bool isHit(const Response& r) {
  return r.header("Cache-Status").value_or("").find("hit") != std::string::npos;
}

// Stored, i.e. served from the cache at the latest on a later try (bounded).
bool becomesHit(const Gateway& gw, std::string_view path, std::string_view query = {}) {
  return waitFor([&] { return isHit(fetchCacheable(gw, path, query)); }, 3000ms);
}

}  // namespace

TEST_CASE("admin: /health, /ready, /status, unknown paths and methods") {
  Backend b;
  Gateway gw(routesConfig(b, 2));
  REQUIRE(gw.adminPort() != gw.port());

  Response health = adminRequest(gw, "/health");
  REQUIRE_MESSAGE(health.complete, health.error);
  CHECK(health.status == 200);
  CHECK(health.body == "{\"status\":\"alive\"}\n");
  CHECK(health.header("Connection") == "close");

  // Ready once both workers run: the gateway accepted its port, the loops follow at once.
  CHECK(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 5000ms));
  CHECK(adminRequest(gw, "/ready").body == "{\"status\":\"ready\"}\n");

  Response status = adminRequest(gw, "/status?pretty=1");  // a query is ignored
  REQUIRE(status.status == 200);
  CHECK(status.header("Content-Type") == "application/json");
  rapidjson::Document doc;
  REQUIRE_FALSE(doc.Parse(status.body.c_str()).HasParseError());
  CHECK(std::string(doc["version"].GetString()) == GATEWAYD_TEST_VERSION);
  CHECK(std::string(doc["state"].GetString()) == "serving");
  CHECK(doc["workers"].GetInt() == 2);
  CHECK(doc["config"]["generation"].GetInt() == 1);
  REQUIRE(doc["upstreams"].Size() == 1);
  CHECK(std::string(doc["upstreams"][0]["name"].GetString()) == "main");
  CHECK(std::string(doc["upstreams"][0]["backends"][0]["address"].GetString()) == b.address());

  Response missing = adminRequest(gw, "/nope");
  CHECK(missing.status == 404);
  CHECK(errorCode(missing.body) == "NOT_FOUND");
  Response post = adminRequest(gw, "/metrics", "POST");
  CHECK(post.status == 405);
  CHECK(errorCode(post.body) == "METHOD_NOT_ALLOWED");
  Client head(gw.adminPort());
  ReadOptions headOptions;
  headOptions.head = true;
  REQUIRE(head.send(request("HEAD", "/health")));
  Response headResponse = head.read(headOptions);
  CHECK(headResponse.status == 200);
  CHECK(headResponse.body.empty());

  // Admin traffic never reaches the proxy, and proxied traffic never the admin.
  Client proxied(gw.port());
  Response proxiedHealth = proxied.roundTrip(get("/health"));
  CHECK(proxiedHealth.status == 404);
  CHECK(errorCode(proxiedHealth.body) == "ROUTE_NOT_FOUND");
  CHECK(b.stats().requests == 0);
}

TEST_CASE("admin: /metrics counts exactly the requests sent, summed over workers") {
  Backend b;
  Gateway gw(routesConfig(b, 2));
  uint64_t apiRequestBytes = 0;
  int connections = 0;
  // Several connections so both workers take some (SO_REUSEPORT spreads them).
  for (int i = 0; i < 6; ++i) {
    Client c(gw.port());
    ++connections;
    const std::string plain = get("/api/items");
    const std::string posted = request("POST", "/api/items", "Content-Type: text/plain\r\n", "hello");
    const std::string failing = get("/api/status/503");
    for (const std::string* req : {&plain, &plain, &posted, &failing}) {
      Response r = c.roundTrip(*req);
      REQUIRE_MESSAGE(r.complete, r.error);
      apiRequestBytes += req->size();
    }
    Response unrouted = c.roundTrip(get("/elsewhere"));
    CHECK(unrouted.status == 404);
  }
  // One response whose every byte the client counts: the connection closes after it.
  Client raw(gw.port());
  ++connections;
  REQUIRE(raw.send(request("GET", "/bytes/1000", "Connection: close\r\n")));
  const std::string rawResponse = raw.readRaw(5000ms);
  REQUIRE(rawResponse.starts_with("HTTP/1.1 200"));

  Response scraped = adminRequest(gw, "/metrics");
  REQUIRE_MESSAGE(scraped.complete, scraped.error);
  CHECK(scraped.status == 200);
  CHECK(scraped.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  const std::string& m = scraped.body;
  INFO(m);
  CHECK(metricSample(m, R"m(gatewayd_http_requests_total{route="api",method="GET",code="200"})m") == 12);
  CHECK(metricSample(m, R"m(gatewayd_http_requests_total{route="api",method="POST",code="200"})m") == 6);
  CHECK(metricSample(m, R"m(gatewayd_http_requests_total{route="api",method="GET",code="503"})m") == 6);
  CHECK(metricSample(m, R"m(gatewayd_http_requests_total{route="(none)",method="GET",code="404"})m") == 6);
  CHECK(metricSample(m, R"m(gatewayd_http_requests_total{route="bytes",method="GET",code="200"})m") == 1);
  CHECK(metricSample(m, R"m(gatewayd_http_request_duration_seconds_count{route="api"})m") == 24);
  CHECK(metricSample(m, R"m(gatewayd_request_bytes_total{route="api"})m") == double(apiRequestBytes));
  CHECK(metricSample(m, R"m(gatewayd_response_bytes_total{route="bytes"})m") == double(rawResponse.size()));
  CHECK(metricSample(m, R"m(gatewayd_upstream_request_duration_seconds_count{upstream="main"})m") == 25);
  // Pool effectiveness: every upstream request used a new or a pooled connection.
  const double connects = metricSample(m, R"m(gatewayd_upstream_connects_total{upstream="main"})m");
  const double reuses = metricSample(m, R"m(gatewayd_upstream_reuses_total{upstream="main"})m");
  CHECK(connects >= 1);
  CHECK(connects + reuses == 25);
  // Plus the harness's probe of the port while it waited for gatewayd to listen.
  CHECK(metricSample(m, "gatewayd_downstream_connections_accepted_total") == connections + 1);
  CHECK(metricSample(m, "gatewayd_build_info{version=\"" GATEWAYD_TEST_VERSION "\"}") == 1);
  CHECK(metricSample(m, "process_open_fds") > 0);
  CHECK(metricSample(m, "process_resident_memory_bytes") > 0);
}

TEST_CASE("admin: promtool accepts the exposition") {
  Backend b;
  Gateway gw(routesConfig(b, 1));
  Client c(gw.port());
  REQUIRE(c.roundTrip(get("/api/x")).complete);
  REQUIRE(c.roundTrip(get("/nowhere")).complete);
  Response scraped = adminRequest(gw, "/metrics");
  REQUIRE(scraped.status == 200);
  const std::string problems = promtoolProblems(scraped.body);
  CHECK_MESSAGE(problems.empty(), problems);
}

TEST_CASE("admin: /ready turns 503 while draining, /health stays 200") {
  Backend b;
  Gateway gw(routesConfig(b, 1));
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 5000ms));
  Client slow(gw.port());
  REQUIRE(slow.send(get("/api/delay/1500")));  // keeps the drain going for a while
  REQUIRE(waitFor([&] { return b.stats().requests == 1; }, 5000ms));
  gw.process().signal(SIGTERM);
  Response ready;
  REQUIRE(waitFor([&] { return (ready = adminRequest(gw, "/ready")).status == 503; }, 5000ms));
  CHECK(ready.body.find("draining") != std::string::npos);
  CHECK(adminRequest(gw, "/health").status == 200);
  CHECK(slow.read(5000ms).status == 200);  // the request in flight still completes
}

TEST_CASE("admin: DELETE /cache checks its query and counts what it purged") {
  Backend b;
  Gateway gw(routesConfig(b, 1));

  // No cache on any route: a valid purge drops nothing.
  Response none = adminRequest(gw, "/cache?prefix=/", "DELETE");
  REQUIRE_MESSAGE(none.complete, none.error);
  CHECK(none.status == 200);
  CHECK(none.header("Content-Type") == "application/json");
  CHECK(none.body == "{\"purged\":0}\n");
  CHECK(adminRequest(gw, "/cache?path=%2Fitems%2F7&route=api&host=Example.com", "DELETE").body ==
        "{\"purged\":0}\n");

  for (const char* refused : {"/cache", "/cache?host=example.com", "/cache?path=/a&prefix=/b",
                              "/cache?path=/a&hots=example.com", "/cache?path=/a%zz"}) {
    Response r = adminRequest(gw, refused, "DELETE");
    INFO(refused << " -> " << r.body);
    CHECK(r.status == 400);
    CHECK(errorCode(r.body) == "BAD_REQUEST");
  }
  Response unknownRoute = adminRequest(gw, "/cache?path=/items/7&route=nope", "DELETE");
  CHECK(unknownRoute.status == 404);
  CHECK(errorCode(unknownRoute.body) == "NOT_FOUND");
  CHECK(unknownRoute.body.find("'nope'") != std::string::npos);

  // The purge answers DELETE only, and DELETE reaches nothing else.
  for (const char* method : {"POST", "GET"}) {
    Response r = adminRequest(gw, "/cache?path=/items/7", method);
    INFO(method);
    CHECK(r.status == 405);
    CHECK(r.header("Allow") == "DELETE");
    CHECK(errorCode(r.body) == "METHOD_NOT_ALLOWED");
  }
  Response deleteMetrics = adminRequest(gw, "/metrics", "DELETE");
  CHECK(deleteMetrics.status == 405);
  CHECK(deleteMetrics.header("Allow") == "GET, HEAD");
  CHECK(errorCode(deleteMetrics.body) == "METHOD_NOT_ALLOWED");
  CHECK(b.stats().requests == 0);
}

TEST_CASE("admin: DELETE /cache drops stored responses from the cache every worker shares") {
  Backend b;
  Gateway gw(cachedConfig(b));
  Response first = fetchCacheable(gw, "/origin/items/7");
  REQUIRE_MESSAGE(first.complete, first.error);
  REQUIRE(first.status == 200);
  CHECK_FALSE(isHit(first));
  REQUIRE(becomesHit(gw, "/origin/items/7"));
  REQUIRE(becomesHit(gw, "/origin/items/7", "v=2"));  // the same path, another query
  REQUIRE(becomesHit(gw, "/origin/items/70"));        // another path with the same start

  // Filters that match none of them: another host, a route without a cache.
  CHECK(adminRequest(gw, "/cache?path=/origin/items/7&host=other.test", "DELETE").body ==
        "{\"purged\":0}\n");
  CHECK(adminRequest(gw, "/cache?path=/origin/items/7&route=plain", "DELETE").body ==
        "{\"purged\":0}\n");
  CHECK(isHit(fetchCacheable(gw, "/origin/items/7")));

  // An exact path: both of its queries go, /origin/items/70 stays.
  Response purged = adminRequest(gw, "/cache?path=%2Forigin%2Fitems%2F7&host=GW.test", "DELETE");
  CHECK(purged.status == 200);
  CHECK(purged.body == "{\"purged\":2}\n");
  const uint64_t originRequests = b.stats().requests;
  Response refetched = fetchCacheable(gw, "/origin/items/7");
  CHECK(refetched.status == 200);
  CHECK_FALSE(isHit(refetched));
  CHECK(b.stats().requests == originRequests + 1);
  CHECK(isHit(fetchCacheable(gw, "/origin/items/70")));

  // A prefix in one route's caches: what is left under /origin/items/ (7 stored again, and 70).
  REQUIRE(becomesHit(gw, "/origin/items/7"));
  CHECK(adminRequest(gw, "/cache?prefix=/origin/items/&route=cached", "DELETE").body ==
        "{\"purged\":2}\n");
  CHECK_FALSE(isHit(fetchCacheable(gw, "/origin/items/70")));
}
