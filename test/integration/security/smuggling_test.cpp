// Request smuggling and malformed input: each case must get a JSON 4xx, the connection must be
// closed, and the backend must receive nothing of it (checked against the backend's own counters
// and request log, not the gateway's word).
#include <doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

constexpr const char* kLimits = R"(limits:
  request_line_bytes: 1KiB
  header_bytes: 4KiB
  header_count: 20
  body_bytes: 1KiB
)";

struct Case {
  std::string name;
  std::string bytes;
  int status;
  std::string code;            // the error.code
  bool headers_valid = false;  // the head was fine, the body was not: the backend may see
                               // the start of the request, never a complete one
};

void expectRejected(Backend& b, Gateway& gw, const Case& c) {
  INFO("case: " << c.name);
  b.reset();
  Client client(gw.port());
  client.send(c.bytes);
  Response r = client.read(2000ms);
  INFO("client saw: status " << r.status << ", body '" << r.body << "', error '" << r.error << "'");
  CHECK_MESSAGE(r.complete, "no complete error response");
  if (r.complete) {
    CHECK(r.status == c.status);
    CHECK(errorCode(r.body) == c.code);
    CHECK(r.header("Content-Type").value_or("").find("application/json") == 0);
    CHECK(r.header("Cache-Control") == "no-store");
  }
  CHECK_MESSAGE(client.waitClosed(1000ms), "connection left open after a " << r.status);

  BackendStats s = b.stats();
  std::vector<Echo> seen = b.requests();
  CHECK(s.requests == 0);
  CHECK(seen.empty());
  for (const Echo& e : seen) INFO("backend received " << e.method << " " << e.target);
  CHECK(s.parse_errors == 0);
  if (!c.headers_valid) CHECK_MESSAGE(s.bytes == 0, "backend received " << s.bytes << " bytes");
  // A crash shows up as a cut connection; give the exit a moment to be seen.
  auto exit_code = gw.process().waitExit(r.complete ? 0ms : 300ms);
  CHECK_MESSAGE(!exit_code, "gatewayd died with " << exit_code.value_or(0) << "\n" << gw.log());
}

std::string headerBlock(int count, std::size_t value_size) {
  std::string h;
  for (int i = 0; i < count; ++i)
    h += "X-Filler-" + std::to_string(i) + ": " + std::string(value_size, 'v') + "\r\n";
  return h;
}

}  // namespace

TEST_CASE("smuggling: malformed and ambiguous requests are refused before any upstream") {
  Backend b("main");
  Gateway gw(simpleConfig({&b}, kLimits));
  const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n";
  const std::string bad = "BAD_REQUEST";

  const std::vector<Case> cases = {
      {"Content-Length with Transfer-Encoding",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 4\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
           smuggled,
       400, bad},
      {"Transfer-Encoding then Content-Length",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n"
       "Content-Length: 40\r\n\r\n0\r\n\r\n" +
           smuggled,
       400, bad},
      {"two different Content-Length",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
       "hello!",
       400, bad},
      {"Content-Length list",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5, 6\r\n\r\nhello!", 400, bad},
      {"Transfer-Encoding not ending in chunked",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
       "5\r\nhello\r\n0\r\n\r\n",
       400, bad},
      {"obs-fold", "GET /echo HTTP/1.1\r\nHost: gw.test\r\nX-Folded: a\r\n b\r\n\r\n", 400, bad},
      // Found by test/fuzz/request_fuzz.cpp: a continuation of blanks left "a\r" as the value.
      {"obs-fold with a blank continuation line",
       "GET /echo HTTP/1.1\r\nHost: gw.test\r\nX-Folded: a\r\n \r\nX-After: 1\r\n\r\n", 400, bad},
      {"obs-fold with a tab continuation line",
       "GET /echo HTTP/1.1\r\nHost: gw.test\r\nX-Folded: a\r\n\t\r\n\r\n", 400, bad},
      {"bare CR in a header value", "GET /echo HTTP/1.1\r\nHost: gw.test\r\nX-Bad: a\rb\r\n\r\n",
       400, bad},
      {"bare CR as line end", "GET /echo HTTP/1.1\r\nHost: gw.test\rX-Bad: 1\r\n\r\n", 400, bad},
      {"NUL in a header value",
       std::string("GET /echo HTTP/1.1\r\nHost: gw.test\r\nX-Bad: a") + '\0' + "b\r\n\r\n", 400,
       bad},
      {"control byte in a header value",
       "GET /echo HTTP/1.1\r\nHost: gw.test\r\nX-Bad: a\x01"
       "b\r\n\r\n",
       400, bad},
      {"space before the colon", "GET /echo HTTP/1.1\r\nHost: gw.test\r\nX-Bad : 1\r\n\r\n", 400,
       bad},
      {"missing Host on HTTP/1.1", "GET /echo HTTP/1.1\r\nX-A: 1\r\n\r\n", 400, "MISSING_HOST"},
      {"duplicate Host", "GET /echo HTTP/1.1\r\nHost: gw.test\r\nHost: evil.test\r\n\r\n", 400,
       "MISSING_HOST"},
      {"oversize request line", "GET /" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
       414, "URI_TOO_LONG"},
      {"oversize header section", get("/echo", headerBlock(5, 1000)), 431,
       "REQUEST_HEADER_FIELDS_TOO_LARGE"},
      {"too many headers", get("/echo", headerBlock(30, 4)), 431,
       "REQUEST_HEADER_FIELDS_TOO_LARGE"},
      {"Content-Length over the body limit",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 2048\r\n\r\n" +
           std::string(2048, 'x'),
       413, "PAYLOAD_TOO_LARGE"},
      {"empty header field name", "GET /echo HTTP/1.1\r\nHost: gw.test\r\n: value\r\n\r\n", 400,
       bad},
      {"HTTP/0.9 request line (no version)", "GET /echo\r\n", 400, bad},
      {"HTTP/0.9 request line and an empty line", "GET /echo\r\n\r\n", 400, bad},
      {"HTTP/0.9 request line, then a request", "GET /echo\r\n" + smuggled, 400, bad},
      {"invalid HTTP version", "GET /echo HTTP/1.7\r\nHost: gw.test\r\n\r\n", 400, bad},
  };
  // One subcase each (a fresh gateway per case), so a crash in one case hides no other.
  for (const Case& c : cases) {
    SUBCASE(c.name.c_str()) { expectRejected(b, gw, c); }
  }

  // The body is where it goes wrong: the head may already be on its way upstream, but the
  // backend must never see a complete request, nor the request hidden after the bad chunk.
  const std::vector<Case> body_cases = {
      {"invalid chunk size",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
       "zz\r\nhello\r\n0\r\n\r\n" +
           smuggled,
       400, bad, true},
      {"chunk size overflow",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
       "fffffffffffffffff1\r\nhello\r\n0\r\n\r\n" +
           smuggled,
       400, bad, true},
      {"chunk extension over the limit",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;ext=" +
           std::string(64 * 1024, 'e') + "\r\nhello\r\n0\r\n\r\n",
       400, bad, true},
      {"many chunk extensions over the limit",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5" +
           [] {
             std::string many;
             for (int i = 0; i < 4000; ++i) many += ";e" + std::to_string(i) + "=v";
             return many;
           }() +
           "\r\nhello\r\n0\r\n\r\n",
       400, bad, true},
      {"chunked body over the body limit",
       "POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
       "800\r\n" +
           std::string(2048, 'x') + "\r\n0\r\n\r\n",
       413, "PAYLOAD_TOO_LARGE", true},
  };
  for (const Case& c : body_cases) {
    SUBCASE(c.name.c_str()) { expectRejected(b, gw, c); }
  }

  // The gateway is still healthy and the backend gets well-formed traffic.
  REQUIRE_MESSAGE(gw.process().running(), "gatewayd is gone");
  Client c(gw.port());
  Response r = c.roundTrip(get("/echo?still=ok"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
}

TEST_CASE("smuggling: routing uses the normalised path") {
  Backend admin("admin"), pub("public");
  Gateway gw(subst(R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: admin
    backends:
      - ${ADMIN}
  - name: public
    backends:
      - ${PUBLIC}
routes:
  - match: {prefix: /admin}
    upstream: admin
  - match: {prefix: /}
    upstream: public
)",
                   {{"ADMIN", admin.address()}, {"PUBLIC", pub.address()}}));

  struct Expect {
    std::string sent;
    std::string backend;
    std::string target;
  };
  for (const Expect& x : {
           Expect{"/admin/../public", "public", "/public"},
           Expect{"/admin/./../public/x", "public", "/public/x"},
           Expect{"/public/../admin/secret", "admin", "/admin/secret"},
           Expect{"/public/%2e%2e/admin/secret", "admin", "/admin/secret"},
           Expect{"/public/%2E%2E/admin/secret", "admin", "/admin/secret"},
           Expect{"/public/.%2e/admin/secret", "admin", "/admin/secret"},
           Expect{"/%61dmin/secret", "admin", "/admin/secret"},
       }) {
    INFO("sent " << x.sent);
    Client c(gw.port());
    Response r = c.roundTrip(get(x.sent));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);  // test_backend echoes any path it has no script for
    CHECK(r.header("X-Backend-Id") == x.backend);
    Backend& which = x.backend == "admin" ? admin : pub;
    std::vector<Echo> seen = which.requests();
    REQUIRE(!seen.empty());
    CHECK(seen.back().target == x.target);
    admin.reset();
    pub.reset();
  }
}

// Finding 0 of the hardening review: a Connection header naming Content-Length used to strip it,
// and the body went upstream unframed, to be read by the backend as a second request that no
// route, rule or plugin had seen. Framing is the gateway's: whatever the client's Connection
// header lists, the backend gets exactly one request carrying exactly the body the gateway read.
namespace {
// Routes /api/ (no plugins: fields copied straight from the parser) and /plugged/ (a plugin: fields
// go through the editable list), both forwarding to `b` without their prefix.
std::string bothPathsConfig(const Backend& b) {
  return apiConfig(b, 1, {},
                   "  - name: plugged\n    match: {prefix: /plugged/}\n    upstream: main\n"
                   "    strip_prefix: /plugged\n    plugins:\n      - request_id\n");
}
}  // namespace

TEST_CASE("smuggling: a Connection header cannot remove the request's framing") {
  Backend b("main");
  Gateway gw(bothPathsConfig(b));
  const std::string hidden = "GET /smuggled-admin HTTP/1.1\r\nHost: internal\r\n\r\n";
  for (const char* prefix : {"/api", "/plugged"}) {
    for (const char* connection :
         {"Content-Length", "content-length", "CONTENT-LENGTH", "close, content-length",
          "keep-alive,CONTENT-LENGTH", "Host", "content-length, host, transfer-encoding",
          "x-a, Content-Length , x-b"}) {
      INFO("route " << std::string(prefix) << ", Connection: " << std::string(connection));
      b.reset();
      Client c(gw.port());
      Response r = c.roundTrip(request("POST", std::string(prefix) + "/echo",
                                       std::string("Connection: ") + connection + "\r\n", hidden));
      REQUIRE_MESSAGE(r.complete, r.error);
      CHECK(r.status == 200);
      std::vector<Echo> seen = b.requests();
      REQUIRE(seen.size() == 1);
      CHECK(seen[0].method == "POST");
      CHECK(seen[0].target == "/echo");
      CHECK(seen[0].body_bytes == hidden.size());
      CHECK(seen[0].header("Content-Length") == std::to_string(hidden.size()));
      CHECK(seen[0].header("Host") == "gw.test");
      Echo echo = parseEcho(r.body);
      CHECK(echo.body == hidden);
      CHECK(b.stats().parse_errors == 0);
    }
  }
}

// The same for responses: a backend's Connection header cannot strip the length its body is
// framed with, so the client never reads body bytes as the next response.
TEST_CASE("smuggling: a backend's Connection header cannot remove the response's framing") {
  Backend b("main");
  Gateway gw(bothPathsConfig(b));
  const std::string body = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad";
  for (const char* prefix : {"/api", "/plugged"}) {
    for (const char* connection :
         {"Content-Length", "close, content-length", "TRANSFER-ENCODING"}) {
      INFO("route " << std::string(prefix) << ", Connection: " << std::string(connection));
      const std::string answer = std::string("HTTP/1.1 200 OK\r\nConnection: ") + connection +
                                 "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                                 body;
      Client c(gw.port());
      Response r = c.roundTrip(get(prefix + rawResponseTarget(answer)));
      REQUIRE_MESSAGE(r.complete, r.error);
      CHECK(r.status == 200);
      CHECK(r.body == body);
      CHECK(r.header("Content-Length") == std::to_string(body.size()));
      // The connection is still in step: the next answer is the next request's.
      Response next = c.roundTrip(get(std::string(prefix) + "/echo?next=1"));
      REQUIRE_MESSAGE(next.complete, next.error);
      CHECK(next.status == 200);
      CHECK(parseEcho(next.body).target == "/echo?next=1");
    }
  }
}

// Found by test/fuzz/request_fuzz.cpp: a Transfer-Encoding whose last coding is not chunked was
// taken for a request without a body, so a plugin could answer it (keeping the connection)
// before the parser refused the framing: two answers to one request, the second one read by the
// client as the answer to its next request.
TEST_CASE("smuggling: a Transfer-Encoding not ending in chunked gets one answer, from no plugin") {
  Backend b("main");
  Gateway gw(apiConfig(b, 1, {},
                       "  - name: judged\n    match: {prefix: /judged/}\n    upstream: main\n"
                       "    plugins:\n      - schema_validation:\n          schema: {type: object}\n"));
  for (const char* target : {"/api/echo", "/judged/echo"}) {
    for (const char* coding : {"gzip", "chunked, gzip", "%2eunked"}) {
      INFO(std::string(target) << ", Transfer-Encoding: " << std::string(coding));
      b.reset();
      Client c(gw.port());
      // The head alone: what the gateway does with it happens before any body byte arrives.
      c.send("POST " + std::string(target) +
             " HTTP/1.1\r\nHost: gw.test\r\nContent-Type: text/plain\r\nTransfer-Encoding: " +
             coding + "\r\n\r\n");
      Response r = c.read(2000ms);
      REQUIRE_MESSAGE(r.complete, r.error);
      CHECK(r.status == 400);
      CHECK(errorCode(r.body) == "BAD_REQUEST");
      CHECK(r.header("Connection").value_or("") == "close");
      CHECK_MESSAGE(c.readRaw(2000ms).empty(), "more than one answer to one request");
      CHECK(b.stats().requests == 0);
    }
  }
}
