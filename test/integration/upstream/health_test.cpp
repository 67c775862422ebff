// Upstream health through the real gatewayd: active probes and passive ejection take dead
// backends out of the rotation, /ready and /status tell the truth about it, and a backend that
// comes back is used again.
#include <doctest.h>

#include <rapidjson/document.h>

#include <memory>
#include <string>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// The state /status reports for backend `address` of the first upstream ("" if not found).
std::string backendState(const Gateway& gw, const std::string& address) {
  Response r = adminRequest(gw, "/status");
  rapidjson::Document doc;
  if (!r.complete || doc.Parse(r.body.c_str()).HasParseError()) return "";
  for (const auto& backend : doc["upstreams"][0]["backends"].GetArray()) {
    if (address == backend["address"].GetString()) return backend["state"].GetString();
  }
  return "";
}

std::string activeConfig(const Backend& a, const Backend& b) {
  return subst(R"yaml(workers: 2
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends: [${A}, ${B}]
    health_checks:
      active: {path: /status/204, interval: 100ms, timeout: 500ms, healthy_threshold: 2,
               unhealthy_threshold: 2, expected_statuses: [200-299]}
      passive: {consecutive_failures: 0}
routes:
  - upstream: main
)yaml",
               {{"A", a.address()}, {"B", b.address()}});
}

}  // namespace

TEST_CASE("health: a killed backend leaves the rotation, /ready flips, and it comes back") {
  auto a = std::make_unique<Backend>("a");
  auto b = std::make_unique<Backend>("b");
  const uint16_t portA = a->port();
  const uint16_t portB = b->port();
  const std::string addressA = a->address();
  const std::string addressB = b->address();
  Gateway gw(activeConfig(*a, *b));
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 5000ms));
  CHECK(backendState(gw, addressA) == "healthy");
  // The probes reach the backends with the configured path.
  REQUIRE(waitFor([&] {
    for (const Echo& seen : a->requests()) {
      if (seen.target == "/status/204" && seen.header("User-Agent") == "gatewayd-health") return true;
    }
    return false;
  }, 5000ms));

  a.reset();  // killed: its pooled connections die with it
  int errors = 0;
  for (int i = 0; i < 30; ++i) {
    Response r = Client(gw.port()).roundTrip(get("/echo"));
    REQUIRE(r.complete);
    if (r.status != 200) ++errors;
  }
  CHECK(errors <= 1);  // at most the exchange in flight on a dead pooled connection
  REQUIRE(waitFor([&] { return backendState(gw, addressA) == "unhealthy"; }, 5000ms));
  for (int i = 0; i < 10; ++i) {
    Response r = Client(gw.port()).roundTrip(get("/echo"));
    REQUIRE(r.complete);
    CHECK(r.status == 200);
    CHECK(r.header("X-Backend-Id") == "b");
  }
  CHECK(adminRequest(gw, "/ready").status == 200);  // one backend is enough

  b.reset();
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").status == 503; }, 5000ms));
  Response notReady = adminRequest(gw, "/ready");
  CHECK(notReady.body.find("upstream 'main' has no healthy backend") != std::string::npos);
  Response refused = Client(gw.port()).roundTrip(get("/echo"));
  REQUIRE(refused.complete);
  CHECK(refused.status == 503);
  CHECK(errorCode(refused.body) == "UPSTREAM_UNAVAILABLE");

  a = std::make_unique<Backend>("a", portA);
  REQUIRE(waitFor([&] { return backendState(gw, addressA) == "healthy"; }, 5000ms));
  CHECK(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 2000ms));
  Response back = Client(gw.port()).roundTrip(get("/echo"));
  REQUIRE(back.complete);
  CHECK(back.status == 200);
  CHECK(back.header("X-Backend-Id") == "a");
  CHECK(backendState(gw, addressB) == "unhealthy");
  (void)portB;
}

TEST_CASE("health: passive checks eject a failing backend after consecutive failures") {
  Backend live("live");
  const uint16_t deadPort = freePort();  // nothing listens: every connect is refused
  Gateway gw(subst(R"yaml(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends: [127.0.0.1:${DEAD}, ${LIVE}]
    health_checks:
      passive: {consecutive_failures: 3, base_ejection: 1m}
routes:
  - upstream: main
)yaml",
                   {{"DEAD", std::to_string(deadPort)}, {"LIVE", live.address()}}));
  const std::string dead = "127.0.0.1:" + std::to_string(deadPort);
  // Connect failures are retried on the live backend, so clients see no error meanwhile. After
  // a refused connect a worker leaves the backend alone for a second on its own, so the
  // failures that count toward ejection come a second apart.
  int errors = 0;
  CHECK(waitFor(
      [&] {
        for (int i = 0; i < 4; ++i) {
          if (Client(gw.port()).roundTrip(get("/echo")).status != 200) ++errors;
        }
        return backendState(gw, dead) == "ejected";
      },
      10000ms, 1100ms));
  CHECK(errors == 0);
  const std::string before = adminRequest(gw, "/metrics").body;
  const std::string connectErrors = R"m(gatewayd_upstream_errors_total{upstream="main",kind="connect"})m";
  CHECK(metricSample(before, connectErrors) == 3);  // ejected at the third; never tried again
  for (int i = 0; i < 10; ++i) {
    REQUIRE(Client(gw.port()).roundTrip(get("/echo")).status == 200);
  }
  CHECK(metricSample(adminRequest(gw, "/metrics").body, connectErrors) == 3);
  CHECK(metricSample(before, R"m(gatewayd_upstream_backend_healthy{upstream="main",backend=")m" +
                                 dead + "\"}") == 0);
  Response status = adminRequest(gw, "/status");
  CHECK(status.body.find("3 consecutive failed exchanges") != std::string::npos);
}
