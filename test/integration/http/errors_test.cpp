// Gateway-generated errors: the JSON shape, the status, and the connection stays usable.
#include <doctest.h>
#include <rapidjson/document.h>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

std::string routesConfig(const Backend& b) {
  return subst(R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends:
      - ${B}
routes:
  - match: {prefix: /api/}
    upstream: main
  - match: {exact: /only-get, methods: [GET]}
    upstream: main
)",
               {{"B", b.address()}});
}

}  // namespace

TEST_CASE("errors: no matching route -> 404 ROUTE_NOT_FOUND JSON") {
  Backend b;
  Gateway gw(routesConfig(b));
  b.reset();
  Client c(gw.port());
  Response r = c.roundTrip(get("/elsewhere"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 404);
  CHECK(r.header("Content-Type").value_or("").find("application/json") == 0);
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  REQUIRE_MESSAGE(!d.HasParseError(), r.body);
  REQUIRE(d.IsObject());
  REQUIRE(d.HasMember("error"));
  const auto& e = d["error"];
  REQUIRE(e.IsObject());
  CHECK(std::string(e["code"].GetString()) == "ROUTE_NOT_FOUND");
  CHECK(e["message"].IsString());
  REQUIRE(e.HasMember("request_id"));
  CHECK(e["request_id"].GetStringLength() > 0);
  CHECK(b.stats().bytes == 0);
  // A routing miss is not a protocol error: the connection stays usable.
  r = c.roundTrip(get("/api/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
}

TEST_CASE("errors: request ids differ between requests") {
  Backend b;
  Gateway gw(routesConfig(b));
  Client c(gw.port());
  Response r1 = c.roundTrip(get("/nope"));
  Response r2 = c.roundTrip(get("/nope"));
  REQUIRE(r1.complete);
  REQUIRE(r2.complete);
  rapidjson::Document d1, d2;
  d1.Parse(r1.body.c_str());
  d2.Parse(r2.body.c_str());
  REQUIRE((d1.IsObject() && d2.IsObject()));
  CHECK(std::string(d1["error"]["request_id"].GetString()) !=
        std::string(d2["error"]["request_id"].GetString()));
}

TEST_CASE("errors: wrong method on a method-restricted route -> 405") {
  Backend b;
  Gateway gw(routesConfig(b));
  b.reset();
  Client c(gw.port());
  Response r = c.roundTrip(request("DELETE", "/only-get"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 405);
  CHECK(errorCode(r.body) == "METHOD_NOT_ALLOWED");
  // Nothing left unread on a bodiless request: the connection stays usable.
  r = c.roundTrip(get("/only-get"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);

  // With an unread body the gateway may close, but then it must say so.
  r = c.roundTrip(request("POST", "/only-get", {}, "x"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 405);
  CHECK(errorCode(r.body) == "METHOD_NOT_ALLOWED");
  bool announced_close = r.header("Connection").value_or("").find("close") != std::string::npos;
  if (announced_close) {
    CHECK(c.waitClosed(1000ms));
  } else {
    r = c.roundTrip(get("/only-get"));
    REQUIRE_MESSAGE(r.complete, "closed without Connection: close: " << r.error);
    CHECK(r.status == 200);
  }
  CHECK(b.stats().requests == 1);  // only the GET reached the backend
}
