// What a broken or hostile backend sends cannot desynchronise the client's connection, corrupt
// a body or put raw backend bytes before the gateway's own head: responses are framed by what
// the gateway parsed (RFC 9112 §6.3), 1xx are relayed cleanly or refused, and bytes after a
// complete response end that upstream connection. Each case uses test_backend's /raw script,
// which sends exactly the bytes the test chose.
#include <doctest.h>

#include <string>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// The client connection is still in step after the answer under test: the next answer is the
// next request's own.
void expectInStep(Client& c) {
  Response next = c.roundTrip(get("/echo?next=1"));
  REQUIRE_MESSAGE(next.complete, next.error);
  CHECK(next.status == 200);
  CHECK(parseEcho(next.body).target == "/echo?next=1");
}

void expectRefused(Backend& b, Gateway& gw, const std::string& answer) {
  Client c(gw.port());
  Response r = c.roundTrip(get(rawResponseTarget(answer)));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 502);
  CHECK(errorCode(r.body) == "UPSTREAM_PROTOCOL_ERROR");
  CHECK_FALSE(r.header("Set-Cookie").has_value());
  CHECK(r.body.find("HTTP/1.1") == std::string::npos);
  expectInStep(c);
  CHECK(b.stats().parse_errors == 0);
}

}  // namespace

TEST_CASE("upstream framing: 204 and 304 end at their head whatever their fields say") {
  Backend b;
  Gateway gw(simpleConfig({&b}));

  SUBCASE("a 204 with Content-Length has no body and no Content-Length") {
    Client c(gw.port());
    Response r = c.roundTrip(
        get(rawResponseTarget("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n")),
        2000ms);
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 204);
    CHECK_FALSE(r.header("Content-Length").has_value());
    CHECK(r.header("X-A") == "1");
    expectInStep(c);
  }
  SUBCASE("a request pipelined behind a 204 with Content-Length is answered and applied") {
    Client c(gw.port());
    REQUIRE(c.send(get(rawResponseTarget("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n")) +
                   request("DELETE", "/echo?queued=1")));
    Response first = c.read(2000ms);
    REQUIRE_MESSAGE(first.complete, first.error);
    CHECK(first.status == 204);
    Response second = c.read(2000ms);
    REQUIRE_MESSAGE(second.complete, second.error);
    CHECK(second.status == 200);
    CHECK(parseEcho(second.body).method == "DELETE");
  }
  for (const char* status : {"204 No Content", "304 Not Modified"}) {
    SUBCASE((std::string("bytes after a ") + status + " never reach the client").c_str()) {
      const std::string smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled";
      Client c(gw.port());
      Response r = c.roundTrip(
          get(rawResponseTarget(std::string("HTTP/1.1 ") + status + "\r\nContent-Length: " +
                                std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled)),
          2000ms);
      REQUIRE_MESSAGE(r.complete, r.error);
      CHECK(r.body.empty());
      const uint64_t connections = b.stats().connections;
      expectInStep(c);
      // The upstream connection that sent the extra bytes was not reused.
      CHECK(b.stats().connections == connections + 1);
    }
  }
}

TEST_CASE("upstream framing: bytes past Content-Length do not corrupt the body") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  const std::string body = patternBody(1000);
  const std::string answer =
      "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + body + std::string(300, 'X') + "\r\n\r\n";
  for (int attempt = 0; attempt < 3; ++attempt) {
    Client c(gw.port());
    Response r = c.roundTrip(get(rawResponseTarget(answer)));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    CHECK(r.body.size() == body.size());
    CHECK(r.body == body);
    expectInStep(c);
  }
}

TEST_CASE("upstream framing: 1xx are relayed to HTTP/1.1 clients, never to HTTP/1.0 ones") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  const std::string answer =
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nConnection: x-hop\r\n"
      "X-Hop: gone\r\n\r\n"
      "HTTP/1.1 102 Processing\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfinal\n";

  SUBCASE("HTTP/1.1") {
    Client c(gw.port());
    REQUIRE(c.send(get(rawResponseTarget(answer))));
    Response hints = c.read();
    REQUIRE_MESSAGE(hints.complete, hints.error);
    CHECK(hints.status == 103);
    CHECK(hints.header("Link") == "</style.css>; rel=preload");
    CHECK_FALSE(hints.header("X-Hop").has_value());
    Response processing = c.read();
    REQUIRE_MESSAGE(processing.complete, processing.error);
    CHECK(processing.status == 102);
    Response final = c.read();
    REQUIRE_MESSAGE(final.complete, final.error);
    CHECK(final.status == 200);
    CHECK(final.body == "final\n");
    expectInStep(c);
  }
  SUBCASE("HTTP/1.0") {
    Client c(gw.port());
    REQUIRE(c.send("GET " + rawResponseTarget(answer) +
                   " HTTP/1.0\r\nHost: gw.test\r\nConnection: keep-alive\r\n\r\n"));
    Response r = c.read();
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    CHECK(r.body == "final\n");
  }
}

TEST_CASE("upstream framing: answers that would put raw backend bytes first are a clean 502") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  const std::string injected =
      "HTTP/1.1 200 OK\r\nSet-Cookie: session=attacker\r\nContent-Length: 0\r\n\r\n";
  SUBCASE("a 1xx with a Content-Length body") {
    expectRefused(b, gw,
                  "HTTP/1.1 103 Early Hints\r\nContent-Length: " + std::to_string(injected.size()) +
                      "\r\n\r\n" + injected + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  }
  SUBCASE("a 1xx with a chunked body") {
    expectRefused(
        b, gw,
        "HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  }
  SUBCASE("a status below 100") {
    expectRefused(b, gw,
                  "HTTP/1.1 099 Odd\r\nContent-Length: " + std::to_string(injected.size()) +
                      "\r\n\r\n" + injected);
  }
  SUBCASE("a status below 100 without a body") {
    // Not a 1xx either: nothing may treat it as an interim answer and relay it.
    expectRefused(b, gw, "HTTP/1.1 099 Odd\r\n\r\n" + injected);
  }
  SUBCASE("a 101 nobody asked for") {
    expectRefused(
        b, gw,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: upgrade\r\n\r\n" +
            injected);
  }
  SUBCASE("endless 1xx") {
    std::string many;
    for (int i = 0; i < 40; ++i) many += "HTTP/1.1 102 Processing\r\n\r\n";
    Client c(gw.port());
    REQUIRE(c.send(get(rawResponseTarget(many + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))));
    Response r = c.read();
    while (r.complete && r.status == 102) r = c.read();
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 502);
    CHECK(errorCode(r.body) == "UPSTREAM_PROTOCOL_ERROR");
  }
}

TEST_CASE("upstream framing: a framing error in the read that carried the head is a 502") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip(get(
      rawResponseTarget("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n")));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 502);
  CHECK(errorCode(r.body) == "UPSTREAM_PROTOCOL_ERROR");
  expectInStep(c);
}
