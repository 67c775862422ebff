// request_id through the real gatewayd: what the client sends, what the backend receives and what
// comes back (header and gateway error body) must all carry the same, well-formed id.
#include <doctest.h>
#include <rapidjson/document.h>

#include <regex>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// /api/ reaches the backend; /down/ an upstream with nothing listening (the gateway answers 502).
std::string config(const Backend& b, uint16_t down_port, std::string_view settings = {}) {
  return subst(R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends:
      - ${B}
  - name: down
    backends:
      - 127.0.0.1:${DOWN}
routes:
  - match: {prefix: /api/}
    upstream: main
    plugins:
      - request_id${SETTINGS}
  - match: {prefix: /down/}
    upstream: down
    plugins:
      - request_id${SETTINGS}
)",
               {{"B", b.address()},
                {"DOWN", std::to_string(down_port)},
                {"SETTINGS", std::string(settings)}});
}

bool isGenerated(std::string_view id) {
  static const std::regex kHex32("^[0-9a-f]{32}$");
  return std::regex_match(id.begin(), id.end(), kHex32);
}

std::string errorRequestId(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("error") || !d["error"].IsObject() ||
      !d["error"].HasMember("request_id") || !d["error"]["request_id"].IsString()) {
    return "<no request_id in: " + body + ">";
  }
  return d["error"]["request_id"].GetString();
}

uint16_t downPort() {
  uint16_t port = freePort();
  REQUIRE(connectRefused(port));
  return port;
}

}  // namespace

TEST_CASE("plugins request id: a well-formed incoming id goes upstream and comes back") {
  Backend b;
  Gateway gw(config(b, downPort()));
  Client c(gw.port());
  const std::string id = "Req-0123_abc.def:ghi+jkl/mno=";
  Response r = c.roundTrip(get("/api/echo", "X-Request-Id: " + id + "\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.header("X-Request-Id").value_or("<none>") == id);
  CHECK(r.headerCount("X-Request-Id") == 1);
  Echo e = parseEcho(r.body);
  REQUIRE(e.valid);
  CHECK(e.header("X-Request-Id").value_or("<none>") == id);
  CHECK(e.headerCount("X-Request-Id") == 1);

  // 128 characters is the longest accepted id.
  const std::string longest(128, 'a');
  r = c.roundTrip(get("/api/echo", "x-request-id: " + longest + "\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.header("X-Request-Id").value_or("<none>") == longest);
  CHECK(parseEcho(r.body).header("X-Request-Id").value_or("<none>") == longest);
}

TEST_CASE("plugins request id: a malformed incoming id is replaced by a generated one") {
  Backend b;
  Gateway gw(config(b, downPort()));
  Client c(gw.port());
  for (const std::string& bad : {std::string("has spaces in it"), std::string(129, 'a'),
                                std::string("quote\"inside"), std::string("semi;colon")}) {
    INFO("incoming id: " << bad);
    Response r = c.roundTrip(get("/api/echo", "X-Request-Id: " + bad + "\r\n"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    const std::string sent = r.header("X-Request-Id").value_or("");
    CHECK(isGenerated(sent));
    Echo e = parseEcho(r.body);
    REQUIRE(e.valid);
    CHECK(e.header("X-Request-Id").value_or("<none>") == sent);
    CHECK(e.headerCount("X-Request-Id") == 1);
  }
}

// docs/plugins.md: "if the client sent the field several times, the first well-formed value wins
// and the upstream receives exactly one field".
TEST_CASE("plugins request id: of several incoming fields the first well-formed one wins") {
  Backend b;
  Gateway gw(config(b, downPort()));
  Client c(gw.port());
  Response r = c.roundTrip(
      get("/api/echo", "X-Request-Id: not valid\r\nX-Request-Id: good-2\r\nX-Request-Id: "
                       "good-3\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.header("X-Request-Id").value_or("<none>") == "good-2");
  Echo e = parseEcho(r.body);
  CHECK(e.header("X-Request-Id").value_or("<none>") == "good-2");
  CHECK(e.headerCount("X-Request-Id") == 1);
}

TEST_CASE("plugins request id: none sent -> one generated id upstream, in the header, in errors") {
  Backend b;
  Gateway gw(config(b, downPort()));
  Client c(gw.port());
  Response r = c.roundTrip(get("/api/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  const std::string id = r.header("X-Request-Id").value_or("");
  CHECK(isGenerated(id));
  Echo e = parseEcho(r.body);
  REQUIRE(e.valid);
  CHECK(e.header("X-Request-Id").value_or("<none>") == id);
  CHECK(e.headerCount("X-Request-Id") == 1);

  // Ids differ between requests.
  Response r2 = c.roundTrip(get("/api/echo"));
  REQUIRE(r2.complete);
  CHECK(r2.header("X-Request-Id").value_or("") != id);

  // A gateway-made 502: the response header and the JSON body carry the same generated id.
  b.reset();
  Client d(gw.port());
  r = d.roundTrip(get("/down/x"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 502);
  CHECK(errorCode(r.body) == "UPSTREAM_CONNECT_FAILED");
  const std::string generated = r.header("X-Request-Id").value_or("");
  CHECK(isGenerated(generated));
  CHECK(errorRequestId(r.body) == generated);

  // And a client's well-formed id is the one in the error body.
  Client d2(gw.port());
  r = d2.roundTrip(get("/down/x", "X-Request-Id: client-chosen-1\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 502);
  CHECK(r.header("X-Request-Id").value_or("<none>") == "client-chosen-1");
  CHECK(errorRequestId(r.body) == "client-chosen-1");
  CHECK(b.stats().requests == 0);
}

TEST_CASE("plugins request id: custom header, accept_incoming false, response_header false") {
  Backend b;
  Gateway gw(config(
      b, downPort(),
      ": {header: X-Correlation-Id, accept_incoming: false, response_header: false}"));
  Client c(gw.port());
  Response r = c.roundTrip(get("/api/echo", "X-Correlation-Id: client-chosen\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.headerCount("X-Correlation-Id") == 0);
  CHECK(r.headerCount("X-Request-Id") == 0);
  Echo e = parseEcho(r.body);
  REQUIRE(e.valid);
  const std::string upstream = e.header("X-Correlation-Id").value_or("");
  CHECK(isGenerated(upstream));  // the client's id was not accepted
  CHECK(e.headerCount("X-Correlation-Id") == 1);
}

// Content-Length, Transfer-Encoding or Host as the id's field would reframe or reroute the
// forwarded request (the id replacing the client's length desynchronises the connection).
TEST_CASE("plugins request id: a field the gateway owns cannot carry the id: -t refuses it") {
  Backend b;
  TempDir dir;
  for (const std::string name : {"Content-Length", "Transfer-Encoding", "Host"}) {
    INFO(name);
    const std::string path = dir.write(
        "owned.yaml", subst(config(b, 9, ": {header: " + name + "}"), {{"PORT", "18999"}}));
    CommandResult run = runGatewaydCommand({"-t", "-c", path});
    INFO("stdout: " << run.out << "stderr: " << run.err);
    CHECK(run.exit_code == 1);
    const std::string problem = "'header' must not be '" + name +
                                "', the gateway's own field (it frames the message, routes it or "
                                "belongs to the connection)";
    // Both routes' entries, at the value of `header`.
    CHECK(run.err == path + ":16:30: " + problem + "\n" + path + ":20:30: " + problem + "\n");
  }
}
