// A guard on a path prefix (ip_filter denying the test client on /admin) must hold against the
// spellings that common backends read as /admin while a router would not: encoded slashes and
// backslashes (WSGI, Go), and ';' path parameters (Tomcat, Spring). By default each is refused
// with 400 INVALID_PATH and the backend receives nothing; `http:` can strip parameters (the guard
// then applies) or keep both spellings (forwarded as they are).
#include <doctest.h>

#include <string>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// The harness's "api" route, then the guard on /admin and a catch-all.
std::string guardedConfig(const Backend& b, std::string_view http = {}) {
  return apiConfig(b, 1, http,
                   "  - match: {prefix: /admin}\n"
                   "    upstream: main\n"
                   "    plugins:\n"
                   "      - ip_filter: {deny: [127.0.0.0/8]}\n"
                   "  - match: {prefix: /}\n"
                   "    upstream: main\n");
}

// Sends `target` on a fresh connection and checks the gateway's own answer, which must be a
// JSON error with `code` (and `message` in its text) while the backend receives nothing.
void checkRefused(Backend& b, const Gateway& gw, const std::string& target, int status,
                  std::string_view code, std::string_view message) {
  INFO("target " << target);
  b.reset();
  Client c(gw.port());
  Response r = c.roundTrip(get(target));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == status);
  CHECK(errorCode(r.body) == code);
  CHECK_MESSAGE(r.body.find(message) != std::string::npos, r.body);
  CHECK(b.stats().requests == 0);
}

// Sends `target` and checks that the backend received it as `forwarded`.
void checkForwarded(Backend& b, const Gateway& gw, const std::string& target,
                    const std::string& forwarded) {
  INFO("target " << target);
  b.reset();
  Client c(gw.port());
  Response r = c.roundTrip(get(target));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  const std::vector<Echo> seen = b.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].target == forwarded);
}

}  // namespace

TEST_CASE("path guard: by default every known bypass of a prefix guard is refused") {
  Backend b;
  Gateway gw(guardedConfig(b));
  // The guard and the catch-all work as configured.
  checkRefused(b, gw, "/admin", 403, "FORBIDDEN", "");
  checkForwarded(b, gw, "/public", "/public");

  for (const std::string target : {"/admin%2Fx", "/admin%2fx", "/%2Fadmin", "/%5Cadmin",
                                   "/%5cadmin", "/public%5C..%5Cadmin"}) {
    checkRefused(b, gw, target, 400, "INVALID_PATH", "encoded slash or backslash");
  }
  for (const std::string target :
       {"/admin;jsessionid=1", "/.;/admin", "/admin..;/", "/public/..;/admin", "/admin%3Bx"}) {
    checkRefused(b, gw, target, 400, "INVALID_PATH", "path parameter");
  }
  checkRefused(b, gw, "/\\admin", 400, "INVALID_PATH", "invalid request path");
  // The query is not part of the path: ';' and %2F there are the backend's business.
  checkForwarded(b, gw, "/public?a=1;b=%2F", "/public?a=1;b=%2F");
}

TEST_CASE("path guard: stripped path parameters are guarded like the path Tomcat serves") {
  Backend b;
  Gateway gw(guardedConfig(b, "http:\n  path_parameters: strip\n"));
  for (const std::string target : {"/admin;jsessionid=1", "/.;/admin", "/public/..;/admin",
                                   "/admin;a=1/secret;b=2", "/x/..;x=1/admin"}) {
    checkRefused(b, gw, target, 403, "FORBIDDEN", "");
  }
  // What is forwarded is what was routed: no parameters left for a backend to read otherwise.
  checkForwarded(b, gw, "/app;jsessionid=1/x", "/app/x");
  checkForwarded(b, gw, "/admin..;/", "/admin../");
  checkRefused(b, gw, "/admin%3Bx", 400, "INVALID_PATH", "path parameter");
  checkRefused(b, gw, "/admin%2Fx", 400, "INVALID_PATH", "encoded slash or backslash");
}

TEST_CASE("path guard: keep forwards escaped slashes and parameters as they are") {
  Backend b;
  Gateway gw(guardedConfig(b, "http:\n  escaped_slashes: keep\n  path_parameters: keep\n"));
  checkForwarded(b, gw, "/admin%2fx", "/admin%2Fx");
  checkForwarded(b, gw, "/%5Cadmin", "/%5Cadmin");
  checkForwarded(b, gw, "/app;jsessionid=1", "/app;jsessionid=1");
  // Keeping spellings does not weaken the guard on the path itself.
  checkRefused(b, gw, "/admin/x;v=1", 403, "FORBIDDEN", "");
}
