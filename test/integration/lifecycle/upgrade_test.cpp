// In-place binary upgrade (SIGUSR2): gatewayd starts the binary at its path anew with its
// listening sockets; once the new process serves, the old one stops accepting, drains and exits.
// Under load no request fails and no connection is refused or reset. A new binary that does not
// come up leaves the old process serving.
#include <doctest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test/support/continuous_load.h"
#include "test/support/harness.h"
#include "test/support/notify_socket.h"

using namespace gw::it;

namespace {

// The value of "key":"..." in the first log line holding `message`, or "".
std::string loggedField(const std::string& log, std::string_view message, std::string_view key) {
  const std::size_t line = log.find(message);
  if (line == std::string::npos) return "";
  const std::string field = "\"" + std::string(key) + "\":\"";
  const std::size_t at = log.find(field, line);
  if (at == std::string::npos || at > log.find('\n', line)) return "";
  const std::size_t start = at + field.size();
  return log.substr(start, log.find('"', start) - start);
}

// A process that is not our child: gone, or a zombie nobody reaps (in a container without init).
bool ended(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const std::size_t state = text.rfind(')');
  return text.empty() || (state != std::string::npos && text.substr(state + 2, 1) == "Z");
}

// Stops the new gatewayd an upgrade left behind, whatever the test's outcome.
struct StopAtEnd {
  pid_t pid = -1;
  ~StopAtEnd() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    if (!waitFor([&] { return ended(pid); }, 15000ms)) ::kill(pid, SIGKILL);
  }
};

constexpr std::string_view kServes =
    R"("msg":"upgrade: the new gatewayd serves; this one stops accepting and drains")";
constexpr std::string_view kStarted =
    R"("msg":"upgrade: started the new gatewayd; serving until it does")";
constexpr std::string_view kFailed = R"("msg":"upgrade failed: still serving with this process")";

std::string upgradeConfig(const Backend& b) {
  return simpleConfig({&b}, "access_log: {enabled: false}\nshutdown: {drain_timeout: 10s}\n", {},
                      2);
}

}  // namespace

TEST_CASE("upgrade: SIGUSR2 under load hands over to the new process, no request fails") {
  Backend b;
  Gateway gw(upgradeConfig(b));
  // Serving (every worker runs): SIGUSR2 is refused before.
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 10000ms));
  ContinuousLoad load({.port = gw.port()});
  REQUIRE(load.waitAnsweredMore(200, 15000ms));
  const pid_t oldPid = gw.process().pid();
  gw.process().signal(SIGUSR2);
  REQUIRE_MESSAGE(waitFor([&] { return gw.log().find(kServes) != std::string::npos; }, 30000ms),
                  gw.log());
  StopAtEnd successor{std::stoi(loggedField(gw.log(), kServes, "new_pid"))};
  CHECK(successor.pid != oldPid);
  // The old one drains and exits 0; the new one goes on serving, on the same sockets.
  CHECK(gw.process().waitExit(15000ms) == 0);
  CHECK_FALSE(ended(successor.pid));
  CHECK(load.waitAnsweredMore(500, 15000ms));
  load.stop();
  CHECK_MESSAGE(load.failed() == 0, load.report());
  MESSAGE(load.report());
  // The admin listener moved along: the new process answers on the same port.
  Response ready = adminRequest(gw, "/ready");
  CHECK(ready.status == 200);
  // Each worker's socket and the admin listener's.
  CHECK(gw.log().find(R"x(sockets passed to gatewayd (LISTEN_FDS)","sockets":"3")x") !=
        std::string::npos);
}

namespace {

// gatewayd run from a copy of its binary, which the test may replace as an upgrade would.
struct CopiedGateway {
  TempDir dir;
  std::string binary = dir.path() + "/gatewayd";
  std::string log = dir.path() + "/gatewayd.log";
  uint16_t port = freePort();
  uint16_t adminPort = freePort();
  std::optional<Process> process;

  explicit CopiedGateway(const Backend& b) {
    std::filesystem::copy_file(gatewaydPath(), binary);
    const std::string config = dir.write(
        "gw.yaml", subst(upgradeConfig(b) + "admin: {address: 127.0.0.1, port: ${ADMIN}}\n",
                         {{"PORT", std::to_string(port)}, {"ADMIN", std::to_string(adminPort)}}));
    process.emplace(std::vector<std::string>{binary, "-c", config}, log);
    // Serving (every worker runs): SIGUSR2 is refused before. The admin port listens first.
    REQUIRE_MESSAGE(waitFor([&] { return waitPortOpen(adminPort, 100ms); }, 15000ms),
                    readFile(log));
    REQUIRE_MESSAGE(
        waitFor([&] { return Client(adminPort).roundTrip(get("/ready")).status == 200; }, 15000ms),
        readFile(log));
  }
  ~CopiedGateway() {
    CHECK(process->stop(15000ms) == 0);
    for (const char* marker : {"AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
      CHECK_MESSAGE(readFile(log).find(marker) == std::string::npos, readFile(log));
    }
  }
  // Puts `script` where the binary was, as a package upgrade renames a new file into place.
  void replaceBinary(const std::string& script) const {
    const std::string next = dir.write("gatewayd.next", script);
    REQUIRE(::chmod(next.c_str(), 0755) == 0);
    std::filesystem::rename(next, binary);
  }
  bool logged(std::string_view text, Millis timeout = 15000ms) const {
    return waitFor([&] { return readFile(log).find(text) != std::string::npos; }, timeout);
  }
};

}  // namespace

TEST_CASE("upgrade: a new binary that fails to start leaves the old process serving") {
  Backend b;
  CopiedGateway gw(b);
  ContinuousLoad load({.port = gw.port});
  REQUIRE(load.waitAnsweredMore(100, 15000ms));
  gw.replaceBinary("#!/bin/sh\nexit 1\n");
  gw.process->signal(SIGUSR2);
  REQUIRE_MESSAGE(gw.logged(std::string(kFailed)), readFile(gw.log));
  CHECK(loggedField(readFile(gw.log), kFailed, "reason") ==
        "it exited with status 1 before it served");
  CHECK(gw.process->running());
  CHECK(load.waitAnsweredMore(200, 15000ms));
  load.stop();
  CHECK_MESSAGE(load.failed() == 0, load.report());
  MESSAGE(load.report());
}

TEST_CASE("upgrade: a second SIGUSR2 during an upgrade is refused; the first one still decides") {
  Backend b;
  CopiedGateway gw(b);
  // A new binary that never says it serves until it is told to stop.
  gw.replaceBinary("#!/bin/sh\nexec sleep 30\n");
  gw.process->signal(SIGUSR2);
  REQUIRE_MESSAGE(gw.logged(kStarted), readFile(gw.log));
  const pid_t successor = std::stoi(loggedField(readFile(gw.log), kStarted, "new_pid"));
  gw.process->signal(SIGUSR2);
  CHECK_MESSAGE(gw.logged(R"("msg":"SIGUSR2 refused: an upgrade is in progress","new_pid":")" +
                          std::to_string(successor) + "\""),
                readFile(gw.log));
  ::kill(successor, SIGTERM);
  REQUIRE(gw.logged(kFailed));
  CHECK(loggedField(readFile(gw.log), kFailed, "reason") ==
        "it was killed by SIGTERM before it served");
  Response r = Client(gw.port).roundTrip(get("/bytes/10"));
  CHECK(r.status == 200);
  // Over: the next SIGUSR2 starts an upgrade again (which fails the same way, quickly).
  gw.replaceBinary("#!/bin/sh\nexit 2\n");
  gw.process->signal(SIGUSR2);
  CHECK(gw.logged("it exited with status 2 before it served"));
}

TEST_CASE("upgrade: a stop during an upgrade stops the new process too") {
  Backend b;
  CopiedGateway gw(b);
  gw.replaceBinary("#!/bin/sh\nexec sleep 30\n");
  gw.process->signal(SIGUSR2);
  REQUIRE_MESSAGE(gw.logged(kStarted), readFile(gw.log));
  StopAtEnd successor{std::stoi(loggedField(readFile(gw.log), kStarted, "new_pid"))};
  gw.process->signal(SIGTERM);
  CHECK(gw.process->waitExit(15000ms) == 0);
  CHECK(waitFor([&] { return ended(successor.pid); }, 5000ms));
}

TEST_CASE("upgrade: systemd hears MAINPID= of the new process, then only from it") {
  NotifySocket notify;
  Backend b;
  // A watchdog, so that the new process must ping for itself (WATCHDOG_PID follows it).
  Gateway gw(upgradeConfig(b), 0, {notify.env(), "WATCHDOG_USEC=2000000"});
  const std::string serving = "STATUS=serving: 1 route, 1 upstream, 2 workers, generation 1";
  REQUIRE(notify.next(10000ms) == "READY=1\n" + serving);
  gw.process().signal(SIGUSR2);
  REQUIRE_MESSAGE(waitFor([&] { return gw.log().find(kServes) != std::string::npos; }, 30000ms),
                  gw.log());
  StopAtEnd successor{std::stoi(loggedField(gw.log(), kServes, "new_pid"))};
  // Watchdog pings of the old process until the handover, then the handover, and no STOPPING=1
  // (the service is not stopping) nor READY=1 of the new one (not yet the main process).
  std::optional<std::string> message;
  while ((message = notify.next(5000ms)) && *message == "WATCHDOG=1") {
  }
  CHECK(message == "MAINPID=" + std::to_string(successor.pid) + "\n" + serving);
  CHECK(gw.process().waitExit(15000ms) == 0);
  // From now on the new process pings systemd's watchdog (WATCHDOG_PID named it); a STOPPING=1
  // of the draining old one would arrive first.
  CHECK(notify.next(5000ms) == "WATCHDOG=1");
  CHECK(notify.next(5000ms) == "WATCHDOG=1");
}
