#pragma once
// security_headers: helmet's default response headers on every response of the route, including
// the ones the gateway answers itself (the engine runs response phases on local replies too).

#include <array>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::plugins::security_headers {

struct Header {
  std::string_view name;
  std::string_view value;
};

// helmet 7's defaults, in the order helmet sets them.
inline constexpr std::array<Header, 12> kDefaults{{
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
}};

// Everything decided at load: the final list of fields to set and what to remove.
struct Config final : plugin::RouteConfig {
  std::vector<std::pair<std::string, std::string>> headers;  // name, value; in output order
  bool keepUpstreamValues = false;  // true: a field the upstream already set is left as it is
  bool hidePoweredBy = true;
  bool hideServer = false;
};

class SecurityHeaders final : public plugin::Plugin {
 public:
  explicit SecurityHeaders(const Config& config) : config_(config) {}
  plugin::Status onResponseHeaders(plugin::Context& ctx) override;
  bool recycle() noexcept override { return true; }  // nothing per request

 private:
  const Config& config_;
};

}  // namespace gw::plugins::security_headers
