#pragma once
// rate_limit: admits a request only if every configured limit of its key admits it (sliding-window
// counter, see window_table.h for the estimate and its error bound), answers 429
// RATE_LIMIT_EXCEEDED with Retry-After otherwise, and reports the quota on every response.
//
// Admitted requests count toward all limits, refused ones toward none: a client that keeps
// hammering while limited is not punished beyond the limit, and one limit refusing does not eat
// the quota of the others. Shadow mode runs the exact same accounting (so what it reports is
// what enforce would have done) but lets refused requests through.
//
// A header key part must come in one field of at most max_key_bytes: a repeated one is refused
// with 400, a longer one with 431, in both modes.
//
// Where the counters live (`store`): in a table of this process (local, the default), or in
// Redis, shared by every instance (redis: the request waits for a script call that decides for it
// and for the key's other requests waiting on this worker; hybrid: leases of quota; both in
// lease_table.h). When Redis cannot answer,
// `on_redis_error` decides: allow (count in the local table meanwhile, which can still refuse) or
// deny (503 RATE_LIMIT_UNAVAILABLE). Refusals are remembered per worker (refusal_memo.h), so a
// limited client's flood does not reach Redis.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/plugin/plugin.h"
#include "gateway/redis/client.h"
#include "plugins/rate_limit/lease_table.h"
#include "plugins/rate_limit/redis_window.h"
#include "plugins/rate_limit/refusal_memo.h"
#include "plugins/rate_limit/window_table.h"

namespace gw::plugins::rate_limit {

// The answer to a request over an enforced limit.
inline constexpr core::ErrorCode kRateLimitExceeded{429, "RATE_LIMIT_EXCEEDED"};
// The answer when Redis cannot decide and on_redis_error is deny.
inline constexpr core::ErrorCode kRateLimitUnavailable{503, "RATE_LIMIT_UNAVAILABLE"};

// Key part kinds; also KeyPart::kind in the table.
enum class KeyKind : uint8_t { ClientIp = 1, Header = 2, Route = 3 };

struct KeySpec {
  KeyKind kind = KeyKind::ClientIp;
  std::string header;  // KeyKind::Header only
};

enum class MissingKey : uint8_t { ClientIp, Reject };
enum class HeaderStyle : uint8_t { Draft, Legacy, X, Off };
enum class Mode : uint8_t { Enforce, Shadow };
enum class Store : uint8_t { Local, Redis, Hybrid };
enum class OnRedisError : uint8_t { Allow, Deny };

// The settings of store: redis|hybrid (ignored by local).
struct RedisSettings {
  static constexpr int64_t kDefaultBatch = 16;
  static constexpr int64_t kMaxBatchFactor = 16;  // max_batch's default: 16 x batch
  static constexpr std::size_t kDefaultMemoKeys = 4096;
  Store store = Store::Local;
  OnRedisError onError = OnRedisError::Allow;
  std::string scope;  // "" at parse: derived from the limits and the key (defaultScope)
  int64_t batch = kDefaultBatch;                       // hybrid: a key's first lease size
  int64_t maxBatch = kMaxBatchFactor * kDefaultBatch;  // hybrid: a hot key's lease grows to this
  std::size_t memoKeys = kDefaultMemoKeys;
};

// The plugin's counters, by number (Context::count(slots.counters + number)), and their families.
enum Counter : uint32_t {
  kRejections,      // enforced: answered 429
  kShadowExceeded,  // shadow mode: over the limit but let through
  kFallbackAllow,   // Redis could not decide; on_redis_error: allow
  kFallbackDeny,    // Redis could not decide; on_redis_error: deny
  kMemoRefusals,    // refused from the refusal memo, without asking Redis
  kRedisCalls,      // script calls sent to Redis
  kRedisWaits,      // requests that waited for a call's reply
};
inline constexpr std::string_view kPolicyValues[] = {"allow", "deny"};
inline constexpr observability::CounterFamily kCounterFamilies[] = {
    {"gatewayd_rate_limit_rejections_total",
     "Requests rejected by an enforced rate limit, by route.",
     "",
     {}},
    {"gatewayd_rate_limit_shadow_exceeded_total",
     "Requests over a shadow-mode rate limit (let through), by route.",
     "",
     {}},
    {"gatewayd_rate_limit_redis_fallback_total",
     "Requests Redis could not decide on (unreachable, timed out, bad reply), by route and "
     "on_redis_error policy.",
     "policy", kPolicyValues},
    {"gatewayd_rate_limit_memo_refusals_total",
     "Requests refused from the refusal memo without asking Redis, by route.",
     "",
     {}},
    {"gatewayd_rate_limit_redis_calls_total",
     "Script calls sent to Redis by store: redis or hybrid (one per group of a key's requests "
     "waiting together, or per lease), by route.",
     "",
     {}},
    {"gatewayd_rate_limit_redis_waits_total",
     "Requests that waited for Redis's answer (store: redis: each one Redis decides; hybrid: "
     "those that found no usable lease), by route.",
     "",
     {}},
};
// The access-log field: "allowed", "rejected", "shadow" (over the limit, let through),
// "fallback" (Redis could not decide; admitted by the local table), "unavailable" (Redis could
// not decide; on_redis_error: deny).
inline constexpr std::string_view kLogFields[] = {"rate_limit"};

struct NamedLimit {
  Limit limit;
  std::string name;  // the policy name in RateLimit-Policy / RateLimit
};

class Config final : public plugin::RouteConfig {
 public:
  static constexpr std::size_t kMaxKeyParts = 8;
  static constexpr std::size_t kDefaultMaxKeys = 100000;
  static constexpr std::size_t kDefaultMaxKeyBytes = 1024;

  Config(std::vector<NamedLimit> limits, std::vector<KeySpec> key, MissingKey missingKey,
         HeaderStyle headers, Mode mode, std::size_t maxKeys, std::size_t maxKeyBytes,
         RedisSettings redis = {});

  bool usesRedis() const override { return redis_.store != Store::Local; }

  const std::vector<NamedLimit>& limits() const { return limits_; }
  const std::vector<KeySpec>& key() const { return key_; }
  MissingKey missingKey() const { return missingKey_; }
  HeaderStyle headers() const { return headers_; }
  Mode mode() const { return mode_; }
  // The longest header value accepted as a key part; longer ones are refused with 431.
  std::size_t maxKeyBytes() const { return maxKeyBytes_; }
  // RateLimit-Policy's value, built once: `"name";q=10;w=1, ...`.
  const std::string& policyField() const { return policyField_; }
  const RedisSettings& redis() const { return redis_; }
  const RedisWindow& window() const { return window_; }

  // Shared mutable state of an otherwise immutable config: thread-safe by construction.
  WindowTable& table() const { return table_; }

 private:
  std::vector<NamedLimit> limits_;
  std::vector<KeySpec> key_;
  MissingKey missingKey_;
  HeaderStyle headers_;
  Mode mode_;
  std::size_t maxKeyBytes_;
  std::string policyField_;
  RedisSettings redis_;
  RedisWindow window_;
  // local's counters; with redis|hybrid the fallback of on_redis_error: allow.
  mutable WindowTable table_;
};

// The scope a redis|hybrid entry has when none is set: 8 hex digits of a hash of its limits and
// key, so instances with the same settings share counters and two tiers on one route do not.
std::string defaultScope(const std::vector<NamedLimit>& limits, const std::vector<KeySpec>& key);

// A worker's state for store: redis|hybrid.
struct RedisWorkerState final : plugin::WorkerState {
  RedisWorkerState(const Config& config, plugin::Dispatcher& dispatcher)
      : memo(config.redis().memoKeys),
        leases(dispatcher, config.window(),
               config.redis().store == Store::Hybrid ? Grants::Lease : Grants::Exact,
               config.redis().batch, config.redis().maxBatch, config.redis().memoKeys, memo) {}
  // The script loaded on `client` (on the worker's thread: the worker state may be made on
  // another), once per connection. A new connection at the address of an old one is not told,
  // and answers the first EVALSHA with NOSCRIPT, which the client resends as EVAL.
  void useScriptOn(redis::Client& client) {
    if (scriptLoadedOn_ == &client) return;
    client.use(windowScript());
    scriptLoadedOn_ = &client;
  }
  RefusalMemo memo;
  LeaseTable leases;

 private:
  const redis::Client* scriptLoadedOn_ = nullptr;
};

class RateLimit final : public plugin::Plugin, private LeaseWaiter {
 public:
  RateLimit(const Config& config, plugin::Slots slots, RedisWorkerState* state)
      : config_(config), slots_(slots), state_(state) {}
  plugin::Status onRequestHeaders(plugin::Context& ctx) override;
  plugin::Status onResponseHeaders(plugin::Context& ctx) override;
  void onDestroy() noexcept override {
    LeaseWaiter::leave();
    ctx_ = nullptr;
  }
  bool recycle() noexcept override {
    decision_.reset();
    refused_ = false;
    unavailable_ = false;
    ctx_ = nullptr;
    return true;
  }

 private:
  std::span<const KeyPart> parts() const { return {parts_.data(), partCount_}; }
  plugin::Status askRedis(plugin::Context& ctx);
  // Notes, counts and answers the decision in decision_.
  plugin::Status conclude(plugin::Context& ctx);
  // Redis could not decide: on_redis_error.
  plugin::Status fallBack(plugin::Context& ctx);
  // The answer to a Stop: the decision, or null when Redis could not decide; resumes the
  // exchange.
  void onLease(const Decision* decision, redis::Failure failure) override;

  const Config& config_;
  plugin::Slots slots_;
  RedisWorkerState* state_;           // store: redis|hybrid only
  std::optional<Decision> decision_;  // none if an earlier plugin answered, or the key was missing
  bool refused_ = false;              // we answered 429
  bool unavailable_ = false;          // we answered 503 (on_redis_error: deny)
  // While waiting for Redis: the exchange, and the key (its texts live in the exchange).
  plugin::Context* ctx_ = nullptr;
  std::array<KeyPart, Config::kMaxKeyParts> parts_;
  std::size_t partCount_ = 0;
};

// Whole seconds for a header, rounded up so a client waiting that long is never early.
int64_t ceilSeconds(int64_t ms);

}  // namespace gw::plugins::rate_limit
