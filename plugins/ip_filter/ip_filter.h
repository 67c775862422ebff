#pragma once
// ip_filter: answers 403 FORBIDDEN to clients whose address is in `deny`, or not in `allow` when an
// allow list is given. Deny wins over allow. IPv4 is kept in its IPv4-mapped IPv6 form
// (::ffff:a.b.c.d), so one 128-bit comparison covers both families and a client that reaches a
// dual-stack listener as ::ffff:10.1.2.3 matches 10.0.0.0/8.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::plugins::ip_filter {

// 128 bits as two words in memory order: masking is bytewise, so host byte order does not matter.
struct Address {
  uint64_t words[2] = {0, 0};
};

// A CIDR block with its mask precomputed; `address` has the host bits cleared.
struct Network {
  Address address;
  Address mask;
  bool contains(const Address& a) const {
    return ((a.words[0] & mask.words[0]) == address.words[0]) &&
           ((a.words[1] & mask.words[1]) == address.words[1]);
  }
};

// An IPv4 or IPv6 literal (no zone, no brackets); IPv4 comes back IPv4-mapped.
std::optional<Address> parseAddress(std::string_view text);
// "10.0.0.0/8", "2001:db8::/32", or a bare address (= /32 or /128). Host bits below the prefix
// are ignored. On failure returns nothing and says why in `why`.
std::optional<Network> parseNetwork(std::string_view text, std::string& why);

struct Config final : plugin::RouteConfig {
  std::vector<Network> allow;  // empty: every address not denied passes
  std::vector<Network> deny;

  bool permits(const Address& client) const;
};

class IpFilter final : public plugin::Plugin {
 public:
  explicit IpFilter(const Config& config) : config_(config) {}
  plugin::Status onRequestHeaders(plugin::Context& ctx) override;

 private:
  const Config& config_;
};

}  // namespace gw::plugins::ip_filter
