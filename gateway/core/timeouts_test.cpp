#include "gateway/core/timeouts.h"

#include <doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "gateway/core/libevent_ptr.h"

namespace gw::core {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

struct Fired {
  std::vector<int>* order;
  int id;
  event_base* breakWhenAllFired = nullptr;
  std::size_t all = 0;
};

void recordFired(evutil_socket_t, short what, void* arg) {
  auto* f = static_cast<Fired*>(arg);
  if (what & EV_TIMEOUT) f->order->push_back(f->id);
  if (f->breakWhenAllFired && f->order->size() == f->all) event_base_loopbreak(f->breakWhenAllFired);
}

void breakLoop(evutil_socket_t, short, void* arg) {
  event_base_loopbreak(static_cast<event_base*>(arg));
}

TEST_CASE("the same duration gives the same timeval; different durations differ") {
  EventBasePtr base(event_base_new());
  TimeoutCache cache(base.get());
  const timeval* fiveSeconds = cache.get(milliseconds(5000));
  const timeval* oneAndAHalf = cache.get(milliseconds(1500));
  CHECK(fiveSeconds != nullptr);
  CHECK(fiveSeconds != oneAndAHalf);
  CHECK(cache.get(std::chrono::seconds(5)) == fiveSeconds);
  // The address stays put however many durations are added later.
  for (int ms = 1; ms <= 50; ++ms) cache.get(milliseconds(ms));
  CHECK(cache.get(milliseconds(5000)) == fiveSeconds);
  CHECK(cache.get(milliseconds(1500)) == oneAndAHalf);
}

TEST_CASE("events added with cached timeouts fire in duration order") {
  EventBasePtr base(event_base_new());
  TimeoutCache cache(base.get());
  std::vector<int> order;
  // The loop ends when the third has fired, not on a timer of its own: on a loaded machine every
  // timer may expire in one pass, and a stop timer would then run before the queued callbacks.
  Fired late{&order, 30, base.get(), 3}, early{&order, 10, base.get(), 3},
      sameAsEarly{&order, 11, base.get(), 3};
  EventPtr lateEvent(event_new(base.get(), -1, 0, recordFired, &late));
  EventPtr earlyEvent(event_new(base.get(), -1, 0, recordFired, &early));
  EventPtr sameEvent(event_new(base.get(), -1, 0, recordFired, &sameAsEarly));
  EventPtr guard(event_new(base.get(), -1, 0, breakLoop, base.get()));

  auto start = Clock::now();
  event_add(lateEvent.get(), cache.get(milliseconds(60)));
  event_add(earlyEvent.get(), cache.get(milliseconds(20)));
  event_add(sameEvent.get(), cache.get(milliseconds(20)));
  timeval guardTime{5, 0};  // only if the timers never fire
  event_add(guard.get(), &guardTime);
  event_base_dispatch(base.get());
  auto elapsed = Clock::now() - start;

  CHECK(order == std::vector<int>{10, 11, 30});
  // libevent reads the coarse monotonic clock (a few ms of resolution): the last may fire a
  // little before 60 ms of the precise clock have passed.
  CHECK(elapsed >= milliseconds(50));
  CHECK(elapsed < milliseconds(2000));
}

TEST_CASE("past libevent's common-timeout limit the cache falls back to plain timevals") {
  EventBasePtr base(event_base_new());
  TimeoutCache cache(base.get());
  // libevent keeps at most 256 common timeouts per base and logs a warning past that.
  static std::vector<std::string> warnings;
  warnings.clear();
  event_set_log_callback([](int, const char* msg) { warnings.emplace_back(msg); });
  for (int ms = 1000; ms < 1300; ++ms) cache.get(milliseconds(ms));
  const timeval* plain = cache.get(milliseconds(15));
  event_set_log_callback(nullptr);
  CHECK_FALSE(warnings.empty());
  REQUIRE(plain != nullptr);
  CHECK(plain->tv_sec == 0);
  CHECK(plain->tv_usec == 15000);
  CHECK(cache.get(milliseconds(15)) == plain);

  std::vector<int> order;
  Fired fired{&order, 1};
  EventPtr ev(event_new(base.get(), -1, 0, recordFired, &fired));
  EventPtr guard(event_new(base.get(), -1, 0, breakLoop, base.get()));
  timeval guardTime{5, 0};
  event_add(guard.get(), &guardTime);
  event_add(ev.get(), plain);
  event_base_loop(base.get(), EVLOOP_ONCE);
  CHECK(order == std::vector<int>{1});
}

}  // namespace
}  // namespace gw::core
