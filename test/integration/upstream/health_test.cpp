// Upstream health through the real gatewayd: active probes and passive ejection take dead
// backends out of the rotation, /ready and /status tell the truth about it, and a backend that
// comes back is used again.
#include <doctest.h>

#include <rapidjson/document.h>

#include <memory>
#include <ostream>
#include <string>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// Backend `address` of the first upstream as /status reports it (state "" if not found).
struct BackendView {
  std::string state;
  int64_t consecutiveFailures = -1;
  int64_t ejections = -1;
  int64_t ejectionsRefused = -1;
  bool operator==(const BackendView&) const = default;
};

std::ostream& operator<<(std::ostream& out, const BackendView& v) {
  return out << "{" << v.state << ", consecutive_failures " << v.consecutiveFailures
             << ", ejections " << v.ejections << ", ejections_refused " << v.ejectionsRefused
             << "}";
}

BackendView backendStatus(const Gateway& gw, const std::string& address) {
  Response r = adminRequest(gw, "/status");
  rapidjson::Document doc;
  if (!r.complete || doc.Parse(r.body.c_str()).HasParseError()) return {};
  for (const auto& backend : doc["upstreams"][0]["backends"].GetArray()) {
    if (address != backend["address"].GetString()) continue;
    auto count = [&](const char* name) -> int64_t {
      return backend.HasMember(name) ? backend[name].GetInt64() : -1;
    };
    return {backend["state"].GetString(), count("consecutive_failures"), count("ejections"),
            count("ejections_refused")};
  }
  return {};
}

std::string backendState(const Gateway& gw, const std::string& address) {
  return backendStatus(gw, address).state;
}

// `times` requests for /echo, each answered 200 by the backend with id `id`.
void expectServedBy(const Gateway& gw, std::string_view id, int times) {
  for (int i = 0; i < times; ++i) {
    Response r = Client(gw.port()).roundTrip(get("/echo"));
    REQUIRE(r.complete);
    CHECK(r.status == 200);
    CHECK(r.header("X-Backend-Id") == id);
  }
}

// A request the gateway answers with a JSON error: its status and code.
void expectError(const Gateway& gw, std::string_view target, int status, std::string_view code) {
  Response r = Client(gw.port()).roundTrip(get(target));
  REQUIRE(r.complete);
  CHECK(r.status == status);
  CHECK(errorCode(r.body) == code);
}

std::string activeConfig(const Backend& a, const Backend& b, std::string_view extraTop = {}) {
  return std::string(extraTop) + subst(R"yaml(workers: 2
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

// Upstream "main": a port nothing listens on (every connect refused), then `live`; one worker;
// passive ejection after `failures` for a minute.
std::string deadAndLiveConfig(uint16_t deadPort, const Backend& live, int failures) {
  return subst(R"yaml(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends: [127.0.0.1:${DEAD}, ${LIVE}]
    health_checks:
      passive: {consecutive_failures: ${FAILURES}, base_ejection: 1m}
routes:
  - upstream: main
)yaml",
               {{"DEAD", std::to_string(deadPort)},
                {"LIVE", live.address()},
                {"FAILURES", std::to_string(failures)}});
}

}  // namespace

TEST_CASE(
    "health: a killed backend leaves the rotation, /ready lists the upstream, it comes back") {
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
  // By default an upstream without a backend is listed, and the gateway stays ready: its other
  // routes (and other instances behind the same load balancer) serve on.
  const std::string degraded = "{\"status\":\"ready\",\"degraded_upstreams\":[\"main\"]}\n";
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").body == degraded; }, 5000ms));
  CHECK(adminRequest(gw, "/ready").status == 200);
  Response refused = Client(gw.port()).roundTrip(get("/echo"));
  REQUIRE(refused.complete);
  CHECK(refused.status == 503);
  CHECK(errorCode(refused.body) == "UPSTREAM_UNAVAILABLE");

  a = std::make_unique<Backend>("a", portA);
  REQUIRE(waitFor([&] { return backendState(gw, addressA) == "healthy"; }, 5000ms));
  CHECK(waitFor([&] { return adminRequest(gw, "/ready").body == "{\"status\":\"ready\"}\n"; },
                2000ms));
  Response back = Client(gw.port()).roundTrip(get("/echo"));
  REQUIRE(back.complete);
  CHECK(back.status == 200);
  CHECK(back.header("X-Backend-Id") == "a");
  CHECK(backendState(gw, addressB) == "unhealthy");
  (void)portB;
}

TEST_CASE("health: an upstream readiness requires turns /ready to 503 without a backend") {
  auto a = std::make_unique<Backend>("a");
  const uint16_t portA = a->port();
  Backend b("b");
  Gateway gw(activeConfig(*a, b, "readiness: {required_upstreams: [main]}\n"));
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 5000ms));
  b.process().stop();
  a.reset();
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").status == 503; }, 5000ms));
  CHECK(adminRequest(gw, "/ready").body ==
        "{\"status\":\"not_ready\",\"reasons\":[\"upstream 'main' has no healthy backend\"],"
        "\"degraded_upstreams\":[\"main\"]}\n");
  a = std::make_unique<Backend>("a", portA);
  CHECK(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 5000ms));
}

TEST_CASE("health: passive checks eject a failing backend after consecutive failures") {
  Backend live("live");
  const uint16_t deadPort = freePort();  // nothing listens: every connect is refused
  Gateway gw(deadAndLiveConfig(deadPort, live, 3));
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

TEST_CASE("health: read timeouts of one slow path do not eject the only backend") {
  Backend b("b");
  Gateway gw(simpleConfig({&b}, {},
                          "    timeouts: {read: 200ms}\n"
                          "    health_checks:\n      passive: {consecutive_failures: 2}\n"));
  // Past the threshold, twice: a client alone decides how often the slow path is asked.
  for (int i = 0; i < 5; ++i) expectError(gw, "/delay/1000", 504, "UPSTREAM_TIMEOUT");
  expectServedBy(gw, "b", 3);
  CHECK(adminRequest(gw, "/ready").status == 200);
  // The timeouts were not counted at all (not merely kept from ejecting the only backend).
  CHECK(backendStatus(gw, b.address()) == BackendView{"healthy", 0, 0, 0});
  CHECK(metricSample(adminRequest(gw, "/metrics").body,
                     R"m(gatewayd_upstream_errors_total{upstream="main",kind="timeout"})m") == 5);
}

TEST_CASE("health: a refusing backend is ejected, the last one in rotation never is") {
  Backend live("live");
  const uint16_t deadPort = freePort();  // nothing listens: every connect is refused
  Gateway gw(deadAndLiveConfig(deadPort, live, 1));
  const std::string dead = "127.0.0.1:" + std::to_string(deadPort);
  // Round-robin sends one of the first two requests to the dead backend; it is retried on the
  // live one, and the refused connect ejects the dead one (half of two backends: within the cap).
  for (int i = 0; i < 2; ++i) REQUIRE(Client(gw.port()).roundTrip(get("/echo")).status == 200);
  REQUIRE(waitFor([&] { return backendState(gw, dead) == "ejected"; }, 2000ms));
  // Now the live backend fails too, past the threshold each time: the cap keeps it in.
  for (int i = 0; i < 3; ++i) expectError(gw, "/close-now", 502, "UPSTREAM_RESET");
  expectServedBy(gw, "live", 1);
  CHECK(adminRequest(gw, "/ready").status == 200);
  // One refused ejection per failed exchange; the streak starts over after each.
  CHECK(backendStatus(gw, live.address()) == BackendView{"healthy", 0, 0, 3});
  CHECK(backendState(gw, dead) == "ejected");
}

TEST_CASE("health: a reset retried on the same backend counts as one failed exchange") {
  Backend b("b");
  Gateway gw(
      simpleConfig({&b}, {}, "    health_checks:\n      passive: {consecutive_failures: 2}\n"));
  Client client(gw.port());
  REQUIRE(client.roundTrip(get("/echo")).status == 200);  // leaves a pooled connection
  b.reset();
  // Sent on the pooled connection, which the backend closes: retried once on a fresh one.
  Response reset = client.roundTrip(get("/close-now"));
  REQUIRE(reset.complete);
  CHECK(reset.status == 502);
  CHECK(errorCode(reset.body) == "UPSTREAM_RESET");
  CHECK(b.requests().size() == 2);
  CHECK(metricSample(adminRequest(gw, "/metrics").body,
                     R"m(gatewayd_upstream_errors_total{upstream="main",kind="reset"})m") == 2);
  CHECK(backendStatus(gw, b.address()) == BackendView{"healthy", 1, 0, 0});
  // The second failed exchange, not the second attempt, completes the streak of two.
  expectError(gw, "/close-now", 502, "UPSTREAM_RESET");
  CHECK(backendStatus(gw, b.address()) == BackendView{"healthy", 0, 0, 1});
}

TEST_CASE("health: with count_read_timeouts, a read timeout counts toward ejection") {
  Backend a("a");
  Backend b("b");
  Gateway gw(simpleConfig({&a, &b}, {},
                          "    timeouts: {read: 200ms}\n"
                          "    health_checks:\n"
                          "      passive: {consecutive_failures: 1, count_read_timeouts: true}\n"));
  // Round-robin starts with the first backend.
  expectError(gw, "/delay/1000", 504, "UPSTREAM_TIMEOUT");
  CHECK(backendState(gw, a.address()) == "ejected");
  CHECK(backendState(gw, b.address()) == "healthy");
  expectServedBy(gw, "b", 3);
}

// A backend's response head has limits of its own (limits.upstream_header_*): a client's 100
// fields are not what a backend may send. Past them the answer is a 502 whose log says which
// limit, and the backend is not blamed: the limit is the gateway's.
TEST_CASE("health: a response head over the gateway's own limits is a 502, not a backend failure") {
  Backend b("b");
  Gateway gw(simpleConfig({&b}, "limits:\n  header_count: 20\n  upstream_header_count: 60\n",
                          "    health_checks:\n      passive: {consecutive_failures: 1}\n"));
  auto answerWithFields = [](int count) {
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n";
    for (int i = 0; i < count; ++i) head += "X-Field-" + std::to_string(i) + ": v\r\n";
    return head + "\r\nok";
  };
  // More than the clients' header_count, within upstream_header_count: passed through.
  Response within = Client(gw.port()).roundTrip(get(rawResponseTarget(answerWithFields(50))));
  REQUIRE_MESSAGE(within.complete, within.error);
  CHECK(within.status == 200);
  CHECK(within.header("X-Field-49") == "v");
  for (int i = 0; i < 3; ++i) {
    expectError(gw, rawResponseTarget(answerWithFields(80)), 502, "UPSTREAM_PROTOCOL_ERROR");
  }
  CHECK(backendStatus(gw, b.address()) == BackendView{"healthy", 0, 0, 0});
  CHECK(gw.log().find("more than 60 header fields") != std::string::npos);
  expectServedBy(gw, "b", 1);
}
