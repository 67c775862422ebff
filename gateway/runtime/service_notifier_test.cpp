#include "gateway/runtime/service_notifier.h"

#include <doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "test/support/notify_socket.h"

namespace gw::runtime {
namespace {

using namespace std::chrono_literals;

struct Recorded {
  std::vector<std::string> messages;
  int64_t nowUs = 1'234'567;
  ServiceNotifier notifier{[this](const std::string& m) { messages.push_back(m); },
                           [this] { return nowUs; }};
};

// Sets an environment variable for one scope (unit tests run on one thread).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { old_ ? ::setenv(name_, old_->c_str(), 1) : ::unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST_CASE("service notifier: an upgrade names the new main process and its status") {
  Recorded r;
  r.notifier.handOver(4321, "serving: 1 route\nnext");
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0] == "MAINPID=4321\nSTATUS=serving: 1 route next");
}

TEST_CASE("service notifier: a reload is RELOADING=1 with MONOTONIC_USEC, then READY=1") {
  Recorded r;
  r.notifier.ready("serving: 1 route");
  r.notifier.reloading("reloading gateway.yaml");
  r.nowUs = 9'000'000;
  r.notifier.reloading("reloading again");
  r.notifier.ready("serving: 2 routes");
  r.notifier.stopping("draining");
  r.notifier.status("draining: 3 connections left");
  r.notifier.watchdog();
  CHECK(r.messages == std::vector<std::string>{
                          "READY=1\nSTATUS=serving: 1 route",
                          "RELOADING=1\nMONOTONIC_USEC=1234567\nSTATUS=reloading gateway.yaml",
                          "RELOADING=1\nMONOTONIC_USEC=9000000\nSTATUS=reloading again",
                          "READY=1\nSTATUS=serving: 2 routes",
                          "STOPPING=1\nSTATUS=draining",
                          "STATUS=draining: 3 connections left",
                          "WATCHDOG=1",
                      });
}

TEST_CASE("service notifier: a status is one bounded line, whatever the text") {
  CHECK(statusField("gateway.yaml:3:5: bad\ngateway.yaml:9:1: worse\r") ==
        "STATUS=gateway.yaml:3:5: bad gateway.yaml:9:1: worse ");
  CHECK(statusField(std::string(10'000, 'x')).size() ==
        std::string("STATUS=").size() + kMaxStatusBytes);
  Recorded r;
  r.notifier.ready("a\nWATCHDOG=1");  // a status cannot smuggle in another assignment
  CHECK(r.messages == std::vector<std::string>{"READY=1\nSTATUS=a WATCHDOG=1"});
}

TEST_CASE("service notifier: libsystemd delivers to $NOTIFY_SOCKET; nothing without it") {
  it::NotifySocket socket;
  {
    ScopedEnv env("NOTIFY_SOCKET", socket.path());
    ServiceNotifier notifier;
    notifier.ready("serving");
    notifier.stopping("draining");
  }
  CHECK(socket.next(2000ms) == "READY=1\nSTATUS=serving");
  CHECK(socket.next(2000ms) == "STOPPING=1\nSTATUS=draining");
  ::unsetenv("NOTIFY_SOCKET");
  ServiceNotifier().ready("nobody listens");  // no socket named: a no-op, not an error
  CHECK_FALSE(socket.next(50ms).has_value());
}

TEST_CASE("service notifier: the watchdog interval is systemd's, for this process only") {
  {
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid()));
    CHECK(serviceWatchdogInterval() == std::chrono::microseconds(30'000'000));
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid() + 1));  // meant for another process
    CHECK_FALSE(serviceWatchdogInterval().has_value());
  }
  ::unsetenv("WATCHDOG_USEC");
  CHECK_FALSE(serviceWatchdogInterval().has_value());
}

}  // namespace
}  // namespace gw::runtime
