// A restart with socket activation loses no connection: the listening socket belongs to the
// service manager (here the test, as systemd with gatewayd.socket would), passed to each gatewayd
// as LISTEN_FDS. The old one stops accepting on SIGTERM and drains; connections that arrive
// meanwhile wait in the socket's queue for the next one. Under load, no request may fail.
#include <doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "test/support/continuous_load.h"
#include "test/support/harness.h"

using namespace gw::it;

namespace {

// A listening socket on a free loopback port, as systemd opens it for gatewayd.socket.
struct ServiceManagerSocket {
  uint16_t port = 0;  // before fd, whose initialiser sets it
  int fd = listenOnLoopback(4096, port);

  ~ServiceManagerSocket() { ::close(fd); }
};

// gatewayd started as systemd starts a socket-activated service: the socket at fd 3,
// LISTEN_FDS=1, LISTEN_FDNAMES, and LISTEN_PID naming gatewayd itself (the shell's pid, which
// exec keeps).
std::unique_ptr<Process> startActivated(const ServiceManagerSocket& socket,
                                        const std::string& config, const std::string& log) {
  const std::string fd = std::to_string(socket.fd);
  const std::string script =
      "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=gatewayd-http; "
      "exec \"$0\" \"$@\" 3<&" +
      fd + (fd == "3" ? "" : " " + fd + "<&-");
  // Inherited by this one child only: the test runs one case at a time.
  ::fcntl(socket.fd, F_SETFD, 0);
  auto process = std::make_unique<Process>(
      std::vector<std::string>{"/bin/sh", "-c", script, gatewaydPath(), "-c", config}, log);
  ::fcntl(socket.fd, F_SETFD, FD_CLOEXEC);
  return process;
}

std::string activatedConfig(const Backend& b, uint16_t port, uint16_t adminPort) {
  return subst(simpleConfig({&b},
                            "admin: {address: 127.0.0.1, port: ${ADMIN}}\n"
                            "access_log: {enabled: false}\n"
                            "shutdown: {drain_timeout: 10s}\n",
                            {}, 2),
               {{"PORT", std::to_string(port)}, {"ADMIN", std::to_string(adminPort)}});
}

bool logged(const std::string& path, std::string_view text, Millis timeout) {
  return waitFor([&] { return readFile(path).find(text) != std::string::npos; }, timeout);
}

}  // namespace

TEST_CASE("restart: with socket activation a restart under load fails no request") {
  Backend b;
  ServiceManagerSocket socket;
  TempDir dir;
  const std::string firstLog = dir.path() + "/first.log";
  const std::string secondLog = dir.path() + "/second.log";
  // Two admin ports: the second gatewayd starts while the first still drains.
  const std::string firstConfig =
      dir.write("first.yaml", activatedConfig(b, socket.port, freePort()));
  const std::string secondConfig =
      dir.write("second.yaml", activatedConfig(b, socket.port, freePort()));

  auto first = startActivated(socket, firstConfig, firstLog);
  REQUIRE_MESSAGE(logged(firstLog, "\"msg\":\"gatewayd started\"", 15000ms), readFile(firstLog));
  CHECK(readFile(firstLog).find(R"x(sockets passed to gatewayd (LISTEN_FDS)","sockets":"1")x") !=
        std::string::npos);

  ContinuousLoad load({.port = socket.port});
  REQUIRE(load.waitAnsweredMore(200, 15000ms));
  first->signal(SIGTERM);
  auto second = startActivated(socket, secondConfig, secondLog);
  CHECK(first->waitExit(15000ms) == 0);
  REQUIRE_MESSAGE(logged(secondLog, "\"msg\":\"gatewayd started\"", 15000ms), readFile(secondLog));
  // Served by the second one alone from here on.
  CHECK(load.waitAnsweredMore(500, 15000ms));
  load.stop();
  CHECK_MESSAGE(load.failed() == 0, load.report());
  MESSAGE(load.report());
  second->signal(SIGTERM);
  CHECK(second->waitExit(15000ms) == 0);
  for (const std::string& log : {readFile(firstLog), readFile(secondLog)}) {
    for (const char* marker : {"AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
      CHECK_MESSAGE(log.find(marker) == std::string::npos, log);
    }
  }
}

TEST_CASE("restart: a passed socket that matches no listener stops the start, naming it") {
  Backend b;
  ServiceManagerSocket socket;
  TempDir dir;
  const std::string log = dir.path() + "/gatewayd.log";
  const uint16_t otherPort = freePort();
  const std::string config = dir.write("gw.yaml", activatedConfig(b, otherPort, freePort()));
  auto gatewayd = startActivated(socket, config, log);
  CHECK(gatewayd->waitExit(15000ms) == 1);
  CHECK_MESSAGE(
      readFile(log).find(
          R"x("msg":"cannot listen","error":"a socket passed to gatewayd (LISTEN_FDS) is bound to 127.0.0.1:)x" +
          std::to_string(socket.port) +
          R"(, which is no listener's address in the configuration"})") != std::string::npos,
      readFile(log));
}
