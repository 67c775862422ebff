// Answers gatewayd writes itself before any route took the request (malformed heads, timeouts,
// unknown routes) get what every other answer gets: the global plugins' response phase (security
// headers), an id of their own, and an honest method in the log and the metrics.
#include <doctest.h>
#include <rapidjson/document.h>

#include <set>
#include <string>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

std::string requestIdOf(const Response& r) {
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("error")) return {};
  return d["error"]["request_id"].GetString();
}

}  // namespace

TEST_CASE("gateway answers: the global plugins' headers are on answers no route took") {
  Backend b;
  Gateway gw(apiConfig(b, 1,
                       "plugins:\n  - security_headers\n"
                       "limits:\n  request_line_bytes: 1KiB\n  header_count: 20\n"
                       "  client_header_timeout: 300ms\n  body_bytes: 1KiB\n"));
  struct Case {
    std::string name;
    std::string bytes;
    int status;
    std::string code;
  };
  std::string manyFields;
  for (int i = 0; i < 30; ++i) manyFields += "X-F" + std::to_string(i) + ": v\r\n";
  const std::vector<Case> cases = {
      {"malformed head", "GET /api/echo HTTP/1.1\r\nHost: gw.test\r\nBad Field: x\r\n\r\n", 400,
       "BAD_REQUEST"},
      {"unknown method", "BREW /api/echo HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400, "BAD_REQUEST"},
      {"missing Host", "GET /api/echo HTTP/1.1\r\n\r\n", 400, "MISSING_HOST"},
      {"request line too long", get("/api/" + std::string(2000, 'a')), 414, "URI_TOO_LONG"},
      {"too many fields", get("/api/echo", manyFields), 431, "REQUEST_HEADER_FIELDS_TOO_LARGE"},
      {"unsupported expectation", get("/api/echo", "Expect: tea\r\n"), 417, "EXPECTATION_FAILED"},
      {"CONNECT", "CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443\r\n\r\n", 501,
       "NOT_IMPLEMENTED"},
      {"no route", get("/elsewhere"), 404, "ROUTE_NOT_FOUND"},
      {"declared body over the limit", request("POST", "/api/echo", "Content-Length: 4096\r\n"),
       413, "PAYLOAD_TOO_LARGE"},
      {"header timeout", "GET /api/echo HTTP/1.1\r\nHost: gw.test\r\n", 408, "REQUEST_TIMEOUT"},
  };
  std::set<std::string> ids;
  for (const Case& c : cases) {
    INFO("case: " << c.name);
    Client client(gw.port());
    REQUIRE(client.send(c.bytes));
    Response r = client.read(3000ms);
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == c.status);
    CHECK(errorCode(r.body) == c.code);
    CHECK(r.header("X-Content-Type-Options") == "nosniff");
    CHECK(r.header("X-Frame-Options") == "SAMEORIGIN");
    CHECK(r.header("Cache-Control") == "no-store");
    ids.insert(requestIdOf(r));
  }
  // Each refused request has an id of its own (they all got the same one).
  CHECK(ids.size() == cases.size());
  CHECK(b.stats().requests == 0);
}

TEST_CASE("gateway answers: a request refused before its method was read is logged as such") {
  Backend b;
  TempDir dir;
  const std::string logPath = dir.path() + "/access.log";
  Gateway gw(apiConfig(b, 1, "access_log:\n  path: " + logPath + "\n"));
  Client c(gw.port());
  REQUIRE(c.send(request("HEAD", "/api/echo")));
  ReadOptions headOnly;
  headOnly.head = true;
  Response head = c.read(headOnly);
  REQUIRE_MESSAGE(head.complete, head.error);
  // The same connection's next request has a method llhttp refuses: not "HEAD" (the previous
  // one's), not "DELETE" (llhttp's method 0), and its error still has a body.
  REQUIRE(c.send("BR\x01W /api/echo HTTP/1.1\r\nHost: gw.test\r\n\r\n"));
  Response bad = c.read();
  REQUIRE_MESSAGE(bad.complete, bad.error);
  CHECK(bad.status == 400);
  CHECK(errorCode(bad.body) == "BAD_REQUEST");
  std::string log;
  REQUIRE(
      waitFor([&] { return (log = readFile(logPath)).find("\"status\":400") != std::string::npos; },
              3000ms));
  const std::string line = log.substr(log.rfind('\n', log.size() - 2) + 1);
  CHECK(line.find("\"method\":null") != std::string::npos);
  const std::string metrics = adminRequest(gw, "/metrics").body;
  CHECK(metricSample(
            metrics,
            R"m(gatewayd_http_requests_total{route="(none)",method="OTHER",code="400"})m") == 1);
  CHECK(metricSample(
            metrics,
            R"m(gatewayd_http_requests_total{route="(none)",method="DELETE",code="400"})m") == -1);
}
