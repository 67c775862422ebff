#include "gateway/net/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace gw::net {
namespace {

constexpr int kMappedPrefix = 96;  // ::ffff:0:0/96 holds the IPv4-mapped addresses

IpAddress fromBytes(const uint8_t (&bytes)[16]) {
  IpAddress a;
  std::memcpy(a.words, bytes, sizeof bytes);
  return a;
}

IpAddress maskOf(int prefix) {
  uint8_t bytes[16] = {};
  for (int i = 0; i < 16; ++i) {
    const int bits = std::clamp(prefix - i * 8, 0, 8);
    bytes[i] = static_cast<uint8_t>(0xff00 >> bits);
  }
  return fromBytes(bytes);
}

IpAddress mapped(const void* ipv4) {
  uint8_t bytes[16] = {};
  bytes[10] = bytes[11] = 0xff;
  std::memcpy(bytes + 12, ipv4, 4);
  return fromBytes(bytes);
}

}  // namespace

std::optional<IpAddress> parseIpAddress(std::string_view text) {
  // inet_pton wants a C string; the longest IPv6 text form fits in INET6_ADDRSTRLEN.
  char buffer[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof buffer) return std::nullopt;
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  if (text.find(':') != std::string_view::npos) {
    uint8_t bytes[16] = {};
    if (inet_pton(AF_INET6, buffer, bytes) != 1) return std::nullopt;
    return fromBytes(bytes);
  }
  uint8_t ipv4[4];
  if (inet_pton(AF_INET, buffer, ipv4) != 1) return std::nullopt;
  return mapped(ipv4);
}

std::optional<IpAddress> ipAddressOf(const sockaddr* address) {
  if (address == nullptr) return std::nullopt;
  if (address->sa_family == AF_INET) {
    return mapped(&reinterpret_cast<const sockaddr_in*>(address)->sin_addr);
  }
  if (address->sa_family == AF_INET6) {
    uint8_t bytes[16];
    std::memcpy(bytes, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, sizeof bytes);
    return fromBytes(bytes);
  }
  return std::nullopt;
}

std::optional<IpNetwork> parseIpNetwork(std::string_view text, std::string& why) {
  const std::size_t slash = text.find('/');
  const std::string_view host = text.substr(0, slash);
  const std::optional<IpAddress> address = parseIpAddress(host);
  if (!address) {
    why = "not an IPv4 or IPv6 address";
    return std::nullopt;
  }
  const bool v4 = host.find(':') == std::string_view::npos;
  const int maxPrefix = v4 ? 32 : 128;
  int prefix = maxPrefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const char* end = digits.data() + digits.size();
    const bool number = !digits.empty() && digits.size() <= 3 &&
                        std::all_of(digits.begin(), digits.end(),
                                    [](char c) { return c >= '0' && c <= '9'; });
    if (!number || std::from_chars(digits.data(), end, prefix).ptr != end) {
      why = "the prefix length after '/' must be a number";
      return std::nullopt;
    }
    if (prefix > maxPrefix) {
      why = "prefix /" + std::to_string(prefix) + " is longer than " + std::to_string(maxPrefix) +
            " bits";
      return std::nullopt;
    }
  }
  IpNetwork network;
  network.mask = maskOf(v4 ? prefix + kMappedPrefix : prefix);
  network.address.words[0] = address->words[0] & network.mask.words[0];
  network.address.words[1] = address->words[1] & network.mask.words[1];
  return network;
}

bool anyContains(std::span<const IpNetwork> networks, const IpAddress& address) {
  return std::any_of(networks.begin(), networks.end(),
                     [&](const IpNetwork& n) { return n.contains(address); });
}

}  // namespace gw::net
