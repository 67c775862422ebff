#pragma once
// IP addresses and CIDR blocks as 128-bit values: IPv4 is kept in its IPv4-mapped IPv6 form
// (::ffff:a.b.c.d), so one comparison covers both families and a client that reaches a
// dual-stack listener as ::ffff:10.1.2.3 matches 10.0.0.0/8. Parsed at load, compared per request.

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace gw::net {

// 128 bits as two words in memory order: masking is bytewise, so host byte order does not matter.
struct IpAddress {
  uint64_t words[2] = {0, 0};
};

// A CIDR block with its mask precomputed; `address` has the host bits cleared.
struct IpNetwork {
  IpAddress address;
  IpAddress mask;
  bool contains(const IpAddress& a) const {
    return ((a.words[0] & mask.words[0]) == address.words[0]) &&
           ((a.words[1] & mask.words[1]) == address.words[1]);
  }
};

// An IPv4 or IPv6 literal (no zone, no brackets); IPv4 comes back IPv4-mapped.
std::optional<IpAddress> parseIpAddress(std::string_view text);
// The address of an AF_INET or AF_INET6 socket address; nothing for other families.
std::optional<IpAddress> ipAddressOf(const sockaddr* address);
// "10.0.0.0/8", "2001:db8::/32", or a bare address (= /32 or /128). Host bits below the prefix
// are ignored. On failure returns nothing and says why in `why`.
std::optional<IpNetwork> parseIpNetwork(std::string_view text, std::string& why);
bool anyContains(std::span<const IpNetwork> networks, const IpAddress& address);

}  // namespace gw::net
