#include "gateway/proxy/router.h"

#include <doctest.h>

#include <optional>
#include <string>
#include <vector>

namespace gw::proxy {
namespace {

using config::PathMatch;

struct RouteSpec {
  std::string name;
  PathMatch kind = PathMatch::Prefix;
  std::string path = "/";
  std::optional<std::string> host{};
  std::vector<std::string> methods{};
  std::string strip_prefix{};
};

config::Config makeConfig(const std::vector<RouteSpec>& specs) {
  config::Config config;
  for (const RouteSpec& spec : specs) {
    config::RouteConfig& route = config.routes.emplace_back();
    route.name = spec.name;
    route.match.kind = spec.kind;
    route.match.path = spec.path;
    route.match.host = spec.host;
    route.match.methods = spec.methods;
    route.strip_prefix = spec.strip_prefix;
  }
  return config;
}

// The name of the matched route, or "404" / "405".
std::string route(const Router& router, std::string_view host, std::string_view path,
                  std::string_view method = "GET") {
  const RouteMatchResult result = router.match(host, path, method);
  switch (result.miss) {
    case RouteMiss::None:
      REQUIRE(result.route != nullptr);
      return result.route->name;
    case RouteMiss::NoRoute:
      CHECK(result.route == nullptr);
      return "404";
    case RouteMiss::MethodNotAllowed:
      CHECK(result.route == nullptr);
      return "405";
  }
  return "unreachable";
}

TEST_CASE("a prefix without a trailing slash matches whole segments only") {
  const auto config = makeConfig({{.name = "api", .path = "/api"}});
  const Router router(config);
  CHECK(route(router, "h", "/api") == "api");
  CHECK(route(router, "h", "/api/") == "api");
  CHECK(route(router, "h", "/api/x") == "api");
  CHECK(route(router, "h", "/api/x/y/") == "api");
  CHECK(route(router, "h", "/apix") == "404");
  CHECK(route(router, "h", "/ap") == "404");
  CHECK(route(router, "h", "/") == "404");
  CHECK(route(router, "h", "/v1/api") == "404");
}

TEST_CASE("a prefix with a trailing slash matches everything below it") {
  const auto config = makeConfig({{.name = "api", .path = "/api/"}});
  const Router router(config);
  CHECK(route(router, "h", "/api/") == "api");
  CHECK(route(router, "h", "/api/x") == "api");
  CHECK(route(router, "h", "/api") == "404");
  CHECK(route(router, "h", "/apix") == "404");
}

TEST_CASE("prefix '/' matches every path") {
  const auto config = makeConfig({{.name = "all", .path = "/"}});
  const Router router(config);
  CHECK(route(router, "h", "/") == "all");
  CHECK(route(router, "h", "/a") == "all");
  CHECK(route(router, "", "/a/b/") == "all");
}

TEST_CASE("an exact route matches the whole path only") {
  const auto config = makeConfig({{.name = "health", .kind = PathMatch::Exact, .path = "/health"},
                                  {.name = "slash", .kind = PathMatch::Exact, .path = "/dir/"}});
  const Router router(config);
  CHECK(route(router, "h", "/health") == "health");
  CHECK(route(router, "h", "/health/") == "404");
  CHECK(route(router, "h", "/health/x") == "404");
  CHECK(route(router, "h", "/healthz") == "404");
  CHECK(route(router, "h", "/dir/") == "slash");
  CHECK(route(router, "h", "/dir") == "404");
}

TEST_CASE("the first matching route in config order wins") {
  const auto config = makeConfig({{.name = "exact", .kind = PathMatch::Exact, .path = "/api/v1"},
                                  {.name = "v1", .path = "/api/v1"},
                                  {.name = "api", .path = "/api"},
                                  {.name = "fallback", .path = "/"}});
  const Router router(config);
  CHECK(route(router, "h", "/api/v1") == "exact");
  CHECK(route(router, "h", "/api/v1/x") == "v1");
  CHECK(route(router, "h", "/api/v2") == "api");
  CHECK(route(router, "h", "/api") == "api");
  CHECK(route(router, "h", "/apiv1") == "fallback");
  CHECK(route(router, "h", "/") == "fallback");

  const auto reversed =
      makeConfig({{.name = "fallback", .path = "/"}, {.name = "api", .path = "/api"}});
  const Router shadowed(reversed);
  CHECK(route(shadowed, "h", "/api/x") == "fallback");
}

TEST_CASE("exact hosts") {
  const auto config = makeConfig({{.name = "api", .host = "api.example.com"},
                                  {.name = "mixed", .host = "Mixed.Example.COM"},
                                  {.name = "v6", .host = "[::1]"},
                                  {.name = "dot", .host = "dot.example.com."}});
  const Router router(config);
  CHECK(route(router, "api.example.com", "/x") == "api");
  CHECK(route(router, "mixed.example.com", "/x") == "mixed");
  CHECK(route(router, "[::1]", "/x") == "v6");
  CHECK(route(router, "dot.example.com", "/x") == "dot");
  CHECK(route(router, "example.com", "/x") == "404");
  CHECK(route(router, "x.api.example.com", "/x") == "404");
  CHECK(route(router, "api.example.co", "/x") == "404");
  CHECK(route(router, "api.example.com.evil", "/x") == "404");
  CHECK(route(router, "", "/x") == "404");
}

TEST_CASE("wildcard hosts match one or more labels, not the domain itself") {
  const auto config = makeConfig(
      {{.name = "sub", .host = "*.example.com"}, {.name = "apex", .host = "example.com"}});
  const Router router(config);
  CHECK(route(router, "a.example.com", "/") == "sub");
  CHECK(route(router, "a.b.example.com", "/") == "sub");
  CHECK(route(router, "example.com", "/") == "apex");
  CHECK(route(router, "badexample.com", "/") == "404");
  CHECK(route(router, ".example.com", "/") == "404");
  CHECK(route(router, "example.com.evil", "/") == "404");
  CHECK(route(router, "a.example.org", "/") == "404");
}

TEST_CASE("host, path and method must all match") {
  const auto config = makeConfig(
      {{.name = "api-get", .path = "/api", .host = "api.example.com", .methods = {"GET"}},
       {.name = "other-host", .path = "/api", .host = "other.example.com"}});
  const Router router(config);
  CHECK(route(router, "api.example.com", "/api/x", "GET") == "api-get");
  CHECK(route(router, "api.example.com", "/api/x", "POST") == "405");
  CHECK(route(router, "api.example.com", "/web", "POST") == "404");
  CHECK(route(router, "other.example.com", "/api/x", "POST") == "other-host");
  // 405 only when host and path matched: a wrong host is a plain 404.
  CHECK(route(router, "third.example.com", "/api/x", "POST") == "404");
}

TEST_CASE("methods: empty means any, otherwise the listed ones") {
  const auto config = makeConfig({{.name = "read", .path = "/r", .methods = {"GET", "HEAD"}},
                                  {.name = "any", .path = "/any"}});
  const Router router(config);
  CHECK(route(router, "h", "/r", "GET") == "read");
  CHECK(route(router, "h", "/r", "HEAD") == "read");
  CHECK(route(router, "h", "/r", "POST") == "405");
  CHECK(route(router, "h", "/r", "get") == "405");  // methods are case-sensitive
  CHECK(route(router, "h", "/r", "PROPFIND") == "405");
  CHECK(route(router, "h", "/r", "BREW") == "405");
  CHECK(route(router, "h", "/r", "") == "405");
  for (std::string_view method : {"GET", "POST", "DELETE", "PATCH", "SOURCE", "BREW", "get", ""}) {
    CAPTURE(method);
    CHECK(route(router, "h", "/any", method) == "any");
  }
  CHECK(route(router, "h", "/none", "GET") == "404");
}

TEST_CASE("a later route can take a method an earlier one refused") {
  const auto config = makeConfig({{.name = "read", .path = "/items", .methods = {"GET"}},
                                  {.name = "write", .path = "/items", .methods = {"POST", "PUT"}},
                                  {.name = "delete", .path = "/items/", .methods = {"DELETE"}}});
  const Router router(config);
  CHECK(route(router, "h", "/items", "GET") == "read");
  CHECK(route(router, "h", "/items", "POST") == "write");
  CHECK(route(router, "h", "/items/1", "PUT") == "write");
  CHECK(route(router, "h", "/items/1", "DELETE") == "delete");
  CHECK(route(router, "h", "/items", "DELETE") == "405");
  CHECK(route(router, "h", "/items/1", "PATCH") == "405");
}

TEST_CASE("every method llhttp parses can be configured") {
  for (std::string_view method :
       {"GET",       "POST",        "PUT",        "DELETE",   "PATCH",  "HEAD",     "OPTIONS",
        "CONNECT",   "TRACE",       "PURGE",      "COPY",     "LOCK",   "MKCOL",    "MOVE",
        "PROPFIND",  "PROPPATCH",   "SEARCH",     "UNLOCK",   "BIND",   "REBIND",   "UNBIND",
        "ACL",       "REPORT",      "MKACTIVITY", "CHECKOUT", "MERGE",  "M-SEARCH", "NOTIFY",
        "SUBSCRIBE", "UNSUBSCRIBE", "MKCALENDAR", "LINK",     "UNLINK", "SOURCE"}) {
    CAPTURE(method);
    const auto config = makeConfig({{.name = "only", .methods = {std::string(method)}}});
    const Router router(config);
    CHECK(route(router, "h", "/", method) == "only");
    CHECK(route(router, "h", "/", method == "GET" ? "POST" : "GET") == "405");
  }
}

TEST_CASE("a route restricted to an unknown method name never matches") {
  const auto config = makeConfig({{.name = "brew", .methods = {"BREW"}}});
  const Router router(config);
  CHECK(route(router, "h", "/", "BREW") == "405");
  CHECK(route(router, "h", "/", "GET") == "405");
}

TEST_CASE("an empty table matches nothing") {
  const config::Config config;
  const Router router(config);
  CHECK(route(router, "h", "/") == "404");
}

TEST_CASE("match returns the route object from the config") {
  const auto config = makeConfig({{.name = "a", .path = "/a"}, {.name = "b", .path = "/b"}});
  const Router router(config);
  CHECK(router.match("h", "/b/1", "GET").route == &config.routes[1]);
}

TEST_CASE("rewritePath strips the prefix and keeps a leading slash") {
  std::string scratch;
  const auto rewrite = [&scratch](std::string strip, std::string_view path) {
    config::RouteConfig route;
    route.strip_prefix = std::move(strip);
    return std::string(rewritePath(route, path, scratch));
  };
  CHECK(rewrite("", "/api/x") == "/api/x");
  CHECK(rewrite("/api", "/api/x") == "/x");
  CHECK(rewrite("/api", "/api/x/") == "/x/");
  CHECK(rewrite("/api", "/api") == "/");
  CHECK(rewrite("/api", "/api/") == "/");
  CHECK(rewrite("/api/", "/api/x") == "/x");
  CHECK(rewrite("/api/", "/api/") == "/");
  CHECK(rewrite("/", "/x") == "/x");
  CHECK(rewrite("/", "/") == "/");
  CHECK(rewrite("/a/b", "/a/b/c") == "/c");
  CHECK(rewrite("/ap", "/api/x") == "/i/x");
  CHECK(rewrite("/api", "/other") == "/other");
  CHECK(rewrite("/api/v1", "/api") == "/api");
}

TEST_CASE("rewritePath views the input unless it must add a slash") {
  std::string scratch;
  config::RouteConfig route;
  route.strip_prefix = "/api";
  const std::string_view path = "/api/x";
  std::string_view result = rewritePath(route, path, scratch);
  CHECK(result.data() == path.data() + 4);
  CHECK(scratch.empty());

  route.strip_prefix = "/api/";
  result = rewritePath(route, path, scratch);
  CHECK(result == "/x");
  CHECK(result.data() == path.data() + 4);
  CHECK(scratch.empty());

  route.strip_prefix = "/ap";
  result = rewritePath(route, path, scratch);
  CHECK(result == "/i/x");
  CHECK(result.data() == scratch.data());
}

}  // namespace
}  // namespace gw::proxy
