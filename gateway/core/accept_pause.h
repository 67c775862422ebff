#pragma once
// Out of file descriptors (or kernel memory), a listening socket stays readable while every
// accept() fails at once: retrying on each readiness would spin a core and log each failure.
// AcceptPause takes the listener's events out of the loop instead and puts them back after
// kRetryDelay, until accepting works again. Connections wait in the kernel's backlog meanwhile.
// One line is logged when a pause starts and one when accepting works again.

#include <event2/event.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "gateway/core/libevent_ptr.h"

namespace gw::core {

class AcceptPause {
 public:
  static constexpr int64_t kRetryDelayMs = 100;

  // `listener` names the listener in the log lines ("proxy worker 0", "admin").
  AcceptPause(event_base* base, std::string listener);

  // After accept() failed with `error`: when the error is a lack of descriptors or memory, takes
  // `events` out of the loop until the retry and returns true; otherwise returns false.
  bool pauseOn(int error, std::span<const EventPtr> events);
  // After accept() succeeded: ends a pause episode (logged once).
  void accepted() {
    if (pausedSinceMs_ >= 0) resumed();
  }
  // The listener is closing: its events must not be put back.
  void cancel();
  bool paused() const { return !paused_.empty(); }

 private:
  static void onRetry(evutil_socket_t, short, void* arg);
  void resumed();

  std::string listener_;
  EventPtr retryTimer_;
  std::vector<event*> paused_;  // borrowed from the listener, which calls cancel() before freeing
  int64_t pausedSinceMs_ = -1;  // start of the episode; -1: accepting normally
  int64_t lastFailureMs_ = 0;
};

}  // namespace gw::core
