#include "gateway/redis/breaker.h"

#include <doctest/doctest.h>

#include <algorithm>

namespace gw::redis {
namespace {

constexpr BreakerSettings kSettings{3, 2, 100, 1000};

// A breaker that has connected and passed its probes.
Breaker closedBreaker() {
  Breaker breaker(kSettings, 7);
  breaker.connected();
  for (int i = 0; i < 2; ++i) {
    REQUIRE(breaker.admit());
    breaker.succeeded();
  }
  REQUIRE(breaker.state() == State::Closed);
  return breaker;
}

}  // namespace

TEST_CASE("breaker: nothing goes out while connecting or open") {
  Breaker breaker(kSettings, 1);
  CHECK(breaker.state() == State::Connecting);
  CHECK_FALSE(breaker.admit());
  breaker.opened();
  CHECK(breaker.state() == State::Open);
  CHECK_FALSE(breaker.admit());
  breaker.connecting();
  CHECK(breaker.state() == State::Connecting);
  CHECK_FALSE(breaker.admit());
}

TEST_CASE("breaker: half-open lets out its probes only, and closes when all succeed") {
  Breaker breaker(kSettings, 1);
  breaker.connected();
  CHECK(breaker.state() == State::HalfOpen);
  CHECK(breaker.admit());
  CHECK(breaker.admit());
  CHECK_FALSE(breaker.admit());  // both probes are out
  breaker.succeeded();
  CHECK(breaker.state() == State::HalfOpen);
  breaker.succeeded();
  CHECK(breaker.state() == State::Closed);
  for (int i = 0; i < 100; ++i) CHECK(breaker.admit());
}

TEST_CASE("breaker: a failed probe drops the connection") {
  Breaker breaker(kSettings, 1);
  breaker.connected();
  REQUIRE(breaker.admit());
  CHECK(breaker.failed());
}

TEST_CASE("breaker: closed opens after `errors` error replies in a row, not scattered ones") {
  Breaker breaker = closedBreaker();
  CHECK_FALSE(breaker.failed());
  CHECK_FALSE(breaker.failed());
  breaker.succeeded();  // the run is broken
  CHECK_FALSE(breaker.failed());
  CHECK_FALSE(breaker.failed());
  CHECK(breaker.failed());
  breaker.opened();
  CHECK(breaker.state() == State::Open);
  CHECK_FALSE(breaker.admit());
}

TEST_CASE("breaker: the reconnect delay doubles up to the maximum, jittered in [d/2, d]") {
  Breaker breaker(kSettings, 42);
  const int64_t expected[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (const int64_t full : expected) {
    const int64_t delay = breaker.opened();
    CHECK(delay >= full / 2);
    CHECK(delay <= full);
    breaker.connecting();
  }
  // A breaker that closed again starts over from the initial delay.
  breaker.connected();
  breaker.succeeded();
  breaker.succeeded();
  REQUIRE(breaker.state() == State::Closed);
  const int64_t delay = breaker.opened();
  CHECK(delay >= 50);
  CHECK(delay <= 100);
}

TEST_CASE("breaker: the jitter spreads the delays over the whole interval") {
  Breaker breaker({3, 2, 1000, 1000}, 9);
  int64_t lowest = 1000;
  int64_t highest = 0;
  for (int i = 0; i < 1000; ++i) {
    const int64_t delay = breaker.opened();
    lowest = std::min(lowest, delay);
    highest = std::max(highest, delay);
  }
  CHECK(lowest < 520);
  CHECK(highest > 980);
}

}  // namespace gw::redis
