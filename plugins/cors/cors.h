#pragma once
// cors: answers CORS preflights at the gateway (204, never proxied) and adds the
// Access-Control-* fields to the answers of allowed cross-origin requests. A disallowed origin
// gets no CORS fields and is still proxied: the browser is the one that enforces.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::plugins::cors {

// The most bytes of Access-Control-Allow-Headers echoed from a preflight's
// Access-Control-Request-Headers: a browser asks for a handful of names, so a longer list is
// someone else's and need not be repeated.
inline constexpr std::size_t kMaxEchoedHeaderBytes = 1024;

// Everything decided at load: field values are ready to copy, lists already joined.
struct Config final : plugin::RouteConfig {
  bool anyOrigin = false;            // allow_origins: "*"
  std::vector<std::string> origins;  // exact origins, as the browser sends them
  std::string allowMethods;          // Access-Control-Allow-Methods value
  std::string allowHeaders;          // empty: echo Access-Control-Request-Headers
  std::string exposeHeaders;         // empty: field omitted
  bool allowCredentials = false;
  std::string maxAge;                // seconds; empty: field omitted
};

// The Access-Control-Allow-Headers value that echoes `requested` (the preflight's
// Access-Control-Request-Headers values): its elements that are header names (tokens), in order,
// joined with ", " while the result stays within kMaxEchoedHeaderBytes. Anything else is left
// out, so no byte the client chose beyond a header name reaches the answer.
std::string echoRequestedHeaders(std::span<const std::string_view> requested);

class Cors final : public plugin::Plugin {
 public:
  explicit Cors(const Config& config) : config_(config) {}
  plugin::Status onRequestHeaders(plugin::Context& ctx) override;
  plugin::Status onResponseHeaders(plugin::Context& ctx) override;

 private:
  const Config& config_;
  // The Access-Control-Allow-Origin value for this request (points into the config); null when
  // the request is not an allowed cross-origin one.
  const std::string* allowOrigin_ = nullptr;
  bool preflight_ = false;
};

}  // namespace gw::plugins::cors
