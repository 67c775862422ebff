#pragma once
// One event loop: an event_base, the thread that runs it, and post() — the only way another
// thread may ask this loop to do something. post() takes a lock and writes an eventfd, so it is
// for control traffic (drain, stop), never the request path.

#include <event2/event.h>

#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "gateway/core/libevent_ptr.h"

namespace gw::core {

class Reactor {
 public:
  Reactor();
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  event_base* base() const { return base_.get(); }

  // Runs fn on this loop's thread. Safe from any thread.
  void post(std::function<void()> fn);
  // Runs the loop on the calling thread until stop().
  void run();
  // Starts a thread that runs the loop.
  void start();
  // Asks the loop to return once the current callbacks are done. Call on the loop's thread.
  void stop();
  void join();

 private:
  static void onWakeup(evutil_socket_t fd, short what, void* arg);
  void drainPosted();

  EventBasePtr base_;
  int wakeFd_ = -1;
  EventPtr wakeEvent_;
  std::mutex mutex_;
  std::vector<std::function<void()>> posted_;
  std::thread thread_;
};

}  // namespace gw::core
