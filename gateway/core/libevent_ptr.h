#pragma once
// RAII owners for libevent handles: every C handle has exactly one owner.

#include <event2/event.h>

#include <memory>

namespace gw::core {

struct EventBaseDeleter {
  void operator()(event_base* base) const { event_base_free(base); }
};
struct EventDeleter {
  void operator()(event* ev) const { event_free(ev); }
};

using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
using EventPtr = std::unique_ptr<event, EventDeleter>;

}  // namespace gw::core
