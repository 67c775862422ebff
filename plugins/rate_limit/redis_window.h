#pragma once
// The sliding-window counter of window_table.h kept in Redis (`store: redis` and `hybrid`): one
// Lua script checks and counts atomically, operation for operation as WindowTable::admit does, so
// every instance sharing the Redis shares the limit. This file holds the script, how a call is
// spelled (key name, arguments) and how its reply is read.
//
// Keys: one hash per client key, `<key_prefix>rl:{<scope>:<digest>}`, fields s<i> p<i> c<i>
// (window start, previous and current count of limit i, as WindowTable::Slot). The digest is the
// key's SipHash under the Redis key space's deterministic key, so every instance names a client
// alike and Redis never holds a raw IP or API key. The hash tag holds the whole identity, so a
// Redis Cluster keeps a client's windows on one slot. Each admission sets a TTL of twice the
// longest window (after two windows both counts weigh 0, so expiry loses nothing); refusals only
// read.
//
// Time comes from Redis (TIME), so the instances agree on window boundaries whatever their clocks;
// it is clamped to the stored window starts, so a clock step back never rolls a window back.
// Lua numbers are doubles: every product stays exact while requests x window_ms <= 2^53, which
// the config checks for these stores (kMaxExactProduct).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/redis/client.h"
#include "plugins/rate_limit/window_table.h"

namespace gw::redis {
class Script;
}

namespace gw::plugins::rate_limit {

// requests x window_ms of one limit at most this with store: redis|hybrid (exact in a double).
inline constexpr int64_t kMaxExactProduct = int64_t{1} << 53;

// The script; loaded on every worker's connection (Client::use) by the rate_limit worker state.
const redis::Script& windowScript();

// What one script call decided.
struct Grant {
  int64_t granted = 0;  // requests admitted and counted: 0 (refused) .. want
  Decision decision;    // as WindowTable::admit gives it (allowed = granted >= 1)
  int64_t validMs = 0;  // ms until the earliest of the key's windows ends (a lease's lifetime)
};

// How much of what is left a call may take.
enum class Share : uint8_t {
  All,   // min(want, left): every request asked for is waiting (store: redis)
  Half,  // at most half of what is left, at least 1: a lease, so one worker cannot starve the
         // others (hybrid)
};

// Everything about a call that depends on the configuration only, built once at load.
class RedisWindow {
 public:
  static constexpr std::size_t kMaxArgs = 3 + 2 * WindowTable::kMaxLimits;

  RedisWindow(std::span<const Limit> limits, std::string scope);

  const std::string& scope() const { return scope_; }
  std::size_t limitCount() const { return limitArgs_.size() / 2; }
  // The longest window; the TTL the script sets is twice it.
  int64_t longestWindowMs() const { return longestWindowMs_; }

  // `<prefix>rl:{<scope>:<32 hex digits>}` into `out` (reused, so steady state allocates nothing).
  void formatKey(const redis::KeySpace& keySpace, const Digest& digest, std::string& out) const;
  // ARGV: `want` (a decimal count), the share, `now` (ms in decimal; "" for Redis's clock), then
  // each limit's requests and window in ms. Views into this object and the arguments (and static
  // text); returns how many.
  std::size_t args(std::string_view want, Share share, std::string_view now,
                   std::array<std::string_view, kMaxArgs>& out) const;

 private:
  std::string scope_;
  std::vector<std::string> limitArgs_;  // requests_1, window_ms_1, requests_2, ...
  int64_t longestWindowMs_ = 0;
};

// The digest of a key in Redis key names: deterministic (keyed by the key space), unlike the
// process-local table's random key.
Digest redisDigest(const redis::KeySpace& keySpace, std::span<const KeyPart> key);

// The low `digits` hex digits of `word`, most significant first, appended to `out`.
void appendHex(uint64_t word, int digits, std::string& out);

// The script's reply, checked: nullopt for any other shape (the caller's BadReply), including
// counts out of range for a call that asked for `want` with `limits` limits.
std::optional<Grant> decodeGrant(const redisReply* reply, std::size_t limits, int64_t want);

}  // namespace gw::plugins::rate_limit
