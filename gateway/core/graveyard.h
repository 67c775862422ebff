#pragma once
// Deferred destruction for objects that are closed deep inside their own callbacks. A closed
// connection stops all I/O at once, but its memory is freed only after the current event
// callbacks have unwound, so no frame still on the stack touches freed memory. Not `delete this`:
// the graveyard owns what it frees.

#include <event2/event.h>

#include <memory>
#include <vector>

#include "gateway/core/libevent_ptr.h"

namespace gw::core {

class Retirable {
 public:
  virtual ~Retirable() = default;
};

class Graveyard {
 public:
  explicit Graveyard(event_base* base);
  void bury(std::unique_ptr<Retirable> object);
  // Frees everything now (also run by the loop after the current callbacks).
  void reap();

 private:
  static void onReap(evutil_socket_t, short, void* arg);
  EventPtr reaper_;
  std::vector<std::unique_ptr<Retirable>> dead_;
  bool scheduled_ = false;
};

}  // namespace gw::core
