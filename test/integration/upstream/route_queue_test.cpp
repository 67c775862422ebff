// A route's concurrency limit (routes[].concurrency): at most max_requests of its requests in
// flight for the process; the next wait in a bounded FIFO for a slot, and get 503
// ROUTE_OVERLOADED with Retry-After when the queue is full or their wait runs out.
#include <doctest.h>

#include <memory>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

using Clock = std::chrono::steady_clock;

// One route "route-1" over `b` with `concurrency` (a flow map), and the access log in `logPath`.
std::string limitedConfig(const Backend& b, std::string_view concurrency, int workers = 1,
                          const std::string& logPath = "") {
  std::string extra = "    concurrency: " + std::string(concurrency) + "\n";
  if (!logPath.empty()) extra += "access_log:\n  path: " + logPath + "\n";
  return simpleConfig({&b}, extra, "", workers);
}

// Clients each with one request on the way.
struct Requests {
  std::vector<std::unique_ptr<Client>> clients;
  Requests(uint16_t port, int count, const std::string& target) {
    for (int i = 0; i < count; ++i) {
      auto& c = clients.emplace_back(std::make_unique<Client>(port, 10000ms));
      REQUIRE(c->send(get(target)));
    }
  }
  void expectServed() {
    for (auto& c : clients) CHECK(c->read(10000ms).status == 200);
  }
};

double sample(Gateway& gw, const std::string& series) {
  return metricSample(adminRequest(gw, "/metrics").body, series);
}

const std::string kDepth = "gatewayd_route_queue_depth{route=\"route-1\"}";
const std::string kQueued = "gatewayd_route_queued_total{route=\"route-1\"}";
const std::string kWaited = "gatewayd_route_queue_wait_seconds_total{route=\"route-1\"}";
std::string overloaded(std::string_view reason) {
  return "gatewayd_route_overloaded_total{route=\"route-1\",reason=\"" + std::string(reason) +
         "\"}";
}

void waitDepth(Gateway& gw, double depth) {
  REQUIRE(waitFor([&] { return sample(gw, kDepth) == depth; }, 5000ms));
}

void waitRequestsAt(Backend& b, uint64_t n) {
  REQUIRE(waitFor([&] { return b.stats().requests >= n; }, 5000ms));
}

void expectRouteOverloaded(const Response& r) {
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 503);
  CHECK(errorCode(r.body) == "ROUTE_OVERLOADED");
  CHECK(r.header("Retry-After") == "1");
}

// The next request is refused with ROUTE_OVERLOADED without waiting.
void expectRefusedAtOnce(Gateway& gw) {
  Client c(gw.port());
  const auto start = Clock::now();
  expectRouteOverloaded(c.roundTrip(get("/echo")));
  CHECK(Clock::now() - start < 500ms);
}

// Holds the one slot and fills the queue with `waiting` requests: the next is refused at once,
// and those held are served.
void expectFullRefusal(std::string_view concurrency, int waiting) {
  Backend b;
  Gateway gw(limitedConfig(b, concurrency));
  Requests held(gw.port(), 1, "/delay/1500");
  waitRequestsAt(b, 1);
  Requests queued(gw.port(), waiting, "/echo");
  waitDepth(gw, waiting);
  expectRefusedAtOnce(gw);
  CHECK(sample(gw, overloaded("queue_full")) == 1);
  CHECK(sample(gw, kQueued) == waiting);
  held.expectServed();
  queued.expectServed();
  CHECK(b.stats().requests == uint64_t(1 + waiting));
}

}  // namespace

TEST_CASE("route queue: max_requests go up, the next waits and is served when a slot frees") {
  Backend b;
  Gateway gw(limitedConfig(b, "{max_requests: 2, queue: 2, queue_timeout: 5s}"));
  Requests held(gw.port(), 2, "/delay/600");
  waitRequestsAt(b, 2);
  Requests queued(gw.port(), 1, "/echo");
  waitDepth(gw, 1);
  CHECK(b.stats().requests == 2);  // it waits here, not at the backend
  held.expectServed();
  queued.expectServed();
  CHECK(b.stats().requests == 3);
  const std::string metrics = adminRequest(gw, "/metrics").body;
  CHECK(metricSample(metrics, kDepth) == 0);
  CHECK(metricSample(metrics, kQueued) == 1);
  CHECK(metricSample(metrics, kWaited) > 0.1);
  CHECK(metricSample(metrics, overloaded("queue_full")) == 0);
  CHECK(metricSample(metrics, overloaded("queue_timeout")) == 0);
  // Every slot came back: two at once go straight up again.
  Requests again(gw.port(), 2, "/echo");
  again.expectServed();
  CHECK(sample(gw, kQueued) == 1);
}

TEST_CASE("route queue: waiters are served in the order they came") {
  Backend b;
  Gateway gw(limitedConfig(b, "{max_requests: 1, queue: 3, queue_timeout: 5s}"));
  Requests held(gw.port(), 1, "/delay/500");
  waitRequestsAt(b, 1);
  std::vector<std::unique_ptr<Client>> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(std::make_unique<Client>(gw.port(), 10000ms));
    REQUIRE(waiting.back()->send(get("/delay/100?n=" + std::to_string(i))));
    waitDepth(gw, i + 1);
  }
  held.expectServed();
  for (auto& c : waiting) CHECK(c->read(5000ms).status == 200);
  // The backend saw them one after the other, in the order they came.
  std::vector<std::string> targets;
  for (const Echo& seen : b.requests()) targets.push_back(seen.target);
  CHECK(targets == std::vector<std::string>{"/delay/500", "/delay/100?n=0", "/delay/100?n=1",
                                            "/delay/100?n=2"});
}

TEST_CASE("route queue: queue_timeout answers 503 ROUTE_OVERLOADED with Retry-After, logged") {
  Backend b;
  TempDir dir;
  const std::string logPath = dir.path() + "/access.log";
  Gateway gw(limitedConfig(b, "{max_requests: 1, queue: 1, queue_timeout: 300ms}", 1, logPath));
  Requests held(gw.port(), 1, "/delay/2000");
  waitRequestsAt(b, 1);
  Client c(gw.port());
  const auto start = Clock::now();
  const Response r = c.roundTrip(get("/echo"));
  const auto waited = Clock::now() - start;
  expectRouteOverloaded(r);
  CHECK(waited >= 280ms);
  CHECK(waited < 1500ms);
  CHECK(b.stats().requests == 1);
  const std::string metrics = adminRequest(gw, "/metrics").body;
  CHECK(metricSample(metrics, overloaded("queue_timeout")) == 1);
  CHECK(metricSample(metrics, overloaded("queue_full")) == 0);
  CHECK(metricSample(metrics, kDepth) == 0);
  CHECK(metricSample(metrics, kWaited) >= 0.29);
  REQUIRE(waitFor([&] { return readFile(logPath).find("ROUTE_OVERLOADED") != std::string::npos; },
                  5000ms));
  CHECK(readFile(logPath).find("\"error\":\"ROUTE_OVERLOADED\"") != std::string::npos);
  held.expectServed();
}

TEST_CASE("route queue: a full queue answers 503 ROUTE_OVERLOADED at once") {
  expectFullRefusal("{max_requests: 1, queue: 1, queue_timeout: 5s}", 1);
}

TEST_CASE("route queue: without a queue, the request over max_requests is refused at once") {
  expectFullRefusal("{max_requests: 1}", 0);
}

TEST_CASE("route queue: a queued client that goes away frees its place and never goes up") {
  Backend b;
  Gateway gw(limitedConfig(b, "{max_requests: 1, queue: 1, queue_timeout: 5s}"));
  Requests held(gw.port(), 1, "/delay/1000");
  waitRequestsAt(b, 1);
  {
    Client gone(gw.port());
    REQUIRE(gone.send(get("/echo?gone")));
    waitDepth(gw, 1);
  }
  waitDepth(gw, 0);
  Requests next(gw.port(), 1, "/echo");  // the queue has room again
  waitDepth(gw, 1);
  held.expectServed();
  next.expectServed();
  CHECK(b.stats().requests == 2);
  CHECK(sample(gw, kQueued) == 2);
  CHECK(sample(gw, overloaded("queue_full")) == 0);
}

TEST_CASE("route queue: a request that fails upstream gives its slot back") {
  Backend b;
  Gateway gw(limitedConfig(b, "{max_requests: 1, queue: 1, queue_timeout: 2s}"));
  // The backend closes without an answer: each exchange ends with an error and gives its slot
  // back, so the next is never queued (a leaked slot would make it wait, then 503).
  for (int i = 0; i < 3; ++i) {
    Client c(gw.port());
    Response r = c.roundTrip(get("/close-now"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 502);
  }
  Client d(gw.port());
  CHECK(d.roundTrip(get("/echo")).status == 200);
  CHECK(sample(gw, kQueued) == 0);
}

TEST_CASE("route queue: with two workers the limit holds for the process") {
  Backend b;
  Gateway gw(limitedConfig(b, "{max_requests: 1, queue: 8, queue_timeout: 10s}", 2));
  const auto start = Clock::now();
  // Many connections, so both workers take some: one at a time reaches the backend whatever
  // worker it arrived on, and a slot ending on one worker wakes a waiter on the other.
  Requests all(gw.port(), 5, "/delay/300");
  all.expectServed();
  CHECK(Clock::now() - start >= 1400ms);  // 5 x 300 ms, one after the other
  CHECK(sample(gw, kQueued) == 4);
  CHECK(sample(gw, kDepth) == 0);
  // Past one in flight and 8 waiting: refused, whichever worker it reaches.
  Requests held(gw.port(), 9, "/delay/1000");
  waitDepth(gw, 8);
  for (int i = 0; i < 4; ++i) expectRefusedAtOnce(gw);
  CHECK(sample(gw, overloaded("queue_full")) == 4);
}
