#include "gateway/core/accept_pause.h"

#include <doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace gw::core {
namespace {

void never(evutil_socket_t, short, void*) {}

// Runs the loop for `ms` milliseconds.
void runFor(event_base* base, int ms) {
  const timeval tv{0, ms * 1000};
  event_base_loopexit(base, &tv);
  event_base_dispatch(base);
}

struct Listener {
  EventBasePtr base{event_base_new()};
  int fds[2];
  EventPtr events[1];
  Listener() {
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    events[0].reset(event_new(base.get(), fds[0], EV_READ | EV_PERSIST, &never, nullptr));
    event_add(events[0].get(), nullptr);
  }
  ~Listener() {
    events[0].reset();
    ::close(fds[0]);
    ::close(fds[1]);
  }
  bool watched() const { return event_pending(events[0].get(), EV_READ, nullptr) != 0; }
};

TEST_CASE("AcceptPause takes the events out for a lack of descriptors, then puts them back") {
  Listener listener;
  AcceptPause pause(listener.base.get(), "test");
  CHECK_FALSE(pause.pauseOn(EAGAIN, listener.events));
  CHECK_FALSE(pause.pauseOn(ECONNABORTED, listener.events));
  CHECK(listener.watched());
  for (int error : {EMFILE, ENFILE, ENOBUFS, ENOMEM}) {
    CHECK(pause.pauseOn(error, listener.events));
    CHECK(pause.paused());
    CHECK_FALSE(listener.watched());
    runFor(listener.base.get(), 2 * AcceptPause::kRetryDelayMs);
    CHECK_FALSE(pause.paused());
    CHECK(listener.watched());
  }
}

TEST_CASE("AcceptPause::cancel keeps a closing listener's events out") {
  Listener listener;
  AcceptPause pause(listener.base.get(), "test");
  CHECK(pause.pauseOn(EMFILE, listener.events));
  pause.cancel();
  runFor(listener.base.get(), 2 * AcceptPause::kRetryDelayMs);
  CHECK_FALSE(listener.watched());
}

}  // namespace
}  // namespace gw::core
