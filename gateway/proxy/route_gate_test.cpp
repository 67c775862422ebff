#include "gateway/proxy/route_gate.h"

#include <doctest.h>

#include <memory>
#include <vector>

#include "test/support/fake_dispatcher.h"

namespace gw::proxy {
namespace {

// A request of the test: what became of it.
struct Request final : RouteQueue::Waiter {
  void admitted(int64_t waitedUs) override {
    ++admissions;
    waited = waitedUs;
  }
  void timedOut(int64_t waitedUs) override {
    ++timeouts;
    waited = waitedUs;
  }
  int admissions = 0;
  int timeouts = 0;
  int64_t waited = -1;
};

// What became of a request asking `queue` for a slot, as the exchange asks.
enum class Entry { Admitted, Queued, Full };
Entry enter(RouteQueue& queue, RouteQueue::Waiter& waiter) {
  if (queue.admit()) return Entry::Admitted;
  return queue.join(waiter) ? Entry::Queued : Entry::Full;
}

config::RouteConcurrency limit(uint32_t maxRequests, uint32_t queue, int64_t timeoutMs = 1000) {
  return {
      .max_requests = maxRequests, .queue = queue, .queue_timeout = config::Duration(timeoutMs)};
}

// Two workers on one gate, each with its loop (fake) and its queue.
struct TwoWorkers {
  explicit TwoWorkers(const config::RouteConcurrency& settings)
      : gate(std::make_shared<RouteGate>(settings, 2)) {
    for (unsigned i = 0; i < 2; ++i)
      queues.push_back(std::make_unique<RouteQueue>(gate, i, loops[i]));
  }
  // `holder` takes the one slot on worker 0; `older` waits on worker 1, `newer` on worker 0
  // 1 ms later.
  void holdThenQueue(Request& holder, Request& older, Request& newer) {
    REQUIRE(enter(*queues[0], holder) == Entry::Admitted);
    REQUIRE(enter(*queues[1], older) == Entry::Queued);
    loops[0].now += 1;
    REQUIRE(enter(*queues[0], newer) == Entry::Queued);
  }
  // Each loop runs what was posted to it and its due timers, until both are quiet.
  void settle() {
    for (int round = 0; round < 10; ++round) {
      std::size_t ran = 0;
      for (auto& loop : loops) {
        ran += loop.runPosted();
        loop.advance(0);
      }
      if (ran == 0) return;
    }
  }
  test::FakeDispatcher loops[2];
  std::shared_ptr<RouteGate> gate;
  std::vector<std::unique_ptr<RouteQueue>> queues;
};

TEST_CASE("route_gate: max_requests are admitted, the next wait, and a full queue refuses") {
  TwoWorkers w(limit(2, 1));
  Request a, b, c, d;
  CHECK(enter(*w.queues[0], a) == Entry::Admitted);
  CHECK(enter(*w.queues[1], b) == Entry::Admitted);
  CHECK(enter(*w.queues[0], c) == Entry::Queued);
  CHECK(enter(*w.queues[1], d) == Entry::Full);
  CHECK(w.gate->inFlight() == 2);
  CHECK(w.gate->queued() == 1);
  w.settle();
  CHECK(c.admissions == 0);
}

TEST_CASE("route_gate: a slot that ends goes to the waiter, not to a newcomer") {
  TwoWorkers w(limit(1, 2));
  Request a, b, late;
  REQUIRE(enter(*w.queues[0], a) == Entry::Admitted);
  REQUIRE(enter(*w.queues[0], b) == Entry::Queued);
  w.loops[0].now += 40;
  w.gate->release(w.queues[0].get());                 // a ends
  CHECK(w.gate->inFlight() == 1);                     // handed over, never free
  CHECK(enter(*w.queues[1], late) == Entry::Queued);  // someone waits: no overtaking
  w.settle();
  CHECK(b.admissions == 1);
  CHECK(b.waited == 40'000);
  CHECK(late.admissions == 0);
  CHECK(w.gate->queued() == 1);
}

TEST_CASE("route_gate: a slot that ends on one worker wakes the oldest waiter on another") {
  TwoWorkers w(limit(1, 4));
  Request a, older, newer;
  w.holdThenQueue(a, older, newer);
  w.gate->release(w.queues[0].get());
  CHECK(w.loops[0].runPosted() == 0);
  w.loops[0].advance(0);
  CHECK(newer.admissions == 0);        // worker 0's own waiter joined later
  CHECK(w.loops[1].runPosted() == 1);  // one post to worker 1
  CHECK(older.admissions == 1);
  w.gate->release(w.queues[1].get());
  w.settle();
  CHECK(newer.admissions == 1);
  CHECK(w.gate->inFlight() == 1);
  w.gate->release(w.queues[0].get());
  CHECK(w.gate->inFlight() == 0);
  CHECK(w.gate->queued() == 0);
}

TEST_CASE("route_gate: FIFO on a worker, and queue_timeout refuses the waiters in order") {
  TwoWorkers w(limit(1, 3, 100));
  Request a, first, second, third;
  REQUIRE(enter(*w.queues[0], a) == Entry::Admitted);
  REQUIRE(enter(*w.queues[0], first) == Entry::Queued);
  w.loops[0].now += 30;
  REQUIRE(enter(*w.queues[0], second) == Entry::Queued);
  REQUIRE(enter(*w.queues[0], third) == Entry::Queued);
  w.gate->release(w.queues[0].get());
  w.settle();
  CHECK(first.admissions == 1);
  CHECK(second.admissions == 0);
  w.loops[0].advance(69);  // 99 ms after the first joined: nobody is late yet
  CHECK(second.timeouts == 0);
  w.loops[0].advance(1);  // still 30 ms to go for the others
  CHECK(second.timeouts == 0);
  w.loops[0].advance(30);
  CHECK(second.timeouts == 1);
  CHECK(third.timeouts == 1);
  CHECK(second.waited == 100'000);
  CHECK(w.gate->queued() == 0);
  CHECK(w.gate->inFlight() == 1);  // first's slot, still held
}

TEST_CASE("route_gate: a waiter that leaves gives its place back and never gets a slot") {
  TwoWorkers w(limit(1, 1));
  Request a, gone, next;
  REQUIRE(enter(*w.queues[0], a) == Entry::Admitted);
  REQUIRE(enter(*w.queues[1], gone) == Entry::Queued);
  w.loops[1].now += 7;
  CHECK(w.queues[1]->leave(gone) == 7000);
  CHECK(w.gate->queued() == 0);
  CHECK(enter(*w.queues[0], next) == Entry::Queued);  // its place is free again
  w.queues[0]->leave(next);
  w.gate->release(w.queues[0].get());
  w.settle();
  CHECK(gone.admissions == 0);
  CHECK(w.gate->inFlight() == 0);  // nobody waited: the slot is free
}

TEST_CASE("route_gate: a slot granted to a worker whose waiter left goes back or on") {
  TwoWorkers w(limit(1, 2));
  Request a, leaving, other;
  w.holdThenQueue(a, leaving, other);
  w.gate->release(w.queues[0].get());  // granted to worker 1, whose waiter is older
  w.queues[1]->leave(leaving);         // ... and leaves before worker 1 runs
  w.settle();
  CHECK(other.admissions == 1);
  CHECK(w.gate->inFlight() == 1);
  w.gate->release(w.queues[0].get());
  w.settle();
  CHECK(w.gate->inFlight() == 0);
}

TEST_CASE("route_gate: queue 0 refuses at once, and a queue destroyed with grants frees them") {
  TwoWorkers w(limit(1, 0));
  Request a, b;
  REQUIRE(enter(*w.queues[0], a) == Entry::Admitted);
  CHECK(enter(*w.queues[1], b) == Entry::Full);
  w.gate->release(w.queues[0].get());
  CHECK(w.gate->inFlight() == 0);

  TwoWorkers v(limit(1, 1));
  Request c, d;
  REQUIRE(enter(*v.queues[0], c) == Entry::Admitted);
  REQUIRE(enter(*v.queues[1], d) == Entry::Queued);
  v.gate->release(v.queues[0].get());  // posted to worker 1
  v.queues[1]->leave(d);
  v.queues[1].reset();  // a reload dropped the route there
  v.settle();
  CHECK(v.gate->inFlight() == 0);
}

}  // namespace
}  // namespace gw::proxy
