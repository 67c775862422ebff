// What gatewayd tells systemd (Type=notify): the test is the service manager, with a
// NOTIFY_SOCKET of its own (no systemd needed), and asserts the exact messages for a start, a
// reload (applied and refused) and a drained stop, and the watchdog pings while every worker's loop
// answers. (A worker that stops answering, and the pings stopping with it, is proven in
// gateway/runtime/watchdog_test.cpp.)
#include <doctest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "test/support/harness.h"
#include "test/support/notify_socket.h"

using namespace gw::it;

namespace {

const std::string kSourceRoot = GW_SOURCE_ROOT;

// The datagrams that arrive within `timeout`, each waited for at most `gap`.
std::vector<std::string> datagramsWithin(NotifySocket& socket, Millis timeout, Millis gap) {
  std::vector<std::string> received;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto datagram = socket.next(gap)) received.push_back(*datagram);
  }
  return received;
}

}  // namespace

TEST_CASE("systemd: READY=1 once serving, STOPPING=1 when the drain starts, its progress after") {
  NotifySocket notify;
  Backend b;
  Gateway gw(apiConfig(b, 2, "shutdown: {drain_timeout: 5s}\n"), 0, {notify.env()});
  CHECK(notify.next(5000ms) ==
        "READY=1\nSTATUS=serving: 1 route, 1 upstream, 2 workers, generation 1");
  // Told only once every worker runs: /ready agrees from then on.
  CHECK(adminRequest(gw, "/ready").status == 200);

  Client busy(gw.port());
  REQUIRE(busy.send(get("/api/delay/1500")));
  REQUIRE(waitFor([&] { return b.stats().requests == 1; }, 2000ms));
  gw.process().signal(SIGTERM);
  CHECK(notify.next(2000ms) ==
        "STOPPING=1\nSTATUS=draining: finishing open connections (at most 5000 ms)");
  CHECK(notify.next(2000ms) == "STATUS=draining: 1 connection left");
  // The progress comes every second: the answer at 1.5 s, and the client's close right after it,
  // end the drain before the next.
  Response inflight = busy.read(3000ms);
  CHECK(inflight.status == 200);
  busy.close();
  REQUIRE(gw.process().waitExit(5000ms) == 0);
  // Nothing else: no watchdog pings were asked for.
  CHECK(notify.next(100ms).value_or("nothing") == "nothing");
}

// "RELOADING=1\nMONOTONIC_USEC=<digits>\nSTATUS=..." with the digits replaced by N.
std::string withoutClock(std::string message) {
  const std::string key = "MONOTONIC_USEC=";
  const std::size_t at = message.find(key);
  if (at == std::string::npos) return message;
  const std::size_t digits = at + key.size();
  const std::size_t end = message.find_first_not_of("0123456789", digits);
  if (end == digits) return message;
  return message.replace(digits, end - digits, "N");
}

TEST_CASE("systemd: RELOADING=1 then READY=1 around a reload, applied or refused") {
  NotifySocket notify;
  Backend b;
  Gateway gw(apiConfig(b, 2), 0, {notify.env()});
  REQUIRE(notify.next(5000ms) ==
          "READY=1\nSTATUS=serving: 1 route, 1 upstream, 2 workers, generation 1");
  const std::string reloading =
      "RELOADING=1\nMONOTONIC_USEC=N\nSTATUS=reloading: reading " + gw.configPath();

  gw.rewriteConfig(
      apiConfig(b, 2, {}, "  - {name: more, match: {prefix: /more}, upstream: main}\n"));
  gw.process().signal(SIGHUP);
  CHECK(withoutClock(notify.next(5000ms).value_or("nothing")) == reloading);
  CHECK(notify.next(5000ms) ==
        "READY=1\nSTATUS=serving: 2 routes, 1 upstream, 2 workers, generation 2");

  gw.rewriteConfig(apiConfig(b, 2, "limits: {header_bytes: lots}\n"));
  gw.process().signal(SIGHUP);
  CHECK(withoutClock(notify.next(5000ms).value_or("nothing")) == reloading);
  CHECK(notify.next(5000ms) ==
        "READY=1\nSTATUS=serving: 2 routes, 1 upstream, 2 workers, generation 2, last reload "
        "failed: " +
            gw.configPath() +
            ":2:24: 'header_bytes': invalid size 'lots': expected a whole number followed by B, "
            "KB, MB, GB, KiB, MiB or GiB");
}

TEST_CASE("systemd: a NOTIFY_SOCKET nobody reads is logged, and gatewayd serves on") {
  TempDir dir;
  Backend b;
  Gateway gw(apiConfig(b), 0, {"NOTIFY_SOCKET=" + dir.path() + "/nobody"});
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 5000ms));
  CHECK(Client(gw.port()).roundTrip(get("/api/echo")).status == 200);
  REQUIRE(waitFor(
      [&] { return gw.log().find("cannot notify the service manager") != std::string::npos; },
      2000ms));
  CHECK(gw.log().find("\"error\":\"No such file or directory\"") != std::string::npos);
}

TEST_CASE("systemd: WATCHDOG=1 every half WatchdogSec while every worker answers") {
  NotifySocket notify;
  Backend b;
  // WatchdogSec=400ms: a ping every 200 ms.
  Gateway gw(apiConfig(b, 2), 0, {notify.env(), "WATCHDOG_USEC=400000"});
  REQUIRE(notify.next(5000ms)->starts_with("READY=1\n"));
  const auto received = datagramsWithin(notify, 1500ms, 100ms);
  const auto pings = std::count(received.begin(), received.end(), "WATCHDOG=1");
  CHECK_MESSAGE(pings == static_cast<long>(received.size()), "only pings while serving");
  // 7 in 1.5 s; a loaded machine may delay a few.
  CHECK(pings >= 4);
  CHECK(pings <= 9);
  CHECK(gw.log().find("\"msg\":\"systemd watchdog on") != std::string::npos);
}

TEST_CASE("systemd: a watchdog meant for another process (WATCHDOG_PID) is not this one's") {
  NotifySocket notify;
  Backend b;
  Gateway gw(apiConfig(b), 0, {notify.env(), "WATCHDOG_USEC=200000", "WATCHDOG_PID=1"});
  REQUIRE(notify.next(5000ms)->starts_with("READY=1\n"));
  CHECK(datagramsWithin(notify, 600ms, 100ms).empty());
}

TEST_CASE("systemd: the unit is Type=notify with a watchdog and a reload by SIGHUP") {
  const std::string unit = readFile(kSourceRoot + "/systemd/gatewayd.service");
  for (const char* line : {"\nType=notify\n", "\nNotifyAccess=main\n", "\nWatchdogSec=30s\n",
                           "\nExecReload=kill -HUP $MAINPID\n"}) {
    CHECK_MESSAGE(unit.find(line) != std::string::npos, "the unit lacks " << std::string(line));
  }
  // systemd-analyze verify accepts it: lifecycle/install_test.cpp checks the installed copy.
}

TEST_CASE("systemd: the socket unit holds the shipped config's listener for the service") {
  const std::string unit = readFile(kSourceRoot + "/systemd/gatewayd.socket");
  // One socket all workers share; SO_REUSEPORT would let another process take part of the port.
  for (const char* line :
       {"\nListenStream=127.0.0.1:8080\n", "\nReusePort=no\n",
        "\nFileDescriptorName=gatewayd-http\n", "\nService=gatewayd.service\n"}) {
    CHECK_MESSAGE(unit.find(line) != std::string::npos, "the unit lacks " << std::string(line));
  }
  // gatewayd refuses a passed socket that matches no listener: the shipped pair must agree.
  const std::string config = readFile(kSourceRoot + "/conf/gateway.yaml");
  CHECK(config.find("  - address: 127.0.0.1   # IPv4 or IPv6 literal") != std::string::npos);
  CHECK(config.find("    port: 8080 ") != std::string::npos);
}
