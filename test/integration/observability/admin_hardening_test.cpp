// The admin listener under hostile or careless clients, through the real gatewayd: connections
// holding every slot, heads that never complete, request bodies, malformed request lines and
// targets. Probes must keep being answered, and nothing a client sends may grow memory.
#include <doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1024 * 1024;

// apiConfig with an admin section on ${ADMIN_PORT} and `settings` (indented lines) in it.
std::string withAdmin(const Backend& b, std::string_view settings, std::string_view routes = {}) {
  return apiConfig(b, 1,
                   "admin:\n  address: 127.0.0.1\n  port: ${ADMIN_PORT}\n" + std::string(settings),
                   routes);
}

Millis since(Clock::time_point start) {
  return std::chrono::duration_cast<Millis>(Clock::now() - start);
}

// `count` header fields X-0 .. X-(count-1).
std::string fields(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += "X-" + std::to_string(i) + ": y\r\n";
  return out;
}

// A raw response with as many body bytes as its Content-Length says.
bool wholeResponse(const std::string& raw) {
  const std::size_t headEnd = raw.find("\r\n\r\n");
  const std::size_t length = raw.find("Content-Length: ");
  if (headEnd == std::string::npos || length == std::string::npos) return false;
  return raw.size() - headEnd - 4 == std::stoull(raw.substr(length + 16));
}

// User plus system CPU time of a process, in seconds.
double cpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stol(field);  // utime, stime
  }
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The lowest descriptor number a process has free.
int lowestFreeDescriptor(pid_t pid) {
  std::set<int> used;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    used.insert(std::stoi(entry.path().filename().string()));
  }
  int fd = 0;
  while (used.count(fd)) ++fd;
  return fd;
}

}  // namespace

TEST_CASE("admin hardening: connections holding every slot do not lock out probes") {
  Backend b;
  Gateway gw(apiConfig(b));
  REQUIRE(waitFor([&] { return adminRequest(gw, "/ready").status == 200; }, 5000ms));
  constexpr int kSlots = 64;  // the default admin.max_connections
  std::vector<std::unique_ptr<Client>> held;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kSlots; ++i) {
      held.push_back(std::make_unique<Client>(gw.adminPort()));
      if (i % 2 == 1) REQUIRE(held.back()->send("GET /hea"));  // trickling a head; others silent
    }
    for (const char* path : {"/ready", "/health", "/metrics"}) {
      const auto start = Clock::now();
      Response r = adminRequest(gw, path);
      const Millis took = since(start);
      INFO("round " << round << " " << path << ": " << r.error << " after " << took.count()
                    << " ms");
      CHECK(r.status == 200);
      // Far inside the 3 s header_timeout: a slot was given up at once, not when a holder timed
      // out.
      CHECK(took < 1000ms);
    }
  }
  // Each probe took the slot of the oldest connection without a complete head, and told it why.
  Response evicted = held.front()->read(2000ms);
  REQUIRE_MESSAGE(evicted.complete, evicted.error);
  CHECK(evicted.status == 503);
  CHECK(errorCode(evicted.body) == "SERVICE_UNAVAILABLE");
  CHECK(held.front()->waitClosed(1000ms));
  // The newest holders keep theirs (until their header_timeout).
  CHECK_FALSE(held.back()->waitClosed(200ms));
}

TEST_CASE("admin hardening: a head not complete within admin.header_timeout gets a 408") {
  Backend b;
  Gateway gw(withAdmin(b, "  header_timeout: 300ms\n"));
  const auto start = Clock::now();
  Client silent(gw.adminPort());
  Client trickling(gw.adminPort());
  REQUIRE(trickling.send("GET /health HTTP/1.1\r\nHost: gw.test\r\n"));  // no empty line
  for (Client* c : {&silent, &trickling}) {
    Response r = c->read(3000ms);
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 408);
    CHECK(errorCode(r.body) == "REQUEST_TIMEOUT");
    CHECK(c->waitClosed(1000ms));
  }
  const Millis took = since(start);
  CHECK(took >= 250ms);
  CHECK(took < 2000ms);
  CHECK(adminRequest(gw, "/health").status == 200);  // a head in time is served
}

TEST_CASE("admin hardening: admin.max_connections, and a slow reader of /metrics gives way") {
  // Every series carries its route's name: 50 routes with 5,000-byte names make /metrics about
  // 6.5 MiB, more than the socket buffers hold, so a client that does not read keeps its
  // connection answering. (Few routes: loading thousands takes long under ASan.)
  Backend b;
  const std::string longName = "route-" + std::string(5000, 'n') + "-";
  std::string routes;
  for (int i = 0; i < 50; ++i) {
    const std::string n = std::to_string(i);
    routes +=
        "  - name: " + longName + n + "\n    match: {prefix: /r" + n + "/}\n    upstream: main\n";
  }
  Gateway gw(withAdmin(b, "  max_connections: 2\n", routes));

  // Two slots: a third connection takes the older silent one's.
  Client silentOld(gw.adminPort());
  Client silentNew(gw.adminPort());
  Response probe = adminRequest(gw, "/health");
  CHECK(probe.status == 200);
  Response evicted = silentOld.read(2000ms);
  CHECK(evicted.status == 503);
  CHECK(errorCode(evicted.body) == "SERVICE_UNAVAILABLE");
  CHECK(silentOld.waitClosed(1000ms));

  // Two slow readers, each with its answer started; the second takes silentNew's slot.
  Client slowOld(gw.adminPort(), 3000ms, 4096);
  REQUIRE(slowOld.send(get("/metrics")));
  const std::string slowOldStart = slowOld.readRaw(3000ms, 1);
  REQUIRE_FALSE(slowOldStart.empty());
  Client slowNew(gw.adminPort(), 3000ms, 4096);
  REQUIRE(slowNew.send(get("/metrics")));
  const std::string slowNewStart = slowNew.readRaw(3000ms, 1);
  REQUIRE_FALSE(slowNewStart.empty());
  CHECK(silentNew.waitClosed(1000ms));

  // Every slot is being answered: a probe still is, in the oldest one's place.
  const auto start = Clock::now();
  Response health = adminRequest(gw, "/health");
  CHECK(health.status == 200);
  CHECK(since(start) < 1000ms);
  // The oldest was cut short; the other's answer is whole.
  CHECK_FALSE(wholeResponse(slowOldStart + slowOld.readRaw(10000ms, 64 * kMiB)));
  CHECK(wholeResponse(slowNewStart + slowNew.readRaw(10000ms, 64 * kMiB)));
}

TEST_CASE("admin hardening: a request body is refused at its head and never read") {
  Backend b;
  Gateway gw(apiConfig(b));
  const pid_t pid = gw.process().pid();
  REQUIRE(adminRequest(gw, "/health").status == 200);
  const long peakBefore = peakRssKiB(pid);
  REQUIRE(peakBefore > 0);

  constexpr uint64_t kBody = 64 * kMiB;
  Client c(gw.adminPort());
  REQUIRE(c.send("POST /health HTTP/1.1\r\nHost: gw.test\r\nContent-Length: " +
                 std::to_string(kBody) + "\r\n\r\n"));
  const std::string piece(kMiB, 'x');
  uint64_t sent = 0;
  while (sent < kBody && c.send(piece, 2000ms)) sent += piece.size();
  Response r = c.read(2000ms);
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 413);
  CHECK(errorCode(r.body) == "PAYLOAD_TOO_LARGE");
  MESSAGE("sent " << sent / kMiB << " of " << kBody / kMiB << " MiB before the admin closed");
  CHECK(sent < kBody / 4);  // the connection was closed long before the body was through
  CHECK(c.waitClosed(1000ms));
  const long growth = peakRssKiB(pid) - peakBefore;
  MESSAGE("gatewayd peak RSS growth: " << growth << " KiB");
  CHECK(growth < 4 * 1024);

  struct Refused {
    const char* name;
    std::string request;
  };
  const std::vector<Refused> refused = {
      {"chunked",
       request("POST", "/health", "Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n"},
      {"a GET with a body", request("GET", "/metrics", {}, "hello")},
      {"a purge with a body", request("DELETE", "/cache?prefix=/", {}, "{}")},
      {"100-continue", request("POST", "/health", "Expect: 100-continue\r\nContent-Length: 9\r\n")},
  };
  for (const Refused& each : refused) {
    INFO(each.name);
    Client one(gw.adminPort());
    Response answer = one.roundTrip(each.request, 2000ms);
    REQUIRE_MESSAGE(answer.complete, answer.error);
    CHECK(answer.status == 413);
    CHECK(errorCode(answer.body) == "PAYLOAD_TOO_LARGE");
    CHECK(one.waitClosed(1000ms));
  }
  // A declared empty body is no body.
  Client empty(gw.adminPort());
  Response purged = empty.roundTrip(request("DELETE", "/cache?prefix=/", "Content-Length: 0\r\n"));
  CHECK(purged.status == 200);
  CHECK(purged.body == "{\"purged\":0}\n");
}

TEST_CASE("admin hardening: request lines, targets and heads the admin refuses or takes") {
  Backend b;
  Gateway gw(apiConfig(b));
  struct Case {
    const char* name;
    std::string request;
    int status;
    std::string code;  // of the JSON error; "" for an answer from an endpoint
  };
  const std::vector<Case> cases = {
      {"HTTP/0.9 request line", "GET /health\r\n", 400, "BAD_REQUEST"},
      {"HTTP/0.9 request line and an empty line", "GET /health\r\n\r\n", 400, "BAD_REQUEST"},
      {"HTTP/2.0 on an HTTP/1 connection", "GET /health HTTP/2.0\r\nHost: gw.test\r\n\r\n", 400,
       "BAD_REQUEST"},
      {"a fragment", request("GET", "/health#top"), 400, "BAD_REQUEST"},
      {"a fragment before the query", request("DELETE", "/cache#x?prefix=/"), 400, "BAD_REQUEST"},
      {"asterisk-form", request("OPTIONS", "*"), 400, "BAD_REQUEST"},
      {"authority-form", request("CONNECT", "gw.test:443"), 400, "BAD_REQUEST"},
      {"userinfo in absolute-form", request("GET", "http://user@gw.test/health"), 400,
       "BAD_REQUEST"},
      {"an https absolute-form target", request("GET", "https://gw.test/health"), 400,
       "BAD_REQUEST"},
      {"33 header fields", request("GET", "/health", fields(32)), 431,
       "REQUEST_HEADER_FIELDS_TOO_LARGE"},
      {"a head over 8 KiB", request("GET", "/health", "X-Big: " + std::string(8200, 'a') + "\r\n"),
       431, "REQUEST_HEADER_FIELDS_TOO_LARGE"},
      {"empty lines and never a request line", std::string(12 * 1024, '\n'), 431,
       "REQUEST_HEADER_FIELDS_TOO_LARGE"},
      {"a request line over 2 KiB", request("GET", std::string("/").append(2100, 'a')), 414,
       "URI_TOO_LONG"},
      // Taken:
      {"32 header fields", request("GET", "/health", fields(31)), 200, ""},
      {"HTTP/1.0 without Host", "GET /health HTTP/1.0\r\n\r\n", 200, ""},
      {"absolute-form", request("GET", "http://gw.test/health"), 200, ""},
      {"absolute-form, upper-case scheme, a port", request("GET", "HTTP://GW.TEST:9901/ready"), 200,
       ""},
      {"absolute-form purge", request("DELETE", "http://gw.test/cache?prefix=/"), 200, ""},
      {"absolute-form without a path", request("GET", "http://gw.test"), 404, "NOT_FOUND"},
  };
  for (const Case& each : cases) {
    INFO(each.name);
    Client c(gw.adminPort());
    REQUIRE(c.send(each.request));
    Response r = c.read(2000ms);
    CHECK_MESSAGE(r.complete, r.error);
    CHECK(r.status == each.status);
    CHECK(errorCode(r.body) == each.code);
    CHECK(c.waitClosed(1000ms));
  }
}

TEST_CASE("admin hardening: out of descriptors, the admin listener waits instead of spinning") {
  Backend b;
  Gateway gw(apiConfig(b));
  const pid_t pid = gw.process().pid();
  REQUIRE(adminRequest(gw, "/health").status == 200);
  // The lowest free descriptor number as the limit: the next accept fails with EMFILE. Read once
  // the number holds still, after the admin closed the connection above.
  int lowestFree = -1;
  REQUIRE(waitFor(
      [&] {
        const int previous = std::exchange(lowestFree, lowestFreeDescriptor(pid));
        return previous == lowestFree;
      },
      2000ms, 50ms));
  rlimit original{};
  REQUIRE(prlimit(pid, RLIMIT_NOFILE, nullptr, &original) == 0);
  const rlimit exhausted{static_cast<rlim_t>(lowestFree), original.rlim_max};
  REQUIRE(prlimit(pid, RLIMIT_NOFILE, &exhausted, nullptr) == 0);

  Client probe(gw.adminPort());
  REQUIRE(probe.send(get("/health")));
  const double cpuBefore = cpuSeconds(pid);
  Response waiting = probe.read(1500ms);
  CHECK(waiting.error == "timeout");  // still in the backlog
  const double cpu = cpuSeconds(pid) - cpuBefore;
  MESSAGE("gatewayd CPU while out of descriptors for 1.5 s: " << cpu << " s");
  CHECK(cpu < 0.05);  // a retry every 100 ms, not an accept loop

  REQUIRE(prlimit(pid, RLIMIT_NOFILE, &original, nullptr) == 0);
  Response served = probe.read(2000ms);  // the next retry takes it
  REQUIRE_MESSAGE(served.complete, served.error);
  CHECK(served.status == 200);
  const std::string log = gw.log();
  const std::string warning = "cannot accept connections: pausing the listener";
  const std::size_t first = log.find(warning);
  CHECK(first != std::string::npos);
  CHECK(log.find(warning, first + 1) == std::string::npos);  // said once, not every retry
}
