#pragma once
// The request's key for `load_balancing: {policy: hash}`: a stable 64-bit hash of one header's
// value, one cookie's value, or the client's address, computed once per exchange where the
// request head is at hand and handed to the Forwarder (Cluster::pick). None when the request
// lacks the header or cookie: the upstream then balances it round robin.

#include <cstdint>
#include <optional>
#include <string_view>

#include "gateway/config/model.h"
#include "gateway/http/headers.h"
#include "gateway/upstream/maglev.h"

namespace gw::proxy {

// The value of cookie `name` in one Cookie field ("a=1; b=2", RFC 6265 §4.2.1), or none.
std::optional<std::string_view> cookieValue(std::string_view field, std::string_view name);

// `fields` as in upstream_request.h (ParserFields or ListFields). The first field of the name
// counts; for cookies, the first Cookie field that holds the cookie.
template <typename Fields>
std::optional<uint64_t> balanceKey(const config::LoadBalancing& balancing, const Fields& fields,
                                   std::string_view clientIp) {
  if (balancing.hash_source == config::HashSource::ClientIp) {
    if (clientIp.empty()) return std::nullopt;
    return upstream::balanceHash(clientIp);
  }
  const bool cookie = balancing.hash_source == config::HashSource::Cookie;
  const std::string_view wanted = cookie ? std::string_view("cookie") : balancing.hash_name;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (!http::iequals(fields.name(i), wanted)) continue;
    if (!cookie) return upstream::balanceHash(fields.value(i));
    if (const auto value = cookieValue(fields.value(i), balancing.hash_name)) {
      return upstream::balanceHash(*value);
    }
  }
  return std::nullopt;
}

}  // namespace gw::proxy
