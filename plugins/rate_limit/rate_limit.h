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

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/plugin/plugin.h"
#include "plugins/rate_limit/window_table.h"

namespace gw::plugins::rate_limit {

// The answer to a request over an enforced limit.
inline constexpr core::ErrorCode kRateLimitExceeded{429, "RATE_LIMIT_EXCEEDED"};

// Key part kinds; also KeyPart::kind in the table.
enum class KeyKind : uint8_t { ClientIp = 1, Header = 2, Route = 3 };

struct KeySpec {
  KeyKind kind = KeyKind::ClientIp;
  std::string header;  // KeyKind::Header only
};

enum class MissingKey : uint8_t { ClientIp, Reject };
enum class HeaderStyle : uint8_t { Draft, Legacy, X, Off };
enum class Mode : uint8_t { Enforce, Shadow };

// The plugin's counters, by number (Context::count(slots.counters + number)), and their families.
enum Counter : uint32_t {
  kRejections,      // enforced: answered 429
  kShadowExceeded,  // shadow mode: over the limit but let through
};
inline constexpr observability::CounterFamily kCounterFamilies[] = {
    {"gatewayd_rate_limit_rejections_total",
     "Requests rejected by an enforced rate limit, by route.",
     "",
     {}},
    {"gatewayd_rate_limit_shadow_exceeded_total",
     "Requests over a shadow-mode rate limit (let through), by route.",
     "",
     {}},
};
// The access-log field: "allowed", "rejected", "shadow" (over the limit, let through).
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
         HeaderStyle headers, Mode mode, std::size_t maxKeys, std::size_t maxKeyBytes);

  const std::vector<NamedLimit>& limits() const { return limits_; }
  const std::vector<KeySpec>& key() const { return key_; }
  MissingKey missingKey() const { return missingKey_; }
  HeaderStyle headers() const { return headers_; }
  Mode mode() const { return mode_; }
  // The longest header value accepted as a key part; longer ones are refused with 431.
  std::size_t maxKeyBytes() const { return maxKeyBytes_; }
  // RateLimit-Policy's value, built once: `"name";q=10;w=1, ...`.
  const std::string& policyField() const { return policyField_; }

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
  mutable WindowTable table_;
};

class RateLimit final : public plugin::Plugin {
 public:
  RateLimit(const Config& config, plugin::Slots slots) : config_(config), slots_(slots) {}
  plugin::Status onRequestHeaders(plugin::Context& ctx) override;
  plugin::Status onResponseHeaders(plugin::Context& ctx) override;
  bool recycle() noexcept override {
    decision_.reset();
    refused_ = false;
    return true;
  }

 private:
  const Config& config_;
  plugin::Slots slots_;
  std::optional<Decision> decision_;  // none if an earlier plugin answered, or the key was missing
  bool refused_ = false;              // we answered 429
};

// Whole seconds for a header, rounded up so a client waiting that long is never early.
int64_t ceilSeconds(int64_t ms);

}  // namespace gw::plugins::rate_limit
