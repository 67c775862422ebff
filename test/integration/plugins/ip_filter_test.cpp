// ip_filter through the real gatewayd: the test client is 127.0.0.1, so an allow list holding it
// is proxied and a deny list holding it gets 403 FORBIDDEN before the upstream is contacted.
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
  - match: {prefix: /allowed/}
    upstream: main
    strip_prefix: /allowed
    plugins:
      - ip_filter: {allow: [127.0.0.1, '::1/128']}
  - match: {prefix: /denied/}
    upstream: main
    strip_prefix: /denied
    plugins:
      - ip_filter: {deny: [127.0.0.0/8]}
  - match: {prefix: /elsewhere/}
    upstream: main
    strip_prefix: /elsewhere
    plugins:
      - ip_filter: {allow: [10.0.0.0/8, '2001:db8::/32']}
  - match: {prefix: /overridden/}
    upstream: main
    strip_prefix: /overridden
    plugins:
      - ip_filter: {allow: [0.0.0.0/0], deny: [127.0.0.1/32]}
)yaml",
               {{"B", b.address()}});
}

struct Fixture {
  Backend b;
  Gateway gw{config(b)};
};

void checkForbidden(Fixture& f, const std::string& path) {
  INFO("path " << path);
  f.b.reset();
  Client c(f.gw.port());
  Response r = c.roundTrip(get(path));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 403);
  CHECK(errorCode(r.body) == "FORBIDDEN");
  CHECK(r.header("Content-Type").value_or("<none>").find("application/json") == 0);
  CHECK(f.b.stats().requests == 0);
}

}  // namespace

TEST_CASE("plugins ip filter: an allowed client is proxied") {
  Fixture f;
  Client c(f.gw.port());
  Response r = c.roundTrip(get("/allowed/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  Echo e = parseEcho(r.body);
  REQUIRE(e.valid);
  CHECK(f.b.stats().requests == 1);
}

TEST_CASE("plugins ip filter: denied clients get 403 FORBIDDEN and the backend sees nothing") {
  Fixture f;
  checkForbidden(f, "/denied/echo");      // in the deny list
  checkForbidden(f, "/elsewhere/echo");   // not in the allow list
  checkForbidden(f, "/overridden/echo");  // deny wins over allow
}
