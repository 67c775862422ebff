// The basic forwarding contract: a request reaches the upstream of the first matching route and
// the backend's answer comes back unchanged.
#include <doctest.h>

#include "test/support/harness.h"

using namespace gw::it;

TEST_CASE("proxy: GET and POST are forwarded and the backend's answer comes back") {
  Backend b("b1");
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());

  Response r = c.roundTrip(get("/echo?x=1&y=two"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.header("X-Backend-Id") == "b1");
  CHECK(r.header("Content-Type") == "application/json");
  Echo e = parseEcho(r.body);
  REQUIRE(e.valid);
  CHECK(e.method == "GET");
  CHECK(e.target == "/echo?x=1&y=two");
  CHECK(e.body_bytes == 0);

  r = c.roundTrip(request("POST", "/echo", "Content-Type: text/plain\r\n", "the body"));
  REQUIRE_MESSAGE(r.complete, r.error);
  e = parseEcho(r.body);
  CHECK(e.method == "POST");
  CHECK(e.body == "the body");
  CHECK(e.header("Content-Type") == "text/plain");

  // A backend status is passed through as it is, not turned into a gateway error.
  r = c.roundTrip(get("/status/503"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 503);
  CHECK(r.body == "status 503\n");
  CHECK(r.header("X-Backend-Id") == "b1");
}

TEST_CASE("proxy: routes select by prefix, exact path, method and host; strip_prefix rewrites") {
  Backend api("api"), exact("exact"), host("host"), post("post"), rest("rest");
  Gateway gw(subst(R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: api
    backends:
      - ${API}
  - name: exact
    backends:
      - ${EXACT}
  - name: host
    backends:
      - ${HOST}
  - name: post
    backends:
      - ${POST}
  - name: rest
    backends:
      - ${REST}
routes:
  - match: {exact: /health}
    upstream: exact
  - match: {prefix: /api/}
    upstream: api
    strip_prefix: /api
  - match: {prefix: /, host: "*.example.com"}
    upstream: host
  - match: {prefix: /submit, methods: [POST]}
    upstream: post
  - match: {prefix: /}
    upstream: rest
)",
                   {{"API", api.address()},
                    {"EXACT", exact.address()},
                    {"HOST", host.address()},
                    {"POST", post.address()},
                    {"REST", rest.address()}}));
  Client c(gw.port());
  auto via = [&](const std::string& req) {
    Response r = c.roundTrip(req);
    REQUIRE_MESSAGE(r.complete, r.error);
    return std::make_pair(r.header("X-Backend-Id").value_or("?"), parseEcho(r.body).target);
  };

  CHECK(via(get("/health")).first == "exact");
  CHECK(via(get("/healthz")).first == "rest");  // exact means exact
  auto [id, target] = via(get("/api/echo?k=v"));
  CHECK(id == "api");
  CHECK(target == "/echo?k=v");
  CHECK(via(request("GET", "/echo", {}, {}, "svc.example.com")).first == "host");
  CHECK(via(request("GET", "/echo", {}, {}, "SVC.Example.COM:8080")).first == "host");
  CHECK(via(request("GET", "/echo", {}, {}, "example.org")).first == "rest");
  CHECK(via(request("POST", "/submit/echo", {}, "x")).first == "post");
  CHECK(via(get("/submit/echo")).first == "rest");
}
