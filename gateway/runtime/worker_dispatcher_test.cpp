#include "gateway/runtime/worker_dispatcher.h"

#include <doctest.h>

#include <memory>
#include <vector>

#include "gateway/core/clock.h"
#include "gateway/core/reactor.h"

namespace gw::runtime {
namespace {

// Runs the loop on this thread until stop() (or the 5 s safety timer, which fails the test).
void runLoop(core::Reactor& reactor, WorkerDispatcher& dispatcher) {
  bool safetyFired = false;
  auto safety = dispatcher.createTimer([&] {
    safetyFired = true;
    reactor.stop();
  });
  safety->arm(5000);
  reactor.run();
  CHECK_FALSE(safetyFired);
}

TEST_CASE(
    "worker dispatcher: timers fire once, in deadline order; cancel and destruction stop one") {
  core::Reactor reactor;
  WorkerDispatcher dispatcher(reactor);
  std::vector<int> fired;
  auto late = dispatcher.createTimer([&] {
    fired.push_back(30);
    reactor.stop();
  });
  auto early = dispatcher.createTimer([&] { fired.push_back(10); });
  auto cancelled = dispatcher.createTimer([&] { fired.push_back(-1); });
  auto destroyed = dispatcher.createTimer([&] { fired.push_back(-2); });
  CHECK_FALSE(late->armed());
  const int64_t startUs = core::monotonicUs();
  late->arm(30);
  early->arm(10);
  cancelled->arm(5);
  destroyed->arm(5);
  CHECK(late->armed());
  cancelled->cancel();
  CHECK_FALSE(cancelled->armed());
  destroyed.reset();
  runLoop(reactor, dispatcher);
  CHECK(fired == std::vector<int>{10, 30});
  // libevent times with CLOCK_MONOTONIC_COARSE (a tick of up to 4 ms), so the 30 ms can end a
  // tick early by this clock.
  CHECK(core::monotonicUs() - startUs >= 25'000);
  CHECK_FALSE(late->armed());  // one-shot
}

TEST_CASE("worker dispatcher: re-arming moves the deadline; post runs later on the loop") {
  core::Reactor reactor;
  WorkerDispatcher dispatcher(reactor);
  int fires = 0;
  std::vector<int> order;
  auto timer = dispatcher.createTimer([&] {
    ++fires;
    reactor.stop();
  });
  timer->arm(5000);
  timer->arm(1);  // replaces the 5 s deadline
  dispatcher.post([&] { order.push_back(2); });
  order.push_back(1);  // post never runs inside the call
  runLoop(reactor, dispatcher);
  CHECK(fires == 1);
  CHECK(order == std::vector<int>{1, 2});
}

TEST_CASE("worker dispatcher: arm(0) runs later in the same turn, after the events ready now") {
  core::Reactor reactor;
  WorkerDispatcher dispatcher(reactor);
  std::vector<char> fired;
  auto gathered = dispatcher.createTimer([&] { fired.push_back('g'); });
  auto cancelled = dispatcher.createTimer([&] { fired.push_back('x'); });
  auto first = dispatcher.createTimer([&] {
    fired.push_back('1');
    // Posted first, but a post wakes the loop through an eventfd: it runs a turn later.
    dispatcher.post([&] { fired.push_back('p'); });
    gathered->arm(0);
    CHECK(gathered->armed());
    gathered->arm(0);  // armed twice, runs once
    cancelled->arm(0);
    cancelled->cancel();
    CHECK(fired.back() == '1');  // never inside the call
  });
  auto second = dispatcher.createTimer([&] { fired.push_back('2'); });
  auto third = dispatcher.createTimer([&] { fired.push_back('3'); });
  // Armed in one callback, the three share the loop's cached time, hence one deadline: they
  // become ready in one turn.
  auto start = dispatcher.createTimer([&] {
    first->arm(2);
    second->arm(2);
    third->arm(2);
  });
  auto stop = dispatcher.createTimer([&] { reactor.stop(); });
  start->arm(1);
  stop->arm(60);
  runLoop(reactor, dispatcher);
  REQUIRE(fired.size() == 5);
  CHECK(fired[3] == 'g');
  CHECK(fired[4] == 'p');
  CHECK_FALSE(gathered->armed());
}

TEST_CASE("worker dispatcher: nowMs is the loop's clock in milliseconds") {
  core::Reactor reactor;
  WorkerDispatcher dispatcher(reactor);
  const int64_t before = dispatcher.nowMs();
  int64_t inLoop = 0;
  auto timer = dispatcher.createTimer([&] {
    inLoop = dispatcher.nowMs();
    reactor.stop();
  });
  timer->arm(20);
  runLoop(reactor, dispatcher);
  CHECK(inLoop - before >= 19);
  CHECK(inLoop - before < 5000);
}

}  // namespace
}  // namespace gw::runtime
