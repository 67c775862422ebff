#include "gateway/runtime/worker_dispatcher.h"

#include <event2/event.h>

#include <utility>

#include "gateway/core/libevent_ptr.h"

namespace gw::runtime {
namespace {

class LoopTimer final : public plugin::Timer {
 public:
  LoopTimer(event_base* base, std::function<void()> fired)
      : fired_(std::move(fired)), event_(evtimer_new(base, &LoopTimer::onFire, this)) {}

  void arm(int64_t delayMs) override {
    if (delayMs <= 0) {
      // Activated now, it runs after the events this turn already has (libevent runs the active
      // queue until it is empty), not after the next wait for I/O.
      evtimer_del(event_.get());
      event_active(event_.get(), EV_TIMEOUT, 1);
      return;
    }
    const timeval delay{static_cast<time_t>(delayMs / 1000),
                        static_cast<suseconds_t>(delayMs % 1000 * 1000)};
    evtimer_add(event_.get(), &delay);
  }
  void cancel() override { evtimer_del(event_.get()); }
  bool armed() const override { return evtimer_pending(event_.get(), nullptr) != 0; }

 private:
  static void onFire(evutil_socket_t, short, void* arg) { static_cast<LoopTimer*>(arg)->fired_(); }

  std::function<void()> fired_;
  core::EventPtr event_;  // freeing it removes it from the loop
};

}  // namespace

std::unique_ptr<plugin::Timer> WorkerDispatcher::createTimer(std::function<void()> fired) {
  return std::make_unique<LoopTimer>(reactor_.base(), std::move(fired));
}

int64_t WorkerDispatcher::nowMs() const {
  timeval now;
  event_base_gettimeofday_cached(reactor_.base(), &now);
  return int64_t(now.tv_sec) * 1000 + now.tv_usec / 1000;
}

}  // namespace gw::runtime
