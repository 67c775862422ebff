#include "plugins/request_id/request_id.h"

#include <algorithm>
#include <random>

#include "gateway/http/headers.h"

namespace gw::plugins::request_id {
namespace {

class Xoshiro256 {
 public:
  Xoshiro256() {
    std::random_device device;
    for (uint64_t& word : state_) word = (uint64_t{device()} << 32) | device();
  }
  uint64_t next() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> state_{};
};

bool isIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '+' || c == '/' || c == '=' || c == '-';
}

}  // namespace

bool isWellFormed(std::string_view id) {
  return !id.empty() && id.size() <= kMaxIdLength && std::all_of(id.begin(), id.end(), isIdChar);
}

std::string generateId() {
  static thread_local Xoshiro256 random;
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
