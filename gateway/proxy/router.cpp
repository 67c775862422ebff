#include "gateway/proxy/router.h"

#include <algorithm>
#include <iterator>

#include "gateway/http/headers.h"
#include "gateway/http/path.h"

namespace gw::proxy {
namespace {

// The HTTP methods llhttp parses, most frequent first: the lookup is a linear scan that ends at
// the first entry for almost every request.
constexpr std::string_view kKnownMethods[] = {
    "GET",       "POST",        "PUT",        "DELETE",   "PATCH",  "HEAD",     "OPTIONS",
    "CONNECT",   "TRACE",       "PURGE",      "COPY",     "LOCK",   "MKCOL",    "MOVE",
    "PROPFIND",  "PROPPATCH",   "SEARCH",     "UNLOCK",   "BIND",   "REBIND",   "UNBIND",
    "ACL",       "REPORT",      "MKACTIVITY", "CHECKOUT", "MERGE",  "M-SEARCH", "NOTIFY",
    "SUBSCRIBE", "UNSUBSCRIBE", "MKCALENDAR", "LINK",     "UNLINK", "SOURCE"};
static_assert(std::size(kKnownMethods) < 64, "one bit per method plus kUnknownMethod");

// The bit of a request method the table does not know: only unrestricted routes carry it.
constexpr uint64_t kUnknownMethod = uint64_t{1} << 63;
constexpr uint64_t kAnyMethod = ~uint64_t{0};

uint64_t methodBit(std::string_view method) {
  const auto* found = std::find(std::begin(kKnownMethods), std::end(kKnownMethods), method);
  if (found == std::end(kKnownMethods)) return kUnknownMethod;
  return uint64_t{1} << (found - std::begin(kKnownMethods));
}

uint64_t methodMask(const std::vector<std::string>& methods) {
  if (methods.empty()) return kAnyMethod;
  uint64_t mask = 0;
  // A configured name outside the table adds no bit: no request can carry it, because the
  // parser refuses methods it does not know, so such a route answers those paths with 405.
  for (const std::string& method : methods) mask |= methodBit(method) & ~kUnknownMethod;
  return mask;
}

}  // namespace

Router::Router(const config::Config& config) {
  routes_.reserve(config.routes.size());
  for (const config::RouteConfig& route : config.routes) {
    CompiledRoute& compiled = routes_.emplace_back();
    compiled.route = &route;
    compiled.hostMatch = HostMatch::Any;
    if (route.match.host) {
      std::string_view host = *route.match.host;
      if (host.ends_with('.')) host.remove_suffix(1);  // as http::hostWithoutPort does
      if (host.starts_with("*.")) {
        compiled.hostMatch = HostMatch::Subdomain;
        host.remove_prefix(1);
      } else {
        compiled.hostMatch = HostMatch::Exact;
      }
      http::asciiLower(host, compiled.host);
    }
    compiled.exactPath = route.match.kind == config::PathMatch::Exact;
    compiled.path = route.match.path;
    compiled.methods = methodMask(route.match.methods);
  }
}

RouteMatchResult Router::match(std::string_view hostLower, std::string_view normalisedPath,
                               std::string_view method) const {
  const uint64_t bit = methodBit(method);
  RouteMatchResult result;
  for (const CompiledRoute& compiled : routes_) {
    switch (compiled.hostMatch) {
      case HostMatch::Any:
        break;
      case HostMatch::Exact:
        if (hostLower != compiled.host) continue;
        break;
      case HostMatch::Subdomain:
        if (hostLower.size() <= compiled.host.size() || !hostLower.ends_with(compiled.host)) {
          continue;
        }
        break;
    }
    const bool pathMatches = compiled.exactPath
                                 ? normalisedPath == compiled.path
                                 : http::pathHasPrefix(normalisedPath, compiled.path);
    if (!pathMatches) continue;
    if ((compiled.methods & bit) == 0) {
      result.miss = RouteMiss::MethodNotAllowed;
      continue;
    }
    return {compiled.route, RouteMiss::None};
  }
  return result;
}

std::string_view rewritePath(const config::RouteConfig& route, std::string_view normalisedPath,
                             std::string& scratch) {
  const std::string_view strip = route.strip_prefix;
  if (strip.empty() || !normalisedPath.starts_with(strip)) return normalisedPath;
  const std::size_t cut = strip.size();
  if (cut == normalisedPath.size()) return "/";
  if (normalisedPath[cut] == '/') return normalisedPath.substr(cut);
  // The strip ended just after a '/': keep that '/' rather than copy.
  if (normalisedPath[cut - 1] == '/') return normalisedPath.substr(cut - 1);
  scratch.assign(1, '/');
  scratch.append(normalisedPath.substr(cut));
  return scratch;
}

}  // namespace gw::proxy
