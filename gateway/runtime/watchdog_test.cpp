#include "gateway/runtime/watchdog.h"

#include <doctest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "test/support/files.h"

namespace gw::runtime {
namespace {

using namespace std::chrono_literals;

// Workers whose loops answer only when the test says so.
struct FakeWorkers final : Watchdog::Workers {
  explicit FakeWorkers(std::size_t n) : runningFlags(n, true) {}
  std::size_t count() const override { return runningFlags.size(); }
  bool running(std::size_t index) const override { return runningFlags[index]; }
  void sendHeartbeat(std::size_t index, std::function<void()> answered) override {
    ++sent[index];
    pending[index] = std::move(answered);
  }
  // The loop of worker `index` runs what was posted to it.
  void answer(std::size_t index) {
    REQUIRE(pending.count(index) == 1);
    auto answered = std::move(pending[index]);
    pending.erase(index);
    answered();
  }
  void answerAll() {
    while (!pending.empty()) answer(pending.begin()->first);
  }

  std::vector<bool> runningFlags;
  std::map<std::size_t, std::function<void()>> pending;
  std::map<std::size_t, int> sent;
};

struct Fixture {
  explicit Fixture(std::size_t workerCount) : workers(workerCount) {}
  FakeWorkers workers;
  int64_t nowUs = 0;
  int pings = 0;
  Watchdog watchdog{workers, 10s, [this] { return nowUs; }, [this] { ++pings; }};

  void advance(std::chrono::microseconds by) { nowUs += by.count(); }
  // One tick, half an interval after the last.
  void tick() {
    advance(watchdog.tickInterval());
    watchdog.tick();
  }
};

TEST_CASE("watchdog: pings every tick while every loop answers; one heartbeat at a time") {
  Fixture f(2);
  CHECK(f.watchdog.tickInterval() == 5s);
  for (int i = 0; i < 4; ++i) {
    f.tick();
    f.workers.answerAll();
  }
  CHECK(f.pings == 4);
  CHECK(f.workers.sent == std::map<std::size_t, int>{{0, 4}, {1, 4}});
  // A slow answer (less than the interval) is not stuck; no second heartbeat meanwhile.
  f.tick();  // sent at t
  f.tick();  // t + 5 s: still waiting, within the interval
  CHECK(f.pings == 6);
  CHECK(f.workers.sent == std::map<std::size_t, int>{{0, 5}, {1, 5}});
  CHECK(f.watchdog.stuck().empty());
}

TEST_CASE("watchdog: a worker that does not answer within the interval stops the pings") {
  Fixture f(3);
  f.tick();
  f.workers.answerAll();
  CHECK(f.pings == 1);
  f.tick();  // heartbeats sent; worker 1 never runs its
  f.workers.answer(0);
  f.workers.answer(2);
  CHECK(f.pings == 2);
  f.tick();  // 5 s waited: within the interval, and the others got new heartbeats
  f.workers.answer(0);
  f.workers.answer(2);
  CHECK(f.pings == 3);
  std::string log = test::captureStderr([&] { f.tick(); });  // 10 s waited: stuck
  CHECK(f.pings == 3);
  CHECK(f.watchdog.stuck() == std::vector<std::size_t>{1});
  CHECK(log.find("\"msg\":\"worker stuck") != std::string::npos);
  CHECK(log.find("\"worker\":\"1\"") != std::string::npos);
  CHECK(log.find("\"waited_ms\":\"10000\"") != std::string::npos);
  f.workers.answer(0);
  f.workers.answer(2);
  // Still stuck: no pings, logged once, and no heartbeat piles up behind the one it owes.
  log = test::captureStderr([&] {
    for (int i = 0; i < 3; ++i) {
      f.tick();
      f.workers.answer(0);
      f.workers.answer(2);
    }
  });
  CHECK(f.pings == 3);
  CHECK(log.find("worker stuck") == std::string::npos);
  CHECK(f.workers.sent[1] == 2);

  // It answers after all: pings resume at the next tick.
  log = test::captureStderr([&] { f.workers.answer(1); });
  CHECK(log.find("\"msg\":\"worker answers its heartbeat again") != std::string::npos);
  CHECK(f.watchdog.stuck().empty());
  f.tick();
  CHECK(f.pings == 4);
}

TEST_CASE("watchdog: a drained worker owes no answer") {
  Fixture f(2);
  f.tick();
  f.workers.answer(0);  // worker 1 drains with the heartbeat unanswered: its loop has ended
  f.workers.runningFlags[1] = false;
  for (int i = 0; i < 4; ++i) {
    f.tick();
    f.workers.answer(0);
  }
  CHECK(f.pings == 5);
  CHECK(f.workers.sent[1] == 1);
  CHECK(f.watchdog.stuck().empty());
}

}  // namespace
}  // namespace gw::runtime
