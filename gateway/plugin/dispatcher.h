#pragma once
// What a plugin may ask of the worker its exchange runs on, and nothing more: run a callback on
// that worker, wait with a one-shot timer, read the worker's clock. The worker implements it on
// its event loop (gateway/runtime/worker_dispatcher.h); plugin unit tests use a fake whose clock
// and timers the test drives (test/support/fake_dispatcher.h). The clients that plugins wait on
// (Redis; later HTTP fetches such as JWKS) are reached here too, so that a plugin keeps reaching
// its worker through this one interface.

#include <cstdint>
#include <functional>
#include <memory>

namespace gw::redis {
class Client;
}

namespace gw::plugin {

// A one-shot timer owned by whoever created it: destroying it cancels it, so its callback never
// outlives its owner.
class Timer {
 public:
  virtual ~Timer() = default;
  // Fires the callback once, `delayMs` (>= 0) from now on the dispatcher's clock; arming an
  // armed timer moves its deadline. 0: later in this loop turn, after the events that are ready
  // now (to gather what this turn's events ask for into one action).
  virtual void arm(int64_t delayMs) = 0;
  // Disarms; the callback does not run. Harmless when not armed.
  virtual void cancel() = 0;
  virtual bool armed() const = 0;
};

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  // Runs `fn` on this dispatcher's worker, later, never inside the call. Safe from any thread
  // (e.g. a shared structure's callback running on another worker); it takes a lock and wakes
  // the loop, so it is for rare hand-overs, not for every request.
  virtual void post(std::function<void()> fn) = 0;
  // A disarmed timer whose `fired` runs on this worker. This worker's thread only.
  virtual std::unique_ptr<Timer> createTimer(std::function<void()> fired) = 0;
  // Milliseconds on the worker's loop clock, read once per loop turn (cheap; use it for windows
  // and deadlines). libevent keeps it monotonic between its periodic wall-clock resyncs, so a
  // caller that must never see time go back clamps it. This worker's thread only.
  virtual int64_t nowMs() const = 0;
  // This worker's Redis connection; null when the configuration has no `redis:` block. Ask for
  // it per request and never keep it: a reload may replace the connection. This worker's thread
  // only.
  virtual redis::Client* redis() { return nullptr; }
};

}  // namespace gw::plugin
