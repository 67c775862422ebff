#pragma once
// The routing table, compiled once per config snapshot: (host, path, method) -> route.
//
// Matching, in config order, first match wins:
//   - host: none = any host; "api.example.com" = that host exactly; "*.example.com" = one or more
//     labels under example.com ("a.example.com", "a.b.example.com"), never example.com itself.
//     The caller passes the Host header lower-cased and without its port (http::normaliseHost).
//   - path: `exact` equals the whole normalised path (a trailing '/' counts). `prefix` is
//     segment-aware (http::pathHasPrefix): "/api" matches "/api" and "/api/x" but not "/apix",
//     so a route cannot capture a sibling by accident; "/api/" matches everything below /api/
//     but not "/api"; "/" matches every path.
//   - method: none listed = any; otherwise one of the listed names, case-sensitively (RFC 9110
//     §9.1). A method outside the set llhttp parses never matches a method-restricted route.
// The caller passes the path normalised by http::normalisePath, without the query.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/model.h"

namespace gw::proxy {

enum class RouteMiss : uint8_t {
  None,              // matched
  NoRoute,           // no route for this host and path: 404
  MethodNotAllowed,  // a route has this host and path, none allows the method: 405
};

struct RouteMatchResult {
  const config::RouteConfig* route = nullptr;  // set exactly when miss == RouteMiss::None
  RouteMiss miss = RouteMiss::NoRoute;
};

class Router {
 public:
  // Keeps pointers into config.routes: the config must outlive the router (a snapshot owns both).
  explicit Router(const config::Config& config);

  RouteMatchResult match(std::string_view hostLower, std::string_view normalisedPath,
                         std::string_view method) const;

 private:
  enum class HostMatch : uint8_t { Any, Exact, Subdomain };

  struct CompiledRoute {
    const config::RouteConfig* route;
    HostMatch hostMatch;
    std::string host;  // Exact: the host; Subdomain: the suffix with its dot, ".example.com"
    bool exactPath;
    std::string path;
    uint64_t methods;  // bit per known method; every bit (unknown ones too) when unrestricted
  };

  std::vector<CompiledRoute> routes_;
};

// The path to send upstream: `normalisedPath` without the route's strip_prefix, always starting
// with '/' ("/api" stripped from "/api" is "/"). The result views `normalisedPath`, a literal, or
// `scratch` (only when the strip ends inside a segment, e.g. "/ap" from "/api/x" -> "/i/x").
// A path that does not start with strip_prefix is returned unchanged.
std::string_view rewritePath(const config::RouteConfig& route, std::string_view normalisedPath,
                             std::string& scratch);

}  // namespace gw::proxy
