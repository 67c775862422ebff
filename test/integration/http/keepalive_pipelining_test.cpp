// Downstream connection handling: keep-alive, pipelining in order, Connection: close, HTTP/1.0.
#include <doctest.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

TEST_CASE("keep-alive: many requests on one client connection") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  for (int i = 0; i < 20; ++i) {
    Response r = c.roundTrip(get("/echo?n=" + std::to_string(i)));
    INFO("request " << i << ": " << r.error);
    REQUIRE(r.complete);
    CHECK(r.status == 200);
    CHECK_FALSE(r.closed);
    CHECK(parseEcho(r.body).target == "/echo?n=" + std::to_string(i));
  }
}

TEST_CASE("pipelining: requests sent in one write are answered in order") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  // The slow one goes first: a proxy answering out of order would return /echo?n=2 first.
  REQUIRE(c.send(get("/delay/300") + get("/echo?n=2") + get("/bytes/5000") +
                 request("HEAD", "/head-test") + get("/chunked/3000?chunk=100") +
                 request("POST", "/echo?n=6", {}, "posted")));
  Response r1 = c.read();
  REQUIRE_MESSAGE(r1.complete, r1.error);
  CHECK(r1.body == "delayed /delay/300\n");
  Response r2 = c.read();
  REQUIRE_MESSAGE(r2.complete, r2.error);
  CHECK(parseEcho(r2.body).target == "/echo?n=2");
  Response r3 = c.read();
  REQUIRE_MESSAGE(r3.complete, r3.error);
  CHECK(r3.body.size() == 5000);
  ReadOptions head;
  head.head = true;
  Response r4 = c.read(head);
  REQUIRE_MESSAGE(r4.complete, r4.error);
  CHECK(r4.status == 200);
  CHECK(r4.header("Content-Length") == "100");
  Response r5 = c.read();
  REQUIRE_MESSAGE(r5.complete, r5.error);
  CHECK(r5.body.size() == 3000);
  CHECK(r5.body.substr(0, 26) == "abcdefghijklmnopqrstuvwxyz");
  Response r6 = c.read();
  REQUIRE_MESSAGE(r6.complete, r6.error);
  Echo e6 = parseEcho(r6.body);
  CHECK(e6.target == "/echo?n=6");
  CHECK(e6.body == "posted");
  // Nothing extra after the last response (e.g. a HEAD body sent by mistake).
  CHECK(c.readRaw(200ms).empty());
}

TEST_CASE("pipelining: a burst of 50 requests in one write") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  std::string burst;
  for (int i = 0; i < 50; ++i) burst += get("/echo?i=" + std::to_string(i));
  REQUIRE(c.send(burst));
  for (int i = 0; i < 50; ++i) {
    Response r = c.read();
    INFO("response " << i << ": " << r.error);
    REQUIRE(r.complete);
    CHECK(parseEcho(r.body).target == "/echo?i=" + std::to_string(i));
  }
}

TEST_CASE("Connection: close from the client closes after the response") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip(get("/echo", "Connection: close\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(c.waitClosed(2000ms));
}

TEST_CASE("HTTP/1.0 client: answered, then the connection is closed") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  REQUIRE(c.send("GET /echo?v=10 HTTP/1.0\r\n\r\n"));
  Response r = c.read();
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.http_major == 1);
  CHECK(parseEcho(r.body).target == "/echo?v=10");
  CHECK(c.waitClosed(2000ms));
}

TEST_CASE(
    "HTTP/1.0 keep-alive client: gateway-made answers say the connection is kept, and it is") {
  Backend b;
  Gateway gw(subst(R"yaml(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends: [${B}]
routes:
  - match: {prefix: /echo}
    upstream: main
)yaml",
                   {{"B", b.address()}}));
  Client c(gw.port());
  // A path no route takes: the gateway's own 404, then a proxied answer on the same connection.
  for (const char* target : {"/elsewhere", "/echo?v=10"}) {
    CAPTURE(target);
    REQUIRE(c.send(std::string("GET ") + target +
                   " HTTP/1.0\r\nHost: gw.test\r\nConnection: keep-alive\r\n\r\n"));
    Response r = c.read();
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.header("Connection") == "keep-alive");
    CHECK_FALSE(r.closed);
  }
}

TEST_CASE("HTTP/1.0 client: a chunked backend response is not sent chunked to a 1.0 client") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  REQUIRE(c.send("GET /chunked/1000?chunk=10 HTTP/1.0\r\nHost: gw.test\r\n\r\n"));
  Response r = c.read();
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK_FALSE(r.header("Transfer-Encoding").has_value());
  CHECK(r.body.size() == 1000);
}

TEST_CASE("pipelining: nothing after a Connection: close request is answered or forwarded") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  b.reset();
  Client c(gw.port());
  REQUIRE(c.send(get("/echo?first", "Connection: close\r\n") + get("/echo?after-close")));
  Response r = c.read();
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(parseEcho(r.body).target == "/echo?first");
  CHECK(c.readRaw(1000ms).empty());  // no second response, just the close
  CHECK(c.waitClosed(0ms));
  std::vector<Echo> seen = b.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].target == "/echo?first");
}

TEST_CASE("absolute-form request target is accepted and forwarded in origin-form") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip("GET http://gw.test/echo?abs=1 HTTP/1.1\r\nHost: gw.test\r\n\r\n");
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  Echo e = parseEcho(r.body);
  CHECK(e.target == "/echo?abs=1");
  CHECK(e.header("Host") == "gw.test");
}

// A client that pipelines and never reads must not make the gateway queue every answer: the next
// request waits while the answers already queued are above the high watermark, so memory stays
// bounded per connection (it grew by the sum of all answers, 2-4 MB per connection, before), and
// every answer still arrives, in order, once the client reads.
TEST_CASE("pipelining: a client that never reads does not grow the gateway's memory") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  constexpr int kClients = 4, kRequests = 3000;
  constexpr std::size_t kAnswerBytes = 8192;
  std::string burst;
  for (int i = 0; i < kRequests; ++i) burst += get("/bytes/" + std::to_string(kAnswerBytes));
  const long before = rssKiB(gw.process().pid());
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>(gw.port(), 3000ms, 16 * 1024));
    clients.back()->send(burst, 500ms);  // stops when the gateway stops reading: expected
  }
  // Wait until the gateway stops answering (the backend count settles), bounded.
  uint64_t served = 0;
  waitFor(
      [&] {
        const uint64_t now = b.stats().requests;
        const bool settled = now == served && now > 0;
        served = now;
        return settled;
      },
      5000ms, 300ms);
  const long grown = rssKiB(gw.process().pid()) - before;
  INFO("backend served " << served << " of " << kClients * kRequests << ", gateway RSS +" << grown
                         << " KiB");
  CHECK(served < kClients * kRequests / 4);
  // Queuing every answer grew it by more than 60 MiB; the bound leaves room for AddressSanitizer's
  // quarantine of freed blocks (9 MiB in the sanitized pass).
  CHECK(grown < 16 * 1024);
  // Reading resumes the pipeline: every answer arrives whole and in order.
  for (auto& c : clients) {
    for (int i = 0; i < 200; ++i) {
      Response r = c->read();
      REQUIRE_MESSAGE(r.complete, "answer " << i << ": " << r.error);
      REQUIRE(r.body_bytes == kAnswerBytes);
    }
  }
}

namespace {

// Reads one answer per expected status, in order.
void expectStatuses(Client& c, std::initializer_list<int> statuses) {
  for (int expected : statuses) {
    Response r = c.read(3000ms);
    REQUIRE_MESSAGE(r.complete, "expected " << expected << ": " << r.error);
    CHECK(r.status == expected);
  }
}

// A field that makes a head 20 KiB: two of them fill a client connection's input buffer.
const std::string kPadding = "X-Padding: " + std::string(20 * 1024, 'p') + "\r\n";

}  // namespace

// Answers the gateway writes itself (no route, a plugin's refusal) to pipelined requests: each
// request gets its own, at once, not one per later read from the client.
TEST_CASE("pipelining: requests the gateway answers itself are all answered") {
  Backend b;
  Gateway gw(apiConfig(
      b, 1, {},
      "  - name: limited\n    match: {prefix: /limited/}\n    upstream: main\n"
      "    plugins:\n      - rate_limit: {limits: [{requests: 1, window: 24h}], key: [route]}\n"));
  Client c(gw.port());
  REQUIRE(c.send(get("/nowhere/1") + get("/limited/a") + get("/limited/b") + get("/nowhere/2") +
                 get("/api/echo?last=1")));
  expectStatuses(c, {404, 200, 429, 404, 200});
  // Large heads: the input buffer fills and reading pauses until an exchange is done, also
  // when the gateway answered it itself.
  Client refused(gw.port());
  REQUIRE(refused.send(get("/limited/c", kPadding) + get("/limited/d", kPadding) +
                       get("/nowhere/3", kPadding) + get("/limited/e", kPadding)));
  expectStatuses(refused, {429, 429, 404, 429});
}

// A request a plugin holds (a coalesced cache miss waiting for another client's fetch) while the
// client pipelines more than the input buffer takes: reading pauses, and resumes when the plugin
// answers, though no upstream exchange ends on this connection.
TEST_CASE("pipelining: reading resumes after a request a plugin held and answered itself") {
  Backend b;
  Gateway gw(apiConfig(b, 1, {},
                       "  - name: cached\n    match: {prefix: /origin/}\n    upstream: main\n"
                       "    plugins:\n      - cache: {default_ttl: 60s}\n"));
  const std::string slow = "/origin/held?delay=400";
  Client leader(gw.port());
  REQUIRE(leader.send(get(slow)));
  REQUIRE(waitFor([&] { return b.requests().size() == 1; }, 2000ms));
  Client waiter(gw.port());
  REQUIRE(waiter.send(get(slow) + get("/nowhere/1", kPadding) + get("/nowhere/2", kPadding) +
                      get("/nowhere/3", kPadding) + get("/api/echo?last=1", kPadding)));
  expectStatuses(leader, {200});
  expectStatuses(waiter, {200, 404, 404, 404, 200});
  CHECK(b.requests().size() == 2);  // the origin once, then /echo
}
