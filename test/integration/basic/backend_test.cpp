// Self-check of the test tier itself (no gatewayd): the harness client against test_backend, so a
// failure elsewhere points at the proxy, not at the tools.
#include <doctest.h>

#include "test/support/harness.h"

using namespace gw::it;

TEST_CASE("harness: test_backend answers echo, sized, chunked and pipelined requests") {
  Backend b("self");
  Client c(b.port());

  Response r = c.roundTrip(request("POST", "/echo?q=1", "X-Thing: one\r\n", "hello"));
  REQUIRE(r.complete);
  CHECK(r.status == 200);
  CHECK(r.header("X-Backend-Id") == "self");
  Echo e = parseEcho(r.body);
  REQUIRE(e.valid);
  CHECK(e.method == "POST");
  CHECK(e.target == "/echo?q=1");
  CHECK(e.body == "hello");
  CHECK(e.header("x-thing") == "one");
  CHECK(e.connection_requests == 1);

  // Pipelined: sized, chunked, HEAD and a bodiless status, answered in order on one connection.
  REQUIRE(c.send(get("/bytes/1000") + get("/chunked/1000?chunk=7") + request("HEAD", "/head-test") +
                 get("/status/204") + get("/echo")));
  Response sized = c.read();
  REQUIRE(sized.complete);
  CHECK(sized.body.size() == 1000);
  CHECK(sized.body[999] == patternByte(999));
  Response chunked = c.read();
  REQUIRE(chunked.complete);
  CHECK(chunked.header("Transfer-Encoding") == "chunked");
  CHECK(chunked.body == sized.body);
  ReadOptions head;
  head.head = true;
  Response h = c.read(head);
  REQUIRE(h.complete);
  CHECK(h.header("Content-Length") == "100");
  CHECK(h.body.empty());
  Response nc = c.read();
  REQUIRE(nc.complete);
  CHECK(nc.status == 204);
  Response last = c.read();
  REQUIRE(last.complete);
  CHECK(parseEcho(last.body).connection_requests == 6);

  BackendStats s = b.stats();
  CHECK(s.connections == 1);
  CHECK(s.requests == 6);
  CHECK(s.parse_errors == 0);
  CHECK(b.requests().size() == 6);
  b.reset();
  CHECK(b.stats().requests == 0);
}

TEST_CASE("harness: close-mid cuts the body and close-now sends nothing") {
  Backend b;
  {
    Client c(b.port());
    Response r = c.roundTrip(get("/close-mid/1000"));
    CHECK_FALSE(r.complete);
    CHECK(r.closed);
    CHECK(r.body_bytes == 500);
  }
  {
    Client c(b.port());
    Response r = c.roundTrip(get("/close-now"));
    CHECK_FALSE(r.complete);
    CHECK(r.closed);
    CHECK(r.status == 0);
  }
}

TEST_CASE("harness: delay answers after the delay, not before") {
  Backend b;
  Client c(b.port());
  auto start = std::chrono::steady_clock::now();
  Response r = c.roundTrip(get("/delay/200"));
  auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(r.complete);
  CHECK(elapsed >= 190ms);
  CHECK(elapsed < 2000ms);
}
