// Every kind of answer gatewayd makes itself, as docs/operations.md ("Error responses") promises
// it: the exact status and code, a JSON body, `Cache-Control: no-store` (a shared cache must never
// keep a gateway's error for other clients), and the connection handling — a malformed request
// ends the connection, a well-formed one the gateway did not serve keeps it.
#include <doctest.h>

#include <string>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// Routes for every answer: /api/ reaches the backend (504 after its read timeout), /dead/ an
// upstream that refuses connections (502), /down/ one that health checks have taken out (503),
// and one route per plugin that answers on its own.
std::string answersConfig(const Backend& b, uint16_t deadPort, uint16_t downPort) {
  return subst(
      R"(workers: 1
limits:
  request_line_bytes: 1KiB
  header_bytes: 4KiB
  header_count: 20
  body_bytes: 1KiB
  client_header_timeout: 400ms
  client_body_timeout: 400ms
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends: [${B}]
    timeouts: {read: 400ms}
  - name: dead
    backends: [127.0.0.1:${DEAD}]
  - name: down
    backends: [127.0.0.1:${DOWN}]
    health_checks:
      active: {path: /, interval: 100ms, timeout: 100ms, healthy_threshold: 1,
               unhealthy_threshold: 1}
routes:
  - match: {prefix: /api/}
    upstream: main
    strip_prefix: /api
  - match: {exact: /only-get, methods: [GET]}
    upstream: main
  - match: {prefix: /dead/}
    upstream: dead
  - match: {prefix: /down/}
    upstream: down
  - match: {prefix: /limited/}
    upstream: main
    plugins:
      - rate_limit: {limits: [{requests: 1, window: 1m}], key: [route]}
  - match: {prefix: /denied/}
    upstream: main
    plugins:
      - ip_filter: {deny: [127.0.0.0/8]}
  - match: {prefix: /cached/}
    upstream: main
    plugins:
      - cache: {}
  - match: {prefix: /validated/}
    upstream: main
    plugins:
      - schema_validation:
          schema: {type: object}
)",
      {{"B", b.address()}, {"DEAD", std::to_string(deadPort)}, {"DOWN", std::to_string(downPort)}});
}

struct Answer {
  std::string name;
  std::string bytes;  // everything the client sends
  int status;
  std::string code;
  bool closes;  // the connection ends after the answer (announced with Connection: close)
};

void expectAnswer(Backend& b, const Gateway& gw, const Answer& a) {
  INFO("case: " << a.name);
  b.reset();
  Client c(gw.port());
  REQUIRE(c.send(a.bytes));
  Response r = c.read(3000ms);
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == a.status);
  CHECK(errorCode(r.body) == a.code);
  CHECK(r.header("Content-Type").value_or("").find("application/json") == 0);
  CHECK(r.headerCount("Cache-Control") == 1);
  CHECK(r.header("Cache-Control") == "no-store");
  CHECK(r.header("X-Request-Id").has_value());
  CHECK(r.header("Connection") == (a.closes ? std::optional<std::string>("close") : std::nullopt));
  if (a.closes) {
    CHECK_MESSAGE(c.waitClosed(2000ms), "connection left open after a " << a.status);
  } else {
    Response next = c.roundTrip(get("/api/echo?next=1"));
    REQUIRE_MESSAGE(next.complete, "closed without Connection: close: " << next.error);
    CHECK(next.status == 200);
    CHECK(parseEcho(next.body).target == "/echo?next=1");
  }
}

}  // namespace

TEST_CASE(
    "local replies: exact status and code, Cache-Control: no-store, close only if malformed") {
  Backend b;
  const uint16_t deadPort = freePort();
  const uint16_t downPort = freePort();
  Gateway gw(answersConfig(b, deadPort, downPort));
  // The rate limit's one request is spent, and the health checks have seen /down/'s backend fail.
  REQUIRE(Client(gw.port()).roundTrip(get("/limited/x")).status == 200);
  REQUIRE(waitFor([&] { return Client(gw.port()).roundTrip(get("/down/x")).status == 503; }, 5000ms,
                  50ms));

  const std::vector<Answer> answers = {
      {"malformed header", "GET /api/echo HTTP/1.1\r\nHost: gw.test\r\nX-Bad : 1\r\n\r\n", 400,
       "BAD_REQUEST", true},
      {"missing Host", "GET /api/echo HTTP/1.1\r\nX-A: 1\r\n\r\n", 400, "MISSING_HOST", true},
      {"duplicate Host", "GET /api/echo HTTP/1.1\r\nHost: gw.test\r\nHost: evil.test\r\n\r\n", 400,
       "MISSING_HOST", true},
      {"encoded slash in the path", get("/api%2Fecho"), 400, "INVALID_PATH", true},
      {"no route", get("/elsewhere"), 404, "ROUTE_NOT_FOUND", false},
      {"method not allowed", request("DELETE", "/only-get"), 405, "METHOD_NOT_ALLOWED", false},
      {"stalled head", "GET /api/echo HTTP/1.1\r\nHost: gw.test\r\nX-Partial: ", 408,
       "REQUEST_TIMEOUT", true},
      {"stalled body", request("POST", "/api/echo", "Content-Length: 100\r\n") + "only ten b", 408,
       "REQUEST_TIMEOUT", true},
      {"declared body over the limit", request("POST", "/api/echo", "Content-Length: 2048\r\n"),
       413, "PAYLOAD_TOO_LARGE", true},
      {"request line over the limit", get("/api/" + std::string(2000, 'a')), 414, "URI_TOO_LONG",
       true},
      {"too many header fields",
       get("/api/echo",
           [] {
             std::string fields;
             for (int i = 0; i < 30; ++i) fields += "X-Filler-" + std::to_string(i) + ": v\r\n";
             return fields;
           }()),
       431, "REQUEST_HEADER_FIELDS_TOO_LARGE", true},
      {"Expect other than 100-continue", request("POST", "/api/echo", "Expect: 200-ok\r\n", "body"),
       417, "EXPECTATION_FAILED", true},
      {"CONNECT", "CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443\r\n\r\n", 501,
       "NOT_IMPLEMENTED", true},
      {"backend refuses connections", get("/dead/x"), 502, "UPSTREAM_CONNECT_FAILED", false},
      {"backend answers garbage", get("/api/garbage"), 502, "UPSTREAM_PROTOCOL_ERROR", false},
      {"backend closes without answering", get("/api/close-now"), 502, "UPSTREAM_RESET", false},
      {"no healthy backend", get("/down/x"), 503, "UPSTREAM_UNAVAILABLE", false},
      {"backend too slow", get("/api/delay/2000"), 504, "UPSTREAM_TIMEOUT", false},
      {"rate_limit", get("/limited/x"), 429, "RATE_LIMIT_EXCEEDED", false},
      {"ip_filter", get("/denied/x"), 403, "FORBIDDEN", false},
      {"cache: only-if-cached, nothing stored",
       get("/cached/x", "Cache-Control: only-if-cached\r\n"), 504, "NOT_CACHED", false},
      // Refused on its head, before its body was read: the unread body ends the connection.
      {"schema_validation: not JSON",
       request("POST", "/validated/x", "Content-Type: text/plain\r\n", "{}"), 415,
       "UNSUPPORTED_MEDIA_TYPE", true},
      {"schema_validation: invalid JSON",
       request("POST", "/validated/x", "Content-Type: application/json\r\n", "{"), 400,
       "INVALID_JSON", false},
  };
  for (const Answer& a : answers) expectAnswer(b, gw, a);
  CHECK(gw.process().running());
}

// An invalid path is a malformed request: nothing after it on the connection can be trusted, so
// a request pipelined behind it is neither answered nor forwarded.
TEST_CASE("local replies: INVALID_PATH closes the connection, pipelined requests unanswered") {
  Backend b;
  Gateway gw(apiConfig(b));
  for (const std::string target : {"/api%2Fecho", "/api/echo;jsessionid=1", "/\\api/echo", "*"}) {
    INFO("target " << target);
    b.reset();
    Client c(gw.port());
    REQUIRE(c.send(get(target) + get("/api/echo?pipelined=1")));
    Response r = c.read();
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 400);
    CHECK(errorCode(r.body) == "INVALID_PATH");
    CHECK(r.header("Connection") == "close");
    CHECK_MESSAGE(c.readRaw(500ms).empty(), "an answer to the pipelined request");
    CHECK(c.waitClosed(1000ms));
    CHECK(b.stats().bytes == 0);
  }
}
