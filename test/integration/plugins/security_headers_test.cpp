// security_headers through the real gatewayd: helmet's exact defaults on proxied answers and on the
// gateway's own (502, 429), X-Powered-By removed, overrides, disabling and upstream_values.
#include <doctest.h>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

const HeaderList kHelmet = {
    {"Content-Security-Policy",
     "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
     "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
     "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Origin-Agent-Cluster", "?1"},
    {"Referrer-Policy", "no-referrer"},
    {"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-DNS-Prefetch-Control", "off"},
    {"X-Download-Options", "noopen"},
    {"X-Frame-Options", "SAMEORIGIN"},
    {"X-Permitted-Cross-Domain-Policies", "none"},
    {"X-XSS-Protection", "0"},
};

// Every default exactly once with its exact value, except the names in `except`.
void checkHelmet(const Response& r, std::initializer_list<std::string_view> except = {}) {
  for (const auto& [headerName, value] : kHelmet) {
    const auto& name = headerName;  // INFO takes a variable, not a binding
    if (std::find(except.begin(), except.end(), name) != except.end()) continue;
    INFO("status " << r.status << ", header " << name);
    CHECK(r.headerCount(name) == 1);
    CHECK(r.header(name).value_or("<none>") == value);
  }
}

std::string config(const Backend& b, uint16_t down_port) {
  return subst(R"yaml(workers: 1
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
    strip_prefix: /api
    plugins:
      - security_headers
  - match: {prefix: /down/}
    upstream: down
    plugins:
      - security_headers
  - match: {prefix: /limited/}
    upstream: main
    plugins:
      - rate_limit: {limits: [{requests: 1, window: 1m}]}
      - security_headers
  - match: {prefix: /custom/}
    upstream: main
    strip_prefix: /custom
    plugins:
      - security_headers:
          headers:
            X-Frame-Options: DENY
            X-XSS-Protection: false
            Permissions-Policy: "camera=(), microphone=()"
  - match: {prefix: /keep/}
    upstream: main
    strip_prefix: /keep
    plugins:
      - security_headers: {upstream_values: keep}
  - match: {prefix: /plain/}
    upstream: main
    strip_prefix: /plain
)yaml",
               {{"B", b.address()}, {"DOWN", std::to_string(down_port)}});
}

struct Fixture {
  Backend b;
  uint16_t down = freePort();
  Gateway gw{config(b, down)};
};

}  // namespace

TEST_CASE("plugins security headers: helmet defaults on a proxied 200") {
  Fixture f;
  Client c(f.gw.port());
  Response r = c.roundTrip(get("/api/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  checkHelmet(r);
  // The headers are the client's, not the backend's: the request upstream carries none.
  Echo e = parseEcho(r.body);
  REQUIRE(e.valid);
  CHECK(e.headerCount("X-Frame-Options") == 0);
  CHECK(e.headerCount("Content-Security-Policy") == 0);
}

TEST_CASE("plugins security headers: helmet defaults on a gateway-made 502 and 429") {
  Fixture f;
  REQUIRE(connectRefused(f.down));
  Client c(f.gw.port());
  Response r = c.roundTrip(get("/down/x"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 502);
  CHECK(errorCode(r.body) == "UPSTREAM_CONNECT_FAILED");
  checkHelmet(r);

  f.b.reset();
  Client l(f.gw.port());
  r = l.roundTrip(get("/limited/a"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  checkHelmet(r);
  r = l.roundTrip(get("/limited/b"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 429);
  CHECK(errorCode(r.body) == "RATE_LIMIT_EXCEEDED");
  checkHelmet(r);
  CHECK(f.b.stats().requests == 1);
}

TEST_CASE("plugins security headers: X-Powered-By removed, upstream values replaced or kept") {
  Fixture f;
  Client c(f.gw.port());
  // Without the plugin the backend's headers come through as sent (the fixture is sound).
  Response r = c.roundTrip(get("/plain/powered-by"));
  REQUIRE_MESSAGE(r.complete, r.error);
  REQUIRE(r.status == 200);
  REQUIRE(r.header("X-Powered-By").value_or("<none>") == "Express");
  REQUIRE(r.header("X-Frame-Options").value_or("<none>") == "DENY");
  CHECK(r.headerCount("Content-Security-Policy") == 0);

  // Default upstream_values: replace -> the backend's DENY becomes the default SAMEORIGIN.
  r = c.roundTrip(get("/api/powered-by"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.headerCount("X-Powered-By") == 0);
  checkHelmet(r);
  CHECK(r.body == "powered\n");

  // keep -> the backend's value stays (once), the other defaults are added.
  r = c.roundTrip(get("/keep/powered-by"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.headerCount("X-Powered-By") == 0);
  CHECK(r.headerCount("X-Frame-Options") == 1);
  CHECK(r.header("X-Frame-Options").value_or("<none>") == "DENY");
  checkHelmet(r, {"X-Frame-Options"});
}

TEST_CASE("plugins security headers: override, disable and add") {
  Fixture f;
  Client c(f.gw.port());
  Response r = c.roundTrip(get("/custom/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.headerCount("X-Frame-Options") == 1);
  CHECK(r.header("X-Frame-Options").value_or("<none>") == "DENY");
  CHECK(r.headerCount("X-XSS-Protection") == 0);
  CHECK(r.header("Permissions-Policy").value_or("<none>") == "camera=(), microphone=()");
  checkHelmet(r, {"X-Frame-Options", "X-XSS-Protection"});

  // The backend's own X-Frame-Options is replaced by the override.
  r = c.roundTrip(get("/custom/powered-by"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.headerCount("X-Frame-Options") == 1);
  CHECK(r.header("X-Frame-Options").value_or("<none>") == "DENY");
  CHECK(r.headerCount("X-Powered-By") == 0);
}
