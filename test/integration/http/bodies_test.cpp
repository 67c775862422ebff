// Bodies in both directions: Content-Length and chunked, Expect: 100-continue, and the responses
// that never carry a body (HEAD, 204, 304).
#include <doctest.h>

#include "test/support/harness.h"

using namespace gw::it;

TEST_CASE("bodies: Content-Length request body reaches the backend intact") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  std::string body = patternBody(100000);
  Response r = c.roundTrip(request("PUT", "/echo", {}, body));
  REQUIRE_MESSAGE(r.complete, r.error);
  Echo e = parseEcho(r.body);
  CHECK(e.method == "PUT");
  CHECK(e.body_bytes == body.size());
  CHECK(e.body == body);
}

TEST_CASE("bodies: chunked request body is forwarded with unambiguous framing") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  REQUIRE(c.send(request("POST", "/echo", "Transfer-Encoding: chunked\r\n") +
                 "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"));
  Response r = c.read();
  REQUIRE_MESSAGE(r.complete, r.error);
  Echo e = parseEcho(r.body);
  CHECK(e.body == "hello world");
  CHECK(e.body_bytes == 11);
  // Never both framings on the upstream request.
  CHECK_FALSE((e.header("Content-Length") && e.header("Transfer-Encoding")));
  // The connection is still usable: the chunked body was consumed exactly.
  r = c.roundTrip(get("/echo?after=1"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(parseEcho(r.body).target == "/echo?after=1");
}

TEST_CASE("bodies: chunked and Content-Length responses reach the client intact") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip(get("/chunked/300000?chunk=1000"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.body == patternBody(300000));
  r = c.roundTrip(get("/bytes/300000"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.header("Content-Length") == "300000");
  CHECK(r.body == patternBody(300000));
  r = c.roundTrip(get("/bytes/0"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.body.empty());
}

TEST_CASE("bodies: a close-delimited backend response is relayed completely") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip(get("/close-delimited/200000"));
  REQUIRE_MESSAGE(r.complete, r.error << " after " << r.body_bytes << " of 200000 body bytes"
                                      << ", Transfer-Encoding: "
                                      << r.header("Transfer-Encoding").value_or("-"));
  CHECK(r.status == 200);
  CHECK(r.body == patternBody(200000));
  // Framed for the client (chunked or close-delimited), never a wrong Content-Length.
  if (auto cl = r.header("Content-Length")) CHECK(*cl == "200000");
  // The gateway keeps serving on a fresh upstream connection.
  Client c2(gw.port());
  r = c2.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
}

TEST_CASE("bodies: Expect: 100-continue with a body over the limit gets 413, not 100") {
  Backend b;
  Gateway gw(simpleConfig({&b}, "limits:\n  body_bytes: 1KiB\n"));
  b.reset();
  Client c(gw.port());
  REQUIRE(c.send(request("POST", "/echo", "Expect: 100-continue\r\nContent-Length: 4096\r\n")));
  Response r = c.read(3000ms);
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 413);
  CHECK(errorCode(r.body) == "PAYLOAD_TOO_LARGE");
  CHECK(b.stats().bytes == 0);
}

TEST_CASE("bodies: Expect: 100-continue gets 100 Continue, then the response") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  REQUIRE(c.send(request("POST", "/echo", "Expect: 100-continue\r\nContent-Length: 7\r\n")));
  Response interim = c.read(3000ms);
  REQUIRE_MESSAGE(interim.complete, "no 100 Continue before the body was sent: " << interim.error);
  CHECK(interim.status == 100);
  REQUIRE(c.send("payload"));
  Response r = c.read();
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  Echo e = parseEcho(r.body);
  CHECK(e.body == "payload");
  CHECK_FALSE(e.header("Expect").has_value());  // the gateway handled the expectation itself
}

TEST_CASE("bodies: HEAD, 204 and 304 carry no body and keep the connection in sync") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  ReadOptions head;
  head.head = true;
  REQUIRE(c.send(request("HEAD", "/head-test")));
  Response r = c.read(head);
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.header("Content-Length") == "100");
  REQUIRE(c.send(request("HEAD", "/bytes/5000")));
  r = c.read(head);
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.header("Content-Length") == "5000");
  for (const char* path : {"/status/204", "/status/304"}) {
    r = c.roundTrip(get(path));
    INFO(std::string(path));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.body.empty());
    CHECK_FALSE(r.header("Transfer-Encoding").has_value());
  }
  // Had any of those leaked body bytes, this response would be misparsed.
  r = c.roundTrip(get("/echo?sync=1"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(parseEcho(r.body).target == "/echo?sync=1");
  CHECK(c.readRaw(100ms).empty());
}

TEST_CASE("bodies: an interim 1xx from the backend does not desynchronise the exchange") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  REQUIRE(c.send(get("/interim")));
  Response r = c.read();
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 103);  // relayed (RFC 9110 §15.2), then the final answer
  r = c.read();
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.body == "final\n");
  r = c.roundTrip(get("/echo?next=1"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(parseEcho(r.body).target == "/echo?next=1");
}
