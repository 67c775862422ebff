#pragma once
// ip_filter: answers 403 FORBIDDEN to clients whose address is in `deny`, or not in `allow` when an
// allow list is given. Deny wins over allow. Addresses and blocks are net::IpAddress/IpNetwork
// (IPv4 kept IPv4-mapped, so one comparison covers both families).

#include <vector>

#include "gateway/net/cidr.h"
#include "gateway/plugin/plugin.h"

namespace gw::plugins::ip_filter {

// The answer to a client the filter refuses.
inline constexpr core::ErrorCode kForbidden{403, "FORBIDDEN"};

struct Config final : plugin::RouteConfig {
  std::vector<net::IpNetwork> allow;  // empty: every address not denied passes
  std::vector<net::IpNetwork> deny;

  bool permits(const net::IpAddress& client) const;
};

class IpFilter final : public plugin::Plugin {
 public:
  explicit IpFilter(const Config& config) : config_(config) {}
  plugin::Status onRequestHeaders(plugin::Context& ctx) override;

 private:
  const Config& config_;
};

}  // namespace gw::plugins::ip_filter
