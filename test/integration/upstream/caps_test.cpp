// Caps on what is in flight toward an upstream and its backends: over one, a request gets
// 503 UPSTREAM_OVERLOADED at once, after the other backends were tried.
#include <doctest.h>

#include <memory>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

using Clock = std::chrono::steady_clock;

// Clients each holding one request the backend answers after `ms`.
struct SlowRequests {
  std::vector<std::unique_ptr<Client>> clients;
  SlowRequests(uint16_t port, int count, int ms) {
    for (int i = 0; i < count; ++i) {
      auto& c = clients.emplace_back(std::make_unique<Client>(port));
      REQUIRE(c->send(get("/delay/" + std::to_string(ms))));
    }
  }
  void expectServed() {
    for (auto& c : clients) CHECK(c->read(10000ms).status == 200);
  }
};

void waitRequestsAt(Backend& b, uint64_t n) {
  REQUIRE(waitFor([&] { return b.stats().requests >= n; }, 5000ms));
}

// The request is refused by a cap, quickly, and the refusal is counted under `cap`.
void expectOverloaded(Gateway& gw, std::string_view cap, double count) {
  Client c(gw.port());
  const auto start = Clock::now();
  Response r = c.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 503);
  CHECK(errorCode(r.body) == "UPSTREAM_OVERLOADED");
  CHECK(Clock::now() - start < 500ms);
  const std::string metrics = adminRequest(gw, "/metrics").body;
  CHECK(metricSample(metrics, "gatewayd_upstream_overloaded_total{upstream=\"main\",cap=\"" +
                                  std::string(cap) + "\"}") == count);
}

// Holds `count` slow requests on `b`, then expects the next request refused by `cap`.
std::unique_ptr<SlowRequests> fillThenRefuse(Gateway& gw, Backend& b, int count,
                                             std::string_view cap) {
  auto held = std::make_unique<SlowRequests>(gw.port(), count, 1500);
  waitRequestsAt(b, count);
  expectOverloaded(gw, cap, 1);
  return held;
}

}  // namespace

TEST_CASE("caps: the request over a backend's max_requests gets 503 UPSTREAM_OVERLOADED at once") {
  Backend b;
  Gateway gw(simpleConfig({&b}, "", "    caps: {per_backend: {max_requests: 2}}\n"));
  auto held = fillThenRefuse(gw, b, 2, "requests");
  CHECK(b.stats().requests == 2);  // the refused one never reached the backend
  held->expectServed();
  Client c(gw.port());
  CHECK(c.roundTrip(get("/echo")).status == 200);
}

TEST_CASE("caps: a backend at its cap is passed over for another") {
  Backend b1("b1");
  Backend b2("b2");
  Gateway gw(simpleConfig({&b1, &b2}, "", "    caps: {per_backend: {max_requests: 1}}\n"));
  SlowRequests held(gw.port(), 1, 1500);  // round robin: b1
  waitRequestsAt(b1, 1);
  // b2, then b1 by the rotation, which is full: b2 again.
  for (int i = 0; i < 2; ++i) {
    Client c(gw.port());
    Response r = c.roundTrip(get("/echo"));
    CHECK(r.status == 200);
    CHECK(r.header("X-Backend-Id") == "b2");
  }
  SlowRequests second(gw.port(), 1, 1500);
  waitRequestsAt(b2, 3);
  expectOverloaded(gw, "requests", 1);
  held.expectServed();
  second.expectServed();
}

TEST_CASE("caps: an upstream's cap holds for the whole process, not per worker") {
  Backend b;
  Gateway gw(simpleConfig({&b}, "", "    caps: {max_requests: 2}\n", 2));
  SlowRequests held(gw.port(), 2, 2000);
  waitRequestsAt(b, 2);
  // Per worker, two workers would admit two more; over the process, none.
  for (int i = 1; i <= 4; ++i) expectOverloaded(gw, "requests", i);
  CHECK(b.stats().requests == 2);
  held.expectServed();
}

TEST_CASE("caps: max_connections counts pooled connections; at the cap none is pooled") {
  Backend b;
  Gateway gw(simpleConfig({&b}, "", "    caps: {max_connections: 1}\n"));
  fillThenRefuse(gw, b, 1, "connections")->expectServed();
  // The connection was closed rather than pooled at the cap, so the next request may connect.
  Client c(gw.port());
  CHECK(c.roundTrip(get("/echo")).status == 200);
  CHECK(c.roundTrip(get("/echo")).status == 200);
}
