#include "plugins/security_headers/security_headers.h"

namespace gw::plugins::security_headers {

plugin::Status SecurityHeaders::onResponseHeaders(plugin::Context& ctx) {
  plugin::HeaderMap& headers = ctx.responseHeaders();
  // Removal first, so that `headers: {Server: ...}` with hide_server replaces the upstream's.
  if (config_.hidePoweredBy) headers.remove("X-Powered-By");
  if (config_.hideServer) headers.remove("Server");
  for (const auto& [name, value] : config_.headers) {
    if (!config_.keepUpstreamValues) {
      headers.set(name, value);
    } else if (!headers.get(name)) {
      headers.add(name, value);
    }
  }
  return plugin::Status::Continue;
}

}  // namespace gw::plugins::security_headers
