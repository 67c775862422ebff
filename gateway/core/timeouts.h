#pragma once
// Per-loop cache of libevent "common timeouts": events sharing a duration sit in one O(1) queue
// instead of the timer heap, which matters when every connection re-arms a timeout per request.

#include <event2/event.h>

#include <chrono>
#include <map>

namespace gw::core {

class TimeoutCache {
 public:
  explicit TimeoutCache(event_base* base) : base_(base) {}
  // The timeval to pass to event_add for this duration (stable address for the loop's life).
  const timeval* get(std::chrono::milliseconds duration);

 private:
  event_base* base_;
  std::map<long long, timeval> cache_;
};

}  // namespace gw::core
