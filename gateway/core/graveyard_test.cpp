#include "gateway/core/graveyard.h"

#include <doctest.h>

#include <memory>
#include <vector>

#include "gateway/core/libevent_ptr.h"

namespace gw::core {
namespace {

// Records its destruction in a shared log; may bury more objects as it dies.
struct Tracked : Retirable {
  Tracked(std::vector<int>& log, int id, Graveyard* graveyard = nullptr, int children = 0)
      : log_(log), id_(id), graveyard_(graveyard), children_(children) {}
  ~Tracked() override {
    log_.push_back(id_);
    for (int i = 1; i <= children_; ++i) {
      // Each child buries one grandchild in turn: three generations reaped in one loop turn.
      graveyard_->bury(std::make_unique<Tracked>(log_, id_ * 10 + i, graveyard_, id_ < 10 ? 1 : 0));
    }
  }
  std::vector<int>& log_;
  int id_;
  Graveyard* graveyard_;
  int children_;
};

void runOnce(event_base* base) { event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK); }

TEST_CASE("buried objects live until the loop runs the reaper") {
  EventBasePtr base(event_base_new());
  std::vector<int> log;
  Graveyard graveyard(base.get());
  graveyard.bury(std::make_unique<Tracked>(log, 1));
  graveyard.bury(std::make_unique<Tracked>(log, 2));
  CHECK(log.empty());
  runOnce(base.get());
  CHECK(log == std::vector<int>{1, 2});
  // Nothing left: another turn reaps nothing and the graveyard is usable again.
  runOnce(base.get());
  CHECK(log.size() == 2);
  graveyard.bury(std::make_unique<Tracked>(log, 3));
  CHECK(log.size() == 2);
  runOnce(base.get());
  CHECK(log == std::vector<int>{1, 2, 3});
}

TEST_CASE("an object buried inside a callback outlives that callback") {
  EventBasePtr base(event_base_new());
  std::vector<int> log;
  Graveyard graveyard(base.get());
  struct State {
    Graveyard* graveyard;
    std::vector<int>* log;
    std::size_t seenAtCallbackEnd = 99;
  } state{&graveyard, &log};
  EventPtr timer(event_new(
      base.get(), -1, 0,
      [](evutil_socket_t, short, void* arg) {
        auto* s = static_cast<State*>(arg);
        s->graveyard->bury(std::make_unique<Tracked>(*s->log, 7));
        s->seenAtCallbackEnd = s->log->size();
      },
      &state));
  timeval zero{0, 0};
  event_add(timer.get(), &zero);
  event_base_loop(base.get(), EVLOOP_ONCE);  // runs the timer, then (same or next turn) the reaper
  CHECK(state.seenAtCallbackEnd == 0);
  runOnce(base.get());
  CHECK(log == std::vector<int>{7});
}

TEST_CASE("destructors that bury more objects are reaped in the same turn") {
  EventBasePtr base(event_base_new());
  std::vector<int> log;
  Graveyard graveyard(base.get());
  graveyard.bury(std::make_unique<Tracked>(log, 1, &graveyard, 2));
  runOnce(base.get());
  // 1 dies and buries 11 and 12; each of those buries one more (111, 121).
  CHECK(log == std::vector<int>{1, 11, 12, 111, 121});
  runOnce(base.get());
  CHECK(log.size() == 5);
}

TEST_CASE("reap frees at once, and the graveyard frees what is left when it dies") {
  EventBasePtr base(event_base_new());
  std::vector<int> log;
  {
    Graveyard graveyard(base.get());
    graveyard.bury(std::make_unique<Tracked>(log, 1));
    graveyard.reap();
    CHECK(log == std::vector<int>{1});
    runOnce(base.get());  // the already-scheduled reaper finds nothing
    CHECK(log == std::vector<int>{1});
    graveyard.bury(std::make_unique<Tracked>(log, 2));
  }
  CHECK(log == std::vector<int>{1, 2});
  runOnce(base.get());  // the freed reaper event is gone from the loop
}

}  // namespace
}  // namespace gw::core
