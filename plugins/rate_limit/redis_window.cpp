#include "plugins/rate_limit/redis_window.h"

#include <endian.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstring>

#include "gateway/redis/script.h"

namespace gw::plugins::rate_limit {
namespace {

// Operation for operation window_table.cpp's admit() (`want` admissions in a row); the
// differential test (test/integration/plugins/rate_limit_redis_test.cpp) runs both on random
// sequences. Lua 5.1 numbers are doubles, whose / and % are not exact: every division goes
// through idiv.
constexpr std::string_view kSource = R"lua(-- gatewayd rate_limit v2: sliding-window counter
-- KEYS[1] <prefix>rl:{scope:digest}, a hash with s<i> p<i> c<i> per limit i
-- ARGV[1] want: the requests waiting (store: redis) or the lease size (hybrid)
-- ARGV[2] share: 'all' grants min(want, left); 'half' at most half of what is left (at least 1)
-- ARGV[3] now in ms, or '' for Redis TIME
-- ARGV[2i+2], ARGV[2i+3] requests_i, window_ms_i
-- returns {granted, binding (0-based), remaining, reset_ms, retry_after_ms, valid_ms}
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local want, now = tonumber(ARGV[1]), tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + idiv(tonumber(t[2]), 1000)
end
local n = (#ARGV - 3) / 2
local names = {}
for i = 1, n do names[3*i-2], names[3*i-1], names[3*i] = 's'..i, 'p'..i, 'c'..i end
local v = redis.call('HMGET', KEYS[1], unpack(names))
local Q, W, S, P, C, E, L = {}, {}, {}, {}, {}, {}, {}
for i = 1, n do
  Q[i], W[i] = tonumber(ARGV[2*i+2]), tonumber(ARGV[2*i+3])
  S[i], P[i], C[i] = tonumber(v[3*i-2]), tonumber(v[3*i-1]) or 0, tonumber(v[3*i]) or 0
  if S[i] and S[i] > now then now = S[i] end
end
local minleft, maxw, valid
for i = 1, n do
  local w = W[i]
  local cur = idiv(now, w) * w
  if S[i] ~= cur then
    if S[i] and cur == S[i] + w then P[i] = C[i] else P[i] = 0 end
    C[i], S[i] = 0, cur
  end
  E[i] = now - cur + 1
  L[i] = idiv(Q[i] * w - (P[i] * (w - E[i]) + C[i] * w), w)
  if not minleft or L[i] < minleft then minleft = L[i] end
  if not maxw or w > maxw then maxw = w end
  if not valid or w - E[i] + 1 < valid then valid = w - E[i] + 1 end
end
local grant = 0
if minleft >= 1 then
  grant = math.min(want, minleft)
  if ARGV[2] == 'half' then grant = math.min(want, math.max(1, idiv(minleft, 2))) end
end
if grant > 0 then
  local f = {}
  for i = 1, n do
    C[i] = C[i] + grant
    local b = 6 * (i - 1)
    f[b+1], f[b+2], f[b+3], f[b+4], f[b+5], f[b+6] = 's'..i, S[i], 'p'..i, P[i], 'c'..i, C[i]
  end
  redis.call('HSET', KEYS[1], unpack(f))
  redis.call('PEXPIRE', KEYS[1], 2 * maxw)
end
local binding, remaining, reset, retry = 1, 0, 0, 0
if grant == 0 then
  for i = 1, n do
    if L[i] < 1 then
      local w, e, p, c, q = W[i], E[i], P[i], C[i], Q[i]
      local wait
      if c + 1 <= q and p > 0 then wait = w - idiv((q - c - 1) * w, p) - e
      else wait = (w - e) + math.max(1, w - idiv((q - 1) * w, c)) end
      if wait > retry then retry, binding = wait, i end
    end
  end
end
for i = 1, n do
  local w, e, p, c = W[i], E[i], P[i], C[i]
  local r = math.max(0, idiv(Q[i] * w - (p * (w - e) + c * w), w))
  local t = (c > 0 and 2 * w - e) or (p > 0 and w - e) or 0
  if (grant > 0 and (i == 1 or r < remaining)) or (grant == 0 and i == binding) then
    binding, remaining, reset = i, r, t
  end
end
return {grant, binding - 1, remaining, reset, retry, valid}
)lua";

uint64_t loadLittleEndian(const uint8_t* bytes) {
  uint64_t word = 0;
  std::memcpy(&word, bytes, sizeof word);
  return le64toh(word);
}

}  // namespace

void appendHex(uint64_t word, int digits, std::string& out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) out += kDigits[(word >> shift) & 0xf];
}

const redis::Script& windowScript() {
  static const redis::Script script("rate_limit", std::string(kSource));
  return script;
}

RedisWindow::RedisWindow(std::span<const Limit> limits, std::string scope)
    : scope_(std::move(scope)) {
  for (const Limit& limit : limits) {
    limitArgs_.push_back(std::to_string(limit.requests));
    limitArgs_.push_back(std::to_string(limit.windowMs));
    longestWindowMs_ = std::max(longestWindowMs_, limit.windowMs);
  }
}

void RedisWindow::formatKey(const redis::KeySpace& keySpace, const Digest& digest,
                            std::string& out) const {
  out.assign(keySpace.prefix);
  out += "rl:{";
  out += scope_;
  out += ':';
  appendHex(digest.hi, 16, out);
  appendHex(digest.lo, 16, out);
  out += '}';
}

std::size_t RedisWindow::args(std::string_view want, Share share, std::string_view now,
                              std::array<std::string_view, kMaxArgs>& out) const {
  out[0] = want;
  out[1] = share == Share::All ? "all" : "half";
  out[2] = now;
  std::copy(limitArgs_.begin(), limitArgs_.end(), out.begin() + 3);
  return 3 + limitArgs_.size();
}

Digest redisDigest(const redis::KeySpace& keySpace, std::span<const KeyPart> key) {
  const SipKey sipKey{loadLittleEndian(keySpace.digestKey.data()),
                      loadLittleEndian(keySpace.digestKey.data() + 8)};
  return digestOf(sipKey, key);
}

std::optional<Grant> decodeGrant(const redisReply* reply, std::size_t limits, int64_t want) {
  constexpr std::size_t kFields = 6;
  if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != kFields) return std::nullopt;
  int64_t field[kFields];
  for (std::size_t i = 0; i < kFields; ++i) {
    const redisReply* element = reply->element[i];
    if (!element || element->type != REDIS_REPLY_INTEGER || element->integer < 0) {
      return std::nullopt;
    }
    field[i] = element->integer;
  }
  const auto [granted, binding, remaining, reset, retry, valid] = field;
  if (granted > want || static_cast<uint64_t>(binding) >= limits || valid < 1 ||
      (granted > 0) != (retry == 0)) {
    return std::nullopt;
  }
  Grant grant;
  grant.granted = granted;
  grant.validMs = valid;
  grant.decision.allowed = granted >= 1;
  grant.decision.limit = static_cast<std::size_t>(binding);
  grant.decision.remaining = remaining;
  grant.decision.resetMs = reset;
  grant.decision.retryAfterMs = retry;
  return grant;
}

}  // namespace gw::plugins::rate_limit
