#include "plugins/ip_filter/ip_filter.h"

#include <optional>

namespace gw::plugins::ip_filter {

bool Config::permits(const net::IpAddress& client) const {
  if (net::anyContains(deny, client)) return false;
  return allow.empty() || net::anyContains(allow, client);
}

plugin::Status IpFilter::onRequestHeaders(plugin::Context& ctx) {
  // An address we cannot read is refused: the filter fails closed.
  const std::optional<net::IpAddress> client = net::parseIpAddress(ctx.request().clientIp);
  if (client && config_.permits(*client)) return plugin::Status::Continue;
  ctx.fail(core::Error::downstream(kForbidden,
                                   "the client address is not allowed on this route"));
  return plugin::Status::Respond;
}

}  // namespace gw::plugins::ip_filter
