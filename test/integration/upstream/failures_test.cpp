// Upstream failures become the right gateway error, and the gateway keeps serving afterwards.
#include <arpa/inet.h>
#include <doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

using Clock = std::chrono::steady_clock;

std::string oneBackendConfig(const std::string& backend, const std::string& timeouts) {
  return subst(R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends:
      - ${B}
    timeouts:
${T}
routes:
  - match: {prefix: /}
    upstream: main
)",
               {{"B", backend}, {"T", timeouts}});
}

void expectServing(uint16_t port, Backend& b) {
  Client c(port);
  Response r = c.roundTrip(get("/echo?after=failure"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.header("X-Backend-Id") == b.id());
}

// A loopback listener that never accepts, with its accept queue already full: further SYNs are
// dropped, so a connect() to it hangs until the caller's own timeout.
struct BlackholeListener {
  int fd = -1;
  uint16_t port = 0;
  std::vector<int> fillers;

  BlackholeListener() {
    fd = listenOnLoopback(0, port);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    for (int i = 0; i < 4; ++i) {
      int f = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      ::connect(f, reinterpret_cast<sockaddr*>(&a), sizeof a);
      fillers.push_back(f);
    }
  }
  ~BlackholeListener() {
    for (int f : fillers) ::close(f);
    ::close(fd);
  }
};

}  // namespace

TEST_CASE("failures: connection refused -> 502 UPSTREAM_CONNECT_FAILED") {
  Backend b;
  uint16_t dead = freePort();
  Gateway gw(subst(R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: dead
    backends:
      - 127.0.0.1:${DEAD}
  - name: live
    backends:
      - ${LIVE}
routes:
  - match: {prefix: /dead}
    upstream: dead
  - match: {prefix: /}
    upstream: live
)",
                   {{"DEAD", std::to_string(dead)}, {"LIVE", b.address()}}));
  Client c(gw.port());
  Response r = c.roundTrip(get("/dead/x"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 502);
  CHECK(errorCode(r.body) == "UPSTREAM_CONNECT_FAILED");
  CHECK(r.header("Content-Type").value_or("").find("application/json") == 0);
  CHECK(r.body.find("\"request_id\"") != std::string::npos);
  CHECK(r.body.find("\"message\"") != std::string::npos);
  expectServing(gw.port(), b);
}

TEST_CASE("failures: connect timeout -> 504 UPSTREAM_CONNECT_TIMEOUT") {
  BlackholeListener hole;
  // The read timeout is far away: a connect that succeeded after all could not pass as this one.
  Gateway gw(oneBackendConfig("127.0.0.1:" + std::to_string(hole.port),
                              "      connect: 300ms\n      read: 30s"));
  Client c(gw.port());
  auto start = Clock::now();
  Response r = c.roundTrip(get("/echo"), 5000ms);
  auto elapsed = Clock::now() - start;
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 504);
  CHECK(errorCode(r.body) == "UPSTREAM_CONNECT_TIMEOUT");
  CHECK(elapsed >= 250ms);
  CHECK(elapsed < 2000ms);
}

TEST_CASE("failures: read timeout -> 504 UPSTREAM_TIMEOUT") {
  Backend b;
  Gateway gw(oneBackendConfig(b.address(), "      read: 300ms"));
  Client c(gw.port());
  auto start = Clock::now();
  Response r = c.roundTrip(get("/delay/2000"));
  auto elapsed = Clock::now() - start;
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 504);
  CHECK(errorCode(r.body) == "UPSTREAM_TIMEOUT");
  CHECK(elapsed >= 250ms);
  CHECK(elapsed < 1500ms);
  expectServing(gw.port(), b);
}

TEST_CASE("failures: a route's read timeout overrides the upstream's") {
  Backend b;
  Gateway gw(subst(R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends:
      - ${B}
    timeouts:
      read: 5s
routes:
  - match: {prefix: /fast}
    upstream: main
    strip_prefix: /fast
    timeouts:
      read: 200ms
  - match: {prefix: /}
    upstream: main
)",
                   {{"B", b.address()}}));
  Client c(gw.port());
  Response r = c.roundTrip(get("/fast/delay/1500"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 504);
  CHECK(errorCode(r.body) == "UPSTREAM_TIMEOUT");
  r = Client(gw.port()).roundTrip(get("/delay/400"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
}

// The backend's head and the first half of the body reach the gateway before the close does, and
// the head goes to the client at once: the only honest end left is cutting the connection.
TEST_CASE("failures: backend dies mid-response -> the client's connection is cut") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  for (int round = 0; round < 3; ++round) {
    Client c(gw.port());
    Response r = c.roundTrip(get("/close-mid/200000"), 5000ms);
    INFO("round " << round << ": status " << r.status << ", " << r.body_bytes << " body bytes, "
                  << r.error);
    CHECK_FALSE(r.complete);
    CHECK(r.error == "eof");
    CHECK(r.status == 200);
    CHECK(r.body_bytes <= 100000);  // the half the backend sent, never more
    CHECK(r.closed);
    expectServing(gw.port(), b);
  }
}

TEST_CASE("failures: backend closes without answering -> 502 UPSTREAM_RESET") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip(get("/close-now"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 502);
  CHECK(errorCode(r.body) == "UPSTREAM_RESET");
  CHECK(b.requests().size() == 1);  // a fresh connection: not retried
  expectServing(gw.port(), b);
}

TEST_CASE("failures: a malformed upstream response -> 502, nothing of it reaches the client") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  for (const std::string path : {"/bad-framing", "/garbage"}) {
    INFO(path);
    Client c(gw.port());
    Response r = c.roundTrip(get(path));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 502);
    CHECK(errorCode(r.body) == "UPSTREAM_PROTOCOL_ERROR");
    CHECK(r.body.find("hello") == std::string::npos);
    expectServing(gw.port(), b);
  }
}

TEST_CASE("failures: the only backend process dies -> 502, then recovers when it is back") {
  auto b = std::make_unique<Backend>("first");
  uint16_t port = b->port();
  Gateway gw(simpleConfig({b.get()}));
  Client c(gw.port());
  Response r = c.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  b.reset();  // kills the process; the pooled connection is now dead too
  r = Client(gw.port()).roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 502);
  CHECK(errorCode(r.body) == "UPSTREAM_CONNECT_FAILED");
  CHECK(gw.process().running());

  b = std::make_unique<Backend>("second", port);
  bool recovered = waitFor(
      [&] {
        r = Client(gw.port()).roundTrip(get("/echo"));
        return r.complete && r.status == 200 && r.header("X-Backend-Id") == "second";
      },
      3000ms, 50ms);
  CHECK_MESSAGE(recovered, "the gateway never went back to the restarted backend");
}
