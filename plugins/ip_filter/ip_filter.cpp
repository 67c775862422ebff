#include "plugins/ip_filter/ip_filter.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace gw::plugins::ip_filter {
namespace {

constexpr int kMappedPrefix = 96;  // ::ffff:0:0/96 holds the IPv4-mapped addresses

Address fromBytes(const uint8_t (&bytes)[16]) {
  Address a;
  std::memcpy(a.words, bytes, sizeof bytes);
  return a;
}

Address maskOf(int prefix) {
  uint8_t bytes[16] = {};
  for (int i = 0; i < 16; ++i) {
    const int bits = std::clamp(prefix - i * 8, 0, 8);
    bytes[i] = static_cast<uint8_t>(0xff00 >> bits);
  }
  return fromBytes(bytes);
}

}  // namespace

std::optional<Address> parseAddress(std::string_view text) {
  // inet_pton wants a C string; the longest IPv6 text form fits in INET6_ADDRSTRLEN.
  char buffer[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof buffer) return std::nullopt;
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  uint8_t bytes[16] = {};
  if (text.find(':') != std::string_view::npos) {
    if (inet_pton(AF_INET6, buffer, bytes) != 1) return std::nullopt;
  } else {
    bytes[10] = bytes[11] = 0xff;
    if (inet_pton(AF_INET, buffer, bytes + 12) != 1) return std::nullopt;
  }
  return fromBytes(bytes);
}

std::optional<Network> parseNetwork(std::string_view text, std::string& why) {
  const std::size_t slash = text.find('/');
  const std::string_view host = text.substr(0, slash);
  const std::optional<Address> address = parseAddress(host);
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
  Network network;
  network.mask = maskOf(v4 ? prefix + kMappedPrefix : prefix);
  network.address.words[0] = address->words[0] & network.mask.words[0];
  network.address.words[1] = address->words[1] & network.mask.words[1];
  return network;
}

bool Config::permits(const Address& client) const {
  const auto in = [&](const Network& n) { return n.contains(client); };
  if (std::any_of(deny.begin(), deny.end(), in)) return false;
  return allow.empty() || std::any_of(allow.begin(), allow.end(), in);
}

plugin::Status IpFilter::onRequestHeaders(plugin::Context& ctx) {
  // An address we cannot read is refused: the filter fails closed.
  const std::optional<Address> client = parseAddress(ctx.request().clientIp);
  if (client && config_.permits(*client)) return plugin::Status::Continue;
  ctx.fail(core::Error::downstream(core::ErrorCode::Forbidden,
                                   "the client address is not allowed on this route"));
  return plugin::Status::Respond;
}

}  // namespace gw::plugins::ip_filter
