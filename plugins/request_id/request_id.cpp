#include "plugins/request_id/request_id.h"

#include <algorithm>

#include "gateway/core/fast_random.h"
#include "gateway/http/headers.h"

namespace gw::plugins::request_id {
namespace {

bool isIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '+' || c == '/' || c == '=' || c == '-';
}

}  // namespace

bool isWellFormed(std::string_view id) {
  return !id.empty() && id.size() <= kMaxIdLength && std::all_of(id.begin(), id.end(), isIdChar);
}

std::string generateId() {
  static thread_local core::FastRandom random;
  constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (std::size_t half = 0; half < 2; ++half) {
    uint64_t bits = random.next();
    for (std::size_t i = 0; i < 16; ++i, bits >>= 4) id[half * 16 + i] = kHex[bits & 0xf];
  }
  return id;
}

plugin::Status RequestId::onRequestHeaders(plugin::Context& ctx) {
  plugin::HeaderMap& headers = ctx.requestHeaders();
  // Of several incoming fields, the first well-formed one wins.
  std::optional<std::string_view> incoming;
  if (config_.acceptIncoming) {
    headers.forEach([&](std::string_view name, std::string_view value) {
      if (!http::iequals(name, config_.header) || !isWellFormed(value)) return true;
      incoming = value;
      return false;
    });
  }
  ctx.setRequestId(incoming ? std::string(*incoming) : generateId());
  // Also replaces a malformed or repeated incoming field, so the upstream sees exactly one id.
  headers.set(config_.header, ctx.requestId());
  return plugin::Status::Continue;
}

plugin::Status RequestId::onResponseHeaders(plugin::Context& ctx) {
  if (config_.responseHeader) ctx.responseHeaders().set(config_.header, ctx.requestId());
  return plugin::Status::Continue;
}

}  // namespace gw::plugins::request_id
