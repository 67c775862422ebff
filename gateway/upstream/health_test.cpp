#include "gateway/upstream/health.h"

#include <doctest.h>

#include <latch>
#include <thread>
#include <vector>

namespace gw::upstream {
namespace {

UpstreamHealthSpec spec(std::size_t backends, PassiveCheck passive = {},
                        std::optional<ActiveCheck> active = std::nullopt) {
  UpstreamHealthSpec s;
  s.name = "api";
  for (std::size_t i = 0; i < backends; ++i)
    s.backends.push_back("127.0.0.1:" + std::to_string(9000 + i));
  s.passive = passive;
  s.active = std::move(active);
  return s;
}

std::vector<UpstreamHealthSpec> one(UpstreamHealthSpec s) {
  std::vector<UpstreamHealthSpec> list;
  list.push_back(std::move(s));
  return list;
}

// Reports `n` failures at `nowMs`; returns how many of them ejected the backend.
int fail(HealthBoard& board, std::size_t backend, int n, int64_t nowMs) {
  int ejected = 0;
  for (int i = 0; i < n; ++i) ejected += board.reportFailure(0, backend, nowMs) ? 1 : 0;
  return ejected;
}

ProbeOutcome passed(int status = 200) { return {true, status, {}}; }
ProbeOutcome failed(std::string error) { return {false, 0, std::move(error)}; }

TEST_CASE("backends start usable; the streak that reaches the threshold ejects for the base time") {
  HealthBoard board(one(spec(2)));
  CHECK(board.usable(0, 0, 1000));
  CHECK(board.anyUsable(0, 1000));

  CHECK(fail(board, 0, 4, 1000) == 0);
  CHECK(board.usable(0, 0, 1000));
  CHECK(board.reportFailure(0, 0, 1000));  // the fifth
  CHECK_FALSE(board.usable(0, 0, 1000));
  CHECK_FALSE(board.usable(0, 0, 10'999));
  CHECK(board.usable(0, 0, 11'000));
  CHECK(board.usable(0, 1, 1000));  // its neighbour is untouched

  auto status = board.snapshot(5000);
  REQUIRE(status.size() == 1);
  CHECK(status[0].name == "api");
  CHECK_FALSE(status[0].activeCheck);
  CHECK(status[0].anyUsable);
  const BackendStatus& b = status[0].backends[0];
  CHECK(b.address == "127.0.0.1:9000");
  CHECK(b.state == BackendState::Ejected);
  CHECK(stateName(b.state) == "ejected");
  CHECK(b.reason == "5 consecutive failed exchanges");
  CHECK(b.ejectedUntilMs == 11'000);
  CHECK(b.ejections == 1);
  CHECK(b.consecutiveFailures == 0);
  CHECK(status[0].backends[1].state == BackendState::Healthy);
  CHECK(status[0].backends[1].reason.empty());
  // Once the time is up, /status says so too.
  CHECK(board.snapshot(11'000)[0].backends[0].state == BackendState::Healthy);
}

TEST_CASE("failures of exchanges in flight during an ejection do not count") {
  HealthBoard board(one(spec(2)));
  CHECK(fail(board, 0, 5, 0) == 1);
  CHECK(fail(board, 0, 20, 5000) == 0);
  CHECK(board.snapshot(5000)[0].backends[0].consecutiveFailures == 0);
  CHECK(board.snapshot(5000)[0].backends[0].ejections == 1);
}

TEST_CASE("a success ends the streak") {
  HealthBoard board(one(spec(2)));
  CHECK(fail(board, 0, 4, 0) == 0);
  board.reportSuccess(0, 0);
  CHECK(board.snapshot(0)[0].backends[0].consecutiveFailures == 0);
  CHECK(fail(board, 0, 4, 0) == 0);
  CHECK(board.usable(0, 0, 0));
  CHECK(fail(board, 0, 1, 0) == 1);
  CHECK_FALSE(board.usable(0, 0, 0));
}

TEST_CASE("repeated ejections double up to the cap; time back in rotation undoes the doubling") {
  PassiveCheck passive;
  passive.consecutiveFailures = 2;
  passive.baseEjectionMs = 1000;
  passive.maxEjectionMs = 5000;
  HealthBoard board(one(spec(2, passive)));
  auto ejectedUntil = [&](int64_t now) {
    REQUIRE(fail(board, 0, 2, now) == 1);
    return board.snapshot(now)[0].backends[0].ejectedUntilMs;
  };
  // Each time it fails again as soon as it is back.
  CHECK(ejectedUntil(0) == 1000);
  CHECK(ejectedUntil(1000) == 3000);
  CHECK(ejectedUntil(3000) == 7000);
  CHECK(ejectedUntil(7000) == 12'000);    // 8 s capped at 5 s
  CHECK(ejectedUntil(12'000) == 17'000);  // stays at the cap
  // Two base periods in rotation undo two of the three doublings that reached the cap: 2 s.
  CHECK(ejectedUntil(19'000) == 21'000);
  // A long healthy spell starts over at the base.
  CHECK(ejectedUntil(100'000) == 101'000);
  CHECK(board.snapshot(0)[0].backends[0].ejections == 7);
}

TEST_CASE("passive ejection never takes out an upstream's only backend") {
  // Clients choose what a backend is asked (a slow or resetting path); nginx likewise never marks
  // a lone server down. The refused ejection starts the streak over and is counted.
  HealthBoard board(one(spec(1)));
  CHECK(fail(board, 0, 5, 0) == 0);
  CHECK(board.usable(0, 0, 0));
  BackendStatus b = board.snapshot(0)[0].backends[0];
  CHECK(b.state == BackendState::Healthy);
  CHECK(b.consecutiveFailures == 0);
  CHECK(b.ejections == 0);
  CHECK(b.ejectionsRefused == 1);
  CHECK(fail(board, 0, 12, 0) == 0);
  CHECK(board.snapshot(0)[0].backends[0].consecutiveFailures == 2);
  CHECK(board.snapshot(0)[0].backends[0].ejectionsRefused == 3);
}

TEST_CASE("passive ejection never takes out the last backend in rotation, even at 100%") {
  PassiveCheck passive;
  passive.maxEjectionPercent = 100;
  HealthBoard board(one(spec(2, passive)));
  CHECK(fail(board, 0, 5, 0) == 1);
  CHECK(fail(board, 1, 5, 0) == 0);
  CHECK(board.usable(0, 1, 0));
  CHECK(board.anyUsable(0, 0));
  CHECK(board.snapshot(0)[0].anyUsable);
  CHECK(board.snapshot(0)[0].backends[1].ejectionsRefused == 1);
  // Once the first one is back, the second may go.
  CHECK(fail(board, 1, 5, 10'000) == 1);
  CHECK_FALSE(board.usable(0, 1, 10'000));
  CHECK(board.usable(0, 0, 10'000));
}

TEST_CASE("a backend out by its active check counts as out of rotation for the passive cap") {
  ActiveCheck check;
  check.unhealthyThreshold = 1;
  PassiveCheck passive;
  passive.maxEjectionPercent = 100;
  HealthBoard board(one(spec(2, passive, check)));
  CHECK(board.recordProbe(0, 0, failed("timeout")) == std::optional<bool>(false));
  CHECK(fail(board, 1, 5, 0) == 0);
  CHECK(board.usable(0, 1, 0));
  // The active verdict is not capped: a failing probe takes out the last backend too.
  CHECK(board.recordProbe(0, 1, failed("timeout")) == std::optional<bool>(false));
  CHECK_FALSE(board.anyUsable(0, 0));
}

TEST_CASE("max_ejection_percent caps the share of backends ejected at once, rounded down") {
  auto ejectable = [](uint32_t percent, std::size_t backends) {
    PassiveCheck passive;
    passive.maxEjectionPercent = percent;
    HealthBoard board(one(spec(backends, passive)));
    int ejected = 0;
    for (std::size_t b = 0; b < backends; ++b) {
      ejected += fail(board, b, 5, 0);
    }
    return ejected;
  };
  CHECK(ejectable(50, 1) == 0);
  CHECK(ejectable(50, 2) == 1);
  CHECK(ejectable(50, 3) == 1);
  CHECK(ejectable(50, 4) == 2);
  CHECK(ejectable(10, 9) == 0);
  CHECK(ejectable(10, 10) == 1);
  CHECK(ejectable(100, 4) == 3);  // never the last
  CHECK(ejectable(0, 4) == 0);
}

TEST_CASE("consecutiveFailures 0 turns passive ejection off") {
  PassiveCheck off;
  off.consecutiveFailures = 0;
  HealthBoard board(one(spec(1, off)));
  CHECK(fail(board, 0, 100, 0) == 0);
  CHECK(board.usable(0, 0, 0));
}

TEST_CASE("concurrent failures from several threads count exactly") {
  constexpr int kThreads = 8;
  constexpr int kEach = 5000;
  auto hammer = [](HealthBoard& board) {
    std::latch go(kThreads);
    std::vector<std::thread> threads;
    std::atomic<int> ejected{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        go.arrive_and_wait();
        ejected += fail(board, 0, kEach, 0);
      });
    }
    for (auto& t : threads) t.join();
    return ejected.load();
  };

  SUBCASE("below the threshold every failure is counted") {
    PassiveCheck passive;
    passive.consecutiveFailures = kThreads * kEach + 1;
    HealthBoard board(one(spec(2, passive)));
    CHECK(hammer(board) == 0);
    CHECK(board.snapshot(0)[0].backends[0].consecutiveFailures == kThreads * kEach);
    CHECK(board.reportFailure(0, 0, 0));  // and the next one completes the streak
  }
  SUBCASE("reaching the threshold together ejects exactly once") {
    PassiveCheck passive;
    passive.consecutiveFailures = kThreads * kEach;
    HealthBoard board(one(spec(2, passive)));
    CHECK(hammer(board) == 1);
    auto b = board.snapshot(0)[0].backends[0];
    CHECK(b.ejections == 1);
    CHECK(b.consecutiveFailures == 0);
    CHECK(b.state == BackendState::Ejected);
  }
}

TEST_CASE("probe results: unhealthy after M failures in a row, healthy after N passes in a row") {
  ActiveCheck check;
  check.healthyThreshold = 2;
  check.unhealthyThreshold = 3;
  HealthBoard board(one(spec(2, {}, check)));

  CHECK_FALSE(board.recordProbe(0, 0, failed("status 500")).has_value());
  CHECK_FALSE(board.recordProbe(0, 0, passed()).has_value());  // breaks the streak
  CHECK_FALSE(board.recordProbe(0, 0, failed("timeout")).has_value());
  CHECK_FALSE(board.recordProbe(0, 0, failed("timeout")).has_value());
  CHECK(board.usable(0, 0, 0));
  CHECK(board.recordProbe(0, 0, failed("timeout")) == std::optional<bool>(false));
  CHECK_FALSE(board.usable(0, 0, 0));
  CHECK_FALSE(board.recordProbe(0, 0, failed("timeout")).has_value());  // no second flip

  auto b = board.snapshot(0)[0].backends[0];
  CHECK(b.state == BackendState::Unhealthy);
  CHECK(b.reason == "health check failed: timeout");
  CHECK(b.probeFailures == 4);
  CHECK(b.lastProbeError == "timeout");

  CHECK_FALSE(board.recordProbe(0, 0, passed(204)).has_value());
  b = board.snapshot(0)[0].backends[0];
  CHECK(b.reason == "health check recovering: 1 of 2 passes");
  CHECK(b.lastProbeStatus == 204);
  CHECK(b.lastProbeError.empty());
  CHECK(board.recordProbe(0, 0, passed()) == std::optional<bool>(true));
  CHECK(board.usable(0, 0, 0));

  // Both backends failing their checks: nothing usable.
  for (int i = 0; i < 3; ++i) {
    (void)board.recordProbe(0, 0, failed("timeout"));
    (void)board.recordProbe(0, 1, failed("timeout"));
  }
  CHECK_FALSE(board.anyUsable(0, 0));
}

TEST_CASE("a passing probe ends a passive ejection") {
  HealthBoard board(one(spec(2, {}, ActiveCheck{})));
  CHECK(fail(board, 0, 5, 0) == 1);
  CHECK_FALSE(board.usable(0, 0, 100));
  CHECK_FALSE(board.recordProbe(0, 0, passed()).has_value());
  CHECK(board.usable(0, 0, 100));
  // Failing again at once still counts as a repeat: the back-off doubles.
  CHECK(fail(board, 0, 5, 200) == 1);
  CHECK(board.snapshot(200)[0].backends[0].ejectedUntilMs == 20'200);
}

TEST_CASE("probe results for an upstream without a check are ignored") {
  HealthBoard board(one(spec(1)));
  CHECK_FALSE(board.recordProbe(0, 0, failed("timeout")).has_value());
  CHECK(board.usable(0, 0, 0));
}

TEST_CASE("a reload's board keeps what the old one knew of backends that stayed") {
  ActiveCheck check;
  check.unhealthyThreshold = 1;
  HealthBoard before(one(spec(2, {}, check)));
  REQUIRE(fail(before, 0, 5, 1000) == 1);  // ejected until 11'000
  REQUIRE(before.recordProbe(0, 1, failed("timeout")) == std::optional<bool>(false));

  SUBCASE("same backends, still probed: ejection and active verdict carried") {
    HealthBoard after(one(spec(2, {}, check)), before);
    CHECK_FALSE(after.usable(0, 0, 5000));
    CHECK(after.usable(0, 0, 11'000));
    CHECK_FALSE(after.usable(0, 1, 5000));
    const auto status = after.snapshot(5000);
    CHECK(status[0].backends[0].ejections == 1);
    CHECK(status[0].backends[1].lastProbeError == "timeout");
  }
  SUBCASE("no longer probed: the active verdict would never be revised, so it is dropped") {
    HealthBoard after(one(spec(2)), before);
    CHECK_FALSE(after.usable(0, 0, 5000));
    CHECK(after.usable(0, 1, 5000));
  }
  SUBCASE("another upstream name, or a backend that was not there, starts afresh") {
    UpstreamHealthSpec renamed = spec(2, {}, check);
    renamed.name = "other";
    HealthBoard after(one(std::move(renamed)), before);
    CHECK(after.usable(0, 0, 5000));
    UpstreamHealthSpec moved = spec(2, {}, check);
    moved.backends[0] = "127.0.0.1:9100";
    HealthBoard later(one(std::move(moved)), before);
    CHECK(later.usable(0, 0, 5000));
    CHECK_FALSE(later.usable(0, 1, 5000));
  }
}

}  // namespace
}  // namespace gw::upstream

namespace gw::upstream {
namespace {

PassiveCheck outlierOnly() {
  PassiveCheck passive;
  passive.consecutiveFailures = 0;
  return passive;
}

TEST_CASE("consecutive_5xx: any 5xx or failure extends the streak, a response below 500 ends it") {
  PassiveCheck passive = outlierOnly();
  passive.consecutive5xx = 3;
  HealthBoard board(one(spec(2, passive)));
  CHECK_FALSE(board.reportResponse(0, 0, 500, 1000));
  CHECK_FALSE(board.reportResponse(0, 0, 503, 1000));
  CHECK_FALSE(board.reportResponse(0, 0, 404, 1000));  // ends it
  CHECK_FALSE(board.reportResponse(0, 0, 500, 1000));
  CHECK_FALSE(board.reportFailure(0, 0, 1000));
  CHECK(board.reportResponse(0, 0, 599, 1000) == EjectionReason::Consecutive5xx);
  CHECK_FALSE(board.usable(0, 0, 1000));
  const auto status = board.snapshot(1000);
  const BackendStatus& b = status[0].backends[0];
  CHECK(b.ejectionReason == EjectionReason::Consecutive5xx);
  CHECK(b.reason == "3 consecutive 5xx responses or failures");
  CHECK(status[0].ejections[static_cast<std::size_t>(EjectionReason::Consecutive5xx)] == 1);
  CHECK(b.ejections == 1);
}

TEST_CASE("consecutive_gateway_failure counts 502/503/504 and failures; a 500 ends the streak") {
  PassiveCheck passive = outlierOnly();
  passive.consecutiveGatewayFailure = 3;
  HealthBoard board(one(spec(2, passive)));
  CHECK_FALSE(board.reportResponse(0, 0, 502, 1000));
  CHECK_FALSE(board.reportResponse(0, 0, 503, 1000));
  CHECK_FALSE(board.reportResponse(0, 0, 500, 1000));  // a 5xx, but no gateway error
  CHECK_FALSE(board.reportResponse(0, 0, 504, 1000));
  CHECK_FALSE(board.reportFailure(0, 0, 1000));
  CHECK(board.reportResponse(0, 0, 502, 1000) == EjectionReason::ConsecutiveGatewayFailure);
  CHECK(board.snapshot(1000)[0].backends[0].reason ==
        "3 consecutive gateway errors (502, 503, 504 or no answer)");
}

TEST_CASE("count_5xx keeps its meaning: 5xx count toward consecutive_failures only with it") {
  PassiveCheck passive;
  passive.consecutiveFailures = 2;
  HealthBoard without(one(spec(2, passive)));
  for (int i = 0; i < 5; ++i) CHECK_FALSE(without.reportResponse(0, 0, 500, 1000));
  passive.count5xx = true;
  HealthBoard with(one(spec(2, passive)));
  CHECK_FALSE(with.reportResponse(0, 0, 500, 1000));
  CHECK(with.reportResponse(0, 0, 502, 1000) == EjectionReason::ConsecutiveFailures);
  CHECK(with.snapshot(1000)[0].backends[0].reason == "2 consecutive failed exchanges");
}

// Reports `requests` exchanges of which `failures` failed (5xx), spread so no streak ejects.
void traffic(HealthBoard& board, std::size_t backend, int requests, int failures) {
  for (int i = 0; i < requests; ++i) {
    if (i < failures) {
      board.reportResponse(0, backend, 500, 1000);
    } else {
      board.reportSuccess(0, backend);
    }
  }
}

TEST_CASE("success rate: a backend far below the others' mean is ejected, once per interval") {
  PassiveCheck passive = outlierOnly();
  passive.successRate = SuccessRate{10'000, 5, 100, 1.9};
  HealthBoard board(one(spec(6, passive)));
  CHECK(board.successRateIntervalMs() == 10'000);
  for (std::size_t b = 0; b < 4; ++b) traffic(board, b, 200, 2);
  traffic(board, 4, 200, 100);  // 50%
  traffic(board, 5, 99, 99);    // below request_volume: not judged
  const auto ejected = board.evaluateSuccessRates(1000);
  REQUIRE(ejected.size() == 1);
  CHECK(ejected[0].backend == 4);
  CHECK(ejected[0].successRate == doctest::Approx(50.0));
  // Rates 99, 99, 99, 99, 50: mean 89.2, stdev 19.6, threshold 89.2 - 1.9 x 19.6.
  CHECK(ejected[0].threshold == doctest::Approx(51.96).epsilon(0.01));
  CHECK_FALSE(board.usable(0, 4, 1000));
  CHECK(board.usable(0, 5, 1000));
  const auto status = board.snapshot(1000);
  CHECK(status[0].backends[4].ejectionReason == EjectionReason::SuccessRate);
  CHECK(status[0].backends[4].reason == "success rate 50.0% below the upstream's threshold 52.0%");

  // The next evaluation waits for the interval; the counts started over.
  traffic(board, 3, 200, 200);
  CHECK(board.evaluateSuccessRates(5000).empty());
  CHECK(board.evaluateSuccessRates(11'000).empty());  // only one backend reached the volume
}

TEST_CASE("success rate: nothing is judged below minimum_hosts, and the cap holds") {
  PassiveCheck passive = outlierOnly();
  passive.successRate = SuccessRate{1000, 5, 100, 1.9};
  HealthBoard few(one(spec(4, passive)));
  for (std::size_t b = 0; b < 3; ++b) traffic(few, b, 100, 0);
  traffic(few, 3, 100, 100);
  CHECK(few.evaluateSuccessRates(1000).empty());

  // Ten backends, two at 10%: both are outliers, but 10% of ten is one ejection.
  passive.maxEjectionPercent = 10;
  HealthBoard capped(one(spec(10, passive)));
  for (std::size_t b = 0; b < 8; ++b) traffic(capped, b, 100, 0);
  traffic(capped, 8, 100, 90);
  traffic(capped, 9, 100, 90);
  CHECK(capped.evaluateSuccessRates(1000).size() == 1);
  const auto status = capped.snapshot(1000);
  const auto reason = static_cast<std::size_t>(EjectionReason::SuccessRate);
  CHECK(status[0].ejections[reason] == 1);
  CHECK(status[0].ejectionsRefused[reason] == 1);
}

}  // namespace
}  // namespace gw::upstream
