// cors through the real gatewayd: preflights are answered by the gateway (the backend sees none),
// allowed cross-origin requests get their Access-Control-* fields on the proxied answer, and
// everything else is proxied untouched except for Vary: Origin.
#include <doctest.h>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

std::string config(const Backend& b) {
  return subst(R"yaml(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends:
      - ${B}
routes:
  - match: {prefix: /}
    upstream: main
    plugins:
      - request_id
      - cors:
          allow_origins: [https://app.example.com]
          allow_methods: [GET, PUT]
          expose_headers: [X-Total]
          allow_credentials: true
          max_age: 10m
      - security_headers
)yaml",
               {{"B", b.address()}});
}

const char* kPreflight =
    "Origin: https://app.example.com\r\n"
    "Access-Control-Request-Method: PUT\r\n"
    "Access-Control-Request-Headers: content-type, x-token\r\n";

// A preflight for PUT on /items carrying `fields` (lines ending in \r\n) besides; complete.
Response preflight(Client& c, const std::string& fields) {
  Response r =
      c.roundTrip(request("OPTIONS", "/items", fields + "Access-Control-Request-Method: PUT\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  return r;
}

}  // namespace

TEST_CASE("plugins cors: a preflight is answered 204 by the gateway, never proxied") {
  Backend b;
  Gateway gw(config(b));
  Client c(gw.port());
  Response r = c.roundTrip(request("OPTIONS", "/items/7", kPreflight));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 204);
  CHECK(r.header("Access-Control-Allow-Origin") == "https://app.example.com");
  CHECK(r.header("Access-Control-Allow-Methods") == "GET, PUT");
  CHECK(r.header("Access-Control-Allow-Headers") == "content-type, x-token");
  CHECK(r.header("Access-Control-Allow-Credentials") == "true");
  CHECK(r.header("Access-Control-Max-Age") == "600");
  CHECK(r.header("Vary") == "Origin");
  CHECK_FALSE(r.header("Content-Length"));  // RFC 9110 8.6: not in a 204
  CHECK(r.body.empty());
  CHECK(r.header("X-Request-Id"));                        // request_id ran first
  CHECK(r.header("X-Content-Type-Options") == "nosniff");  // security_headers ran after
  CHECK(b.stats().requests == 0);
  // The connection carries on: the 204 was framed right.
  Response next = c.roundTrip(get("/after", "Origin: https://app.example.com\r\n"));
  REQUIRE_MESSAGE(next.complete, next.error);
  CHECK(next.status == 200);
  CHECK(b.stats().requests == 1);
}

TEST_CASE("plugins cors: an allowed cross-origin request is proxied and gets the CORS fields") {
  Backend b;
  Gateway gw(config(b));
  Client c(gw.port());
  Response r = c.roundTrip(get("/items", "Origin: https://app.example.com\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.header("Access-Control-Allow-Origin") == "https://app.example.com");
  CHECK(r.header("Access-Control-Allow-Credentials") == "true");
  CHECK(r.header("Access-Control-Expose-Headers") == "X-Total");
  CHECK_FALSE(r.header("Access-Control-Allow-Methods"));  // preflight only
  CHECK(r.header("Vary") == "Origin");
  const Echo echo = parseEcho(r.body);
  REQUIRE(echo.valid);
  CHECK(echo.header("Origin") == "https://app.example.com");  // the backend sees it too
}

TEST_CASE("plugins cors: other origins get no CORS fields and their preflight goes upstream") {
  Backend b;
  Gateway gw(config(b));
  Client c(gw.port());
  Response r = c.roundTrip(request("OPTIONS", "/items",
                                   "Origin: https://evil.example.com\r\n"
                                   "Access-Control-Request-Method: PUT\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);  // the backend's answer to OPTIONS: the browser does the refusing
  CHECK_FALSE(r.header("Access-Control-Allow-Origin"));
  CHECK(r.header("Vary") == "Origin");
  CHECK(b.stats().requests == 1);
  Response plain = c.roundTrip(get("/items"));
  REQUIRE_MESSAGE(plain.complete, plain.error);
  CHECK_FALSE(plain.header("Access-Control-Allow-Origin"));
  CHECK(plain.header("Vary") == "Origin");
}

TEST_CASE("plugins cors: only header names are echoed to a preflight, at most 1 KiB of them") {
  Backend b;
  Gateway gw(config(b));
  Client c(gw.port());
  Response r = preflight(c,
                         "Origin: https://app.example.com\r\n"
                         "Access-Control-Request-Headers: content-type, x@evil, \"a, b\", <x>, "
                         "x-token\r\n");
  CHECK(r.status == 204);
  CHECK(r.header("Access-Control-Allow-Headers") == "content-type, x-token");

  std::string many;
  for (int i = 0; i < 1000; ++i) many += (i ? ", x-header-" : "x-header-") + std::to_string(i);
  r = preflight(
      c, "Origin: https://app.example.com\r\nAccess-Control-Request-Headers: " + many + "\r\n");
  CHECK(r.status == 204);
  const std::string echoed = r.header("Access-Control-Allow-Headers").value_or("");
  CHECK(echoed.size() <= 1024);
  CHECK(echoed.size() > 1000);
  CHECK(many.starts_with(echoed + ", "));
  CHECK(b.stats().requests == 0);
}

TEST_CASE("plugins cors: a request with two Origin fields gets no CORS answer") {
  Backend b;
  Gateway gw(config(b));
  Client c(gw.port());
  for (const std::string origins :
       {"Origin: https://evil.example.com\r\nOrigin: https://app.example.com\r\n",
        "Origin: https://app.example.com\r\nOrigin: https://evil.example.com\r\n"}) {
    INFO(origins);
    b.reset();
    Response r = preflight(c, origins);
    CHECK(r.status == 200);  // proxied like any refused origin's preflight
    CHECK_FALSE(r.header("Access-Control-Allow-Origin"));
    CHECK_FALSE(r.header("Access-Control-Allow-Credentials"));
    CHECK(r.header("Vary") == "Origin");
    CHECK(b.stats().requests == 1);
  }
}
