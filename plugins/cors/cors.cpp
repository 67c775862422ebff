#include "plugins/cors/cors.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "gateway/http/headers.h"

namespace gw::plugins::cors {
namespace {

const std::string kStar = "*";

// The Origin of a request that has exactly one. Two make it unclear which origin the browser
// meant (a proxy may have added one): such a request is treated as not allowed.
std::optional<std::string_view> singleOrigin(const plugin::HeaderMap& request) {
  std::optional<std::string_view> origin;
  std::size_t count = 0;
  request.forEach([&](std::string_view name, std::string_view value) {
    if (http::iequals(name, "Origin")) {
      origin = value;
      ++count;
    }
    return count < 2;
  });
  if (count != 1) return std::nullopt;
  return origin;
}

}  // namespace

std::string echoRequestedHeaders(std::span<const std::string_view> requested) {
  std::string echoed;
  for (const std::string_view value : requested) {
    http::ListElements elements(value);
    std::string_view name;
    while (elements.next(name)) {
      if (!http::isToken(name)) continue;
      const std::size_t separator = echoed.empty() ? 0 : 2;
      if (echoed.size() + separator + name.size() > kMaxEchoedHeaderBytes) return echoed;
      if (separator != 0) echoed += ", ";
      echoed += name;
    }
  }
  return echoed;
}

plugin::Status Cors::onRequestHeaders(plugin::Context& ctx) {
  plugin::HeaderMap& request = ctx.requestHeaders();
  const auto origin = singleOrigin(request);
  if (!origin) return plugin::Status::Continue;
  if (config_.anyOrigin) {
    allowOrigin_ = &kStar;
  } else {
    // Origins are compared exactly (RFC 6454 serialisation), as browsers send them.
    const auto found = std::find(config_.origins.begin(), config_.origins.end(), *origin);
    if (found == config_.origins.end()) return plugin::Status::Continue;
    allowOrigin_ = &*found;
  }
  if (ctx.request().method == "OPTIONS" && request.get("Access-Control-Request-Method")) {
    preflight_ = true;
    ctx.reply(204, "", "text/plain");
    return plugin::Status::Respond;
  }
  return plugin::Status::Continue;
}

plugin::Status Cors::onResponseHeaders(plugin::Context& ctx) {
  plugin::HeaderMap& response = ctx.responseHeaders();
  // The answer depends on Origin whenever origins are listed, also for requests without one or
  // from a refused origin: a shared cache must not serve one origin's answer to another.
  if (!config_.anyOrigin) response.add("Vary", "Origin");
  if (allowOrigin_ == nullptr) return plugin::Status::Continue;
  response.set("Access-Control-Allow-Origin", *allowOrigin_);
  if (config_.allowCredentials) response.set("Access-Control-Allow-Credentials", "true");
  if (!preflight_) {
    if (!config_.exposeHeaders.empty()) {
      response.set("Access-Control-Expose-Headers", config_.exposeHeaders);
    }
    return plugin::Status::Continue;
  }
  response.set("Access-Control-Allow-Methods", config_.allowMethods);
  if (!config_.allowHeaders.empty()) {
    response.set("Access-Control-Allow-Headers", config_.allowHeaders);
  } else {
    std::vector<std::string_view> requested;
    ctx.requestHeaders().forEach([&](std::string_view name, std::string_view value) {
      if (http::iequals(name, "Access-Control-Request-Headers")) requested.push_back(value);
      return true;
    });
    const std::string echoed = echoRequestedHeaders(requested);
    if (!echoed.empty()) response.set("Access-Control-Allow-Headers", echoed);
  }
  if (!config_.maxAge.empty()) response.set("Access-Control-Max-Age", config_.maxAge);
  return plugin::Status::Continue;
}

}  // namespace gw::plugins::cors
