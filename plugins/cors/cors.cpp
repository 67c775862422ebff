#include "plugins/cors/cors.h"

#include <algorithm>

namespace gw::plugins::cors {
namespace {

const std::string kStar = "*";

}  // namespace

plugin::Status Cors::onRequestHeaders(plugin::Context& ctx) {
  plugin::HeaderMap& request = ctx.requestHeaders();
  const auto origin = request.get("Origin");
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
  } else if (const auto asked = ctx.requestHeaders().get("Access-Control-Request-Headers")) {
    response.set("Access-Control-Allow-Headers", *asked);
  }
  if (!config_.maxAge.empty()) response.set("Access-Control-Max-Age", config_.maxAge);
  return plugin::Status::Continue;
}

}  // namespace gw::plugins::cors
