// A route's retry policy: which failures are tried again, where, how often, within what time,
// and the upstream's budget that keeps retries from amplifying an outage.
#include <doctest.h>

#include <memory>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

using Clock = std::chrono::steady_clock;

// Upstream "main" with b1 and b2 (round robin: the first request goes to b1), the catch-all
// route with `retries`, and a client.
std::string retryConfig(Backend& b1, Backend& b2, std::string_view retries,
                        std::string_view upstreamExtra = {}) {
  return simpleConfig({&b1, &b2}, "    retries: " + std::string(retries) + "\n",
                      std::string(upstreamExtra));
}

struct TwoBackends {
  explicit TwoBackends(std::string_view retries, std::string_view upstreamExtra = {})
      : gw(retryConfig(b1, b2, retries, upstreamExtra)), c(gw.port()) {}
  uint64_t requests() { return b1.stats().requests + b2.stats().requests; }
  Backend b1{"b1"};
  Backend b2{"b2"};
  Gateway gw;
  Client c;
};

double upstreamMetric(const Gateway& gw, const std::string& name, std::string_view labels = {}) {
  const std::string series =
      name + "{upstream=\"main\"" + (labels.empty() ? "" : "," + std::string(labels)) + "}";
  return metricSample(adminRequest(gw, "/metrics").body, series);
}

}  // namespace

TEST_CASE("retries: a listed status is retried on the other backend; the client never sees it") {
  TwoBackends t("{attempts: 2, on: [503]}");
  Response r = t.c.roundTrip(get("/status/503?only=b1"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.header("X-Backend-Id") == "b2");
  CHECK(t.b1.stats().requests == 1);
  CHECK(t.b2.stats().requests == 1);
  CHECK(upstreamMetric(t.gw, "gatewayd_upstream_retries_total", "reason=\"status\"") == 1);
  // An unlisted status passes through.
  r = t.c.roundTrip(get("/status/502?only=b1"));
  r = t.c.roundTrip(get("/status/502?only=b1"));  // one of the two went to b1
  CHECK(upstreamMetric(t.gw, "gatewayd_upstream_retries_total", "reason=\"status\"") == 1);
}

TEST_CASE("retries: the last try's answer goes to the client when every try failed") {
  TwoBackends t("{attempts: 3, on: [503]}");
  Response r = t.c.roundTrip(get("/status/503"));
  CHECK(r.status == 503);
  CHECK(r.body == "status 503\n");  // the backend's own answer, not a gateway error
  // Three tries: b1, b2, then b1 again (no backend is left untried).
  CHECK(t.requests() == 3);
}

TEST_CASE("retries: a POST is not retried: the backend may have acted on it") {
  TwoBackends t("{on: [503]}");
  CHECK(t.c.roundTrip(request("POST", "/status/503?only=b1")).status == 503);
  CHECK(t.b2.stats().requests == 0);
}

TEST_CASE("retries: methods: all retries a POST, but never one whose body was streamed") {
  TwoBackends t("{on: [503], methods: all}");
  Response r = t.c.roundTrip(request("POST", "/status/503?only=b1"));
  CHECK(r.status == 200);
  CHECK(r.header("X-Backend-Id") == "b2");
  // The body streamed to the backend that failed is gone: it cannot be sent again.
  r = t.c.roundTrip(request("POST", "/status/503?only=b2", "", "payload"));
  r = t.c.roundTrip(request("POST", "/status/503?only=b2", "", "payload"));
  CHECK(t.requests() == 4);
  CHECK(upstreamMetric(t.gw, "gatewayd_upstream_retries_total", "reason=\"status\"") == 1);
}

TEST_CASE("retries: a reset before any response byte is retried on the other backend") {
  TwoBackends t("{attempts: 2}");
  Response r = t.c.roundTrip(get("/close-now?only=b1"));
  CHECK(r.status == 200);
  CHECK(r.header("X-Backend-Id") == "b2");
  CHECK(upstreamMetric(t.gw, "gatewayd_upstream_retries_total", "reason=\"reset\"") == 1);
}

TEST_CASE("retries: a try over its per-try timeout is abandoned for the other backend") {
  TwoBackends t("{attempts: 2, per_try_timeout: 300ms}");
  const auto start = Clock::now();
  Response r = t.c.roundTrip(get("/delay/5000?only=b1"));
  CHECK(r.status == 200);
  CHECK(r.header("X-Backend-Id") == "b2");
  CHECK(Clock::now() - start < 3000ms);
  CHECK(upstreamMetric(t.gw, "gatewayd_upstream_per_try_timeouts_total") == 1);
  CHECK(upstreamMetric(t.gw, "gatewayd_upstream_retries_total", "reason=\"per_try_timeout\"") == 1);
}

TEST_CASE("retries: the overall timeout ends the tries with 504 UPSTREAM_TIMEOUT") {
  TwoBackends t("{attempts: 5, per_try_timeout: 300ms, timeout: 700ms}");
  const auto start = Clock::now();
  Response r = t.c.roundTrip(get("/delay/5000"));
  const auto took = Clock::now() - start;
  CHECK(r.status == 504);
  CHECK(errorCode(r.body) == "UPSTREAM_TIMEOUT");
  CHECK(took >= 600ms);
  CHECK(took < 3000ms);
  // 300 + 300 ms, then the deadline cut the third try.
  CHECK(t.requests() == 3);
}

TEST_CASE("retries: under an outage the budget bounds the retries in flight, and counts the rest") {
  TwoBackends t("{attempts: 2, on: [503]}", "    retry_budget: {percent: 0, min_concurrency: 2}\n");
  // Every backend answers 503 after 300 ms: the 10 first tries fail together, and each retry
  // holds its share of the budget for 300 ms more.
  constexpr int kClients = 10;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>(t.gw.port()));
    REQUIRE(clients.back()->send(get("/origin/x?status=503&delay=300")));
  }
  for (auto& c : clients) CHECK(c->read(5000ms).status == 503);
  const double retries =
      upstreamMetric(t.gw, "gatewayd_upstream_retries_total", "reason=\"status\"");
  const double refused = upstreamMetric(t.gw, "gatewayd_upstream_retry_budget_exhausted_total");
  CHECK(retries + refused == kClients);
  CHECK(retries >= 1);
  CHECK(retries <= 4);  // 2 in flight at once; a few more only if the first tries straggle
  CHECK(t.requests() == kClients + retries);
}
