// Proxy header semantics (RFC 9110 7.6): hop-by-hop headers dropped both ways, forwarding headers
// added, Host kept unless preserve_host: false.
#include <doctest.h>

#include "test/support/harness.h"

using namespace gw::it;

TEST_CASE("headers: hop-by-hop request headers, and those named in Connection, are removed") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip(get("/echo",
                               "Connection: keep-alive, X-Hop-Custom\r\n"
                               "X-Hop-Custom: must-not-pass\r\n"
                               "Keep-Alive: timeout=5\r\n"
                               "TE: trailers\r\n"
                               "Trailer: X-Checksum\r\n"
                               "Proxy-Connection: keep-alive\r\n"
                               "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
                               "X-End-To-End: yes\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  Echo e = parseEcho(r.body);
  REQUIRE(e.valid);
  for (const char* name : {"X-Hop-Custom", "Keep-Alive", "TE", "Trailer", "Proxy-Connection",
                           "Proxy-Authorization", "Upgrade"}) {
    INFO(std::string(name));
    CHECK(e.headerCount(name) == 0);
  }
  if (auto conn = e.header("Connection")) CHECK(conn->find("X-Hop-Custom") == std::string::npos);
  CHECK(e.header("X-End-To-End") == "yes");
}

TEST_CASE("headers: hop-by-hop response headers are removed") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip(get("/hop-response"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  for (const char* name :
       {"X-Custom-Hop", "Keep-Alive", "Proxy-Connection", "Trailer", "Upgrade"}) {
    INFO(std::string(name));
    CHECK(r.headerCount(name) == 0);
  }
  if (auto conn = r.header("Connection")) CHECK(conn->find("X-Custom-Hop") == std::string::npos);
  CHECK(r.header("X-End-To-End") == "kept");
  CHECK(r.body == "hop\n");
}

TEST_CASE("headers: X-Forwarded-For/-Proto/-Host and Via are added") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip(request("GET", "/echo", {}, {}, "shop.test:8443"));
  REQUIRE_MESSAGE(r.complete, r.error);
  Echo e = parseEcho(r.body);
  CHECK(e.header("X-Forwarded-For") == "127.0.0.1");
  CHECK(e.header("X-Forwarded-Proto") == "http");
  CHECK(e.header("X-Forwarded-Host") == "shop.test:8443");
  REQUIRE(e.header("Via").has_value());
  CHECK(e.header("Via")->rfind("1.1 ", 0) == 0);

  // An existing X-Forwarded-For is appended to, not replaced (one header, comma list).
  r = c.roundTrip(get("/echo", "X-Forwarded-For: 10.1.2.3\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  e = parseEcho(r.body);
  CHECK(e.headerCount("X-Forwarded-For") == 1);
  CHECK(e.header("X-Forwarded-For") == "10.1.2.3, 127.0.0.1");
}

TEST_CASE("headers: Host is preserved by default") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip(request("GET", "/echo", {}, {}, "Public.Example:81"));
  REQUIRE_MESSAGE(r.complete, r.error);
  Echo e = parseEcho(r.body);
  CHECK(e.headerCount("Host") == 1);
  CHECK(e.header("Host") == "Public.Example:81");
}

TEST_CASE("headers: preserve_host: false sends the backend's host:port") {
  Backend b;
  Gateway gw(subst(R"(workers: 1
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
    preserve_host: false
)",
                   {{"B", b.address()}}));
  Client c(gw.port());
  Response r = c.roundTrip(request("GET", "/echo", {}, {}, "public.example"));
  REQUIRE_MESSAGE(r.complete, r.error);
  Echo e = parseEcho(r.body);
  CHECK(e.headerCount("Host") == 1);
  CHECK(e.header("Host") == b.address());
  CHECK(e.header("X-Forwarded-Host") == "public.example");
}

TEST_CASE("headers: repeated end-to-end headers keep their order and values") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  Client c(gw.port());
  Response r = c.roundTrip(get("/echo", "X-Multi: one\r\nX-Other: x\r\nX-Multi: two\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  Echo e = parseEcho(r.body);
  std::vector<std::string> multi;
  for (const auto& [n, v] : e.headers)
    if (n == "X-Multi" || n == "x-multi") multi.push_back(v);
  CHECK(multi == std::vector<std::string>{"one", "two"});
}

// A backend that maps '_' and '-' alike (WSGI, CGI, PHP) would read X_Forwarded_For as the
// forwarding header the gateway vouches for. Such names are dropped by default (as nginx does),
// refused or allowed on request; and client-address fields only a trusted proxy may set.
TEST_CASE("headers: names with underscores are dropped, refused or allowed as configured") {
  Backend b;
  const std::string sent = "X_Forwarded_For: 6.6.6.6\r\nX_Custom: 1\r\nX-Normal: 2\r\n";
  for (const char* plugins : {"", "plugins:\n  - request_id\n"}) {
    INFO("global plugins: " << std::string(plugins));
    {
      Gateway gw(apiConfig(b, 1, plugins));
      Response r = Client(gw.port()).roundTrip(get("/api/echo", sent));
      REQUIRE_MESSAGE(r.complete, r.error);
      CHECK(r.status == 200);
      Echo e = parseEcho(r.body);
      CHECK(e.headerCount("X_Forwarded_For") == 0);
      CHECK(e.headerCount("X_Custom") == 0);
      CHECK(e.header("X-Normal") == "2");
      CHECK(e.header("X-Forwarded-For") == "127.0.0.1");
    }
    {
      Gateway gw(apiConfig(b, 1, std::string(plugins) + "http:\n  underscores_in_headers: reject\n"));
      b.reset();
      Client c(gw.port());
      Response r = c.roundTrip(get("/api/echo", sent));
      REQUIRE_MESSAGE(r.complete, r.error);
      CHECK(r.status == 400);
      CHECK(errorCode(r.body) == "BAD_REQUEST");
      CHECK(c.waitClosed(1000ms));
      CHECK(b.stats().requests == 0);
    }
    {
      Gateway gw(apiConfig(b, 1, std::string(plugins) + "http:\n  underscores_in_headers: allow\n"));
      Response r = Client(gw.port()).roundTrip(get("/api/echo", sent));
      REQUIRE_MESSAGE(r.complete, r.error);
      CHECK(parseEcho(r.body).header("X_Custom") == "1");
    }
  }
}

TEST_CASE("headers: X-Real-IP and Forwarded pass on only from a trusted proxy") {
  Backend b;
  const std::string sent = "X-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6;proto=https\r\n";
  {
    Gateway gw(apiConfig(b));
    Echo e = parseEcho(Client(gw.port()).roundTrip(get("/api/echo", sent)).body);
    REQUIRE(e.valid);
    CHECK(e.headerCount("X-Real-IP") == 0);
    CHECK(e.headerCount("Forwarded") == 0);
  }
  {
    Gateway gw(apiConfig(b, 1, "http:\n  trusted_proxies: [127.0.0.0/8]\n"));
    Echo e = parseEcho(Client(gw.port()).roundTrip(get("/api/echo", sent)).body);
    REQUIRE(e.valid);
    CHECK(e.header("X-Real-IP") == "6.6.6.6");
    CHECK(e.header("Forwarded") == "for=6.6.6.6;proto=https");
  }
  {
    Gateway gw(apiConfig(b, 1, "http:\n  trusted_proxies: ['10.0.0.0/8', '2001:db8::/32']\n"));
    Echo e = parseEcho(Client(gw.port()).roundTrip(get("/api/echo", sent)).body);
    REQUIRE(e.valid);
    CHECK(e.headerCount("X-Real-IP") == 0);
  }
}
