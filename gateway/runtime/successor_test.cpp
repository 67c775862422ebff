#include "gateway/runtime/successor.h"

#include <doctest.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "gateway/core/clock.h"

namespace gw::runtime {
namespace {

using namespace std::chrono_literals;

// A successor that is a shell script, run by a real event loop.
struct Upgrade {
  core::EventBasePtr base{event_base_new()};
  std::optional<std::pair<pid_t, std::string>> serving;
  std::optional<std::string> failed;
  Successor successor;

  explicit Upgrade(std::chrono::milliseconds timeout = 10s)
      : successor(base.get(),
                  {[this](pid_t pid, std::string status) { serving.emplace(pid, status); },
                   [this](std::string why) { failed = std::move(why); }},
                  timeout) {}

  bool start(const std::string& script, const std::vector<HandedSocket>& sockets = {}) {
    std::string error;
    const bool started = successor.start({"/bin/sh", {"-c", script}}, sockets, error);
    CHECK_MESSAGE(started, error);
    return started;
  }
  // Runs the loop until `done` holds, for at most 10 s.
  bool runUntil(const std::function<bool()>& done) {
    const int64_t deadline = core::monotonicUs() + 10'000'000;
    while (!done() && core::monotonicUs() < deadline) {
      const timeval slice{0, 20'000};
      event_base_loopexit(base.get(), &slice);
      event_base_dispatch(base.get());
    }
    return done();
  }
};

TEST_CASE("successor: gets the sockets in LISTEN_FDS order and its status line is the handover") {
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  Upgrade upgrade;
  // Says what it was given: its own pid in LISTEN_PID, the names, and what fd 3 is.
  REQUIRE(upgrade.start(
      "echo \"serving: fds=$LISTEN_FDS names=$LISTEN_FDNAMES own=$([ \"$LISTEN_PID\" = $$ ] && "
      "echo yes) fd3=$(readlink /proc/$$/fd/3 | cut -d: -f1)\" >&$GATEWAYD_UPGRADE_READY_FD; "
      "sleep 2",
      {{pair[0], "listener"}, {pair[1], "admin"}}));
  REQUIRE(upgrade.runUntil([&] { return upgrade.serving || upgrade.failed; }));
  REQUIRE_FALSE(upgrade.failed);
  CHECK(upgrade.serving->first == upgrade.successor.pid());
  CHECK(upgrade.serving->second == "serving: fds=2 names=listener:admin own=yes fd3=socket");
  CHECK(upgrade.successor.finished());
  ::kill(upgrade.successor.pid(), SIGTERM);
  ::close(pair[0]);
  ::close(pair[1]);
}

TEST_CASE("successor: one that exits before it serves is a failure with its exit status") {
  Upgrade upgrade;
  REQUIRE(upgrade.start("exit 3"));
  REQUIRE(upgrade.runUntil([&] { return upgrade.failed.has_value(); }));
  CHECK(*upgrade.failed == "it exited with status 3 before it served");
  CHECK_FALSE(upgrade.serving);
  CHECK(upgrade.successor.finished());
}

TEST_CASE("successor: one that writes something else is stopped and reaped") {
  Upgrade upgrade;
  REQUIRE(upgrade.start("echo 'no config' >&$GATEWAYD_UPGRADE_READY_FD; sleep 5"));
  REQUIRE(upgrade.runUntil([&] { return upgrade.failed.has_value(); }));
  CHECK(*upgrade.failed == "it wrote 'no config' instead of its serving status");
  // Asked to stop (it would sleep on), and reaped once it has.
  CHECK(upgrade.runUntil([&] { return upgrade.successor.finished(); }));
  CHECK(::kill(upgrade.successor.pid(), 0) != 0);  // reaped: no such process any more
}

TEST_CASE("successor: one that does not serve within the bound is stopped, the wait ends") {
  Upgrade upgrade(300ms);
  REQUIRE(upgrade.start("sleep 5"));
  REQUIRE(upgrade.runUntil([&] { return upgrade.failed.has_value(); }));
  CHECK(*upgrade.failed == "it did not say it serves within 300 ms; asked it to stop (SIGTERM)");
  CHECK(upgrade.runUntil([&] { return upgrade.successor.finished(); }));
}

TEST_CASE("successor: the link tells the predecessor, once") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::setenv("GATEWAYD_UPGRADE_READY_FD", std::to_string(fds[1]).c_str(), 1);
  net::Fd link = takePredecessorLink();
  CHECK(::getenv("GATEWAYD_UPGRADE_READY_FD") == nullptr);
  REQUIRE(link.get() == fds[1]);
  tellPredecessorServing(link, "serving: 1 route\nx");
  CHECK_FALSE(link.valid());
  char buffer[64] = {};
  CHECK(::read(fds[0], buffer, sizeof buffer) == 19);
  CHECK(std::string(buffer) == "serving: 1 route x\n");
  CHECK(::read(fds[0], buffer, sizeof buffer) == 0);  // closed: the write end is gone
  ::close(fds[0]);
  CHECK_FALSE(takePredecessorLink().valid());  // no upgrade: nothing to tell
}

}  // namespace
}  // namespace gw::runtime
