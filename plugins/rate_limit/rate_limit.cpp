#include "plugins/rate_limit/rate_limit.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>
#include <utility>

#include "gateway/http/headers.h"
#include "gateway/observability/metrics.h"

namespace gw::plugins::rate_limit {
namespace {

std::vector<Limit> bareLimits(const std::vector<NamedLimit>& limits) {
  std::vector<Limit> out;
  for (const NamedLimit& l : limits) out.push_back(l.limit);
  return out;
}

// A fixed buffer for one header value: names are at most 64 bytes (config), numbers 20.
class FieldWriter {
 public:
  FieldWriter& text(std::string_view s) {
    const std::size_t n = std::min(s.size(), buffer_.size() - size_);
    if (n > 0) std::memcpy(buffer_.data() + size_, s.data(), n);
    size_ += n;
    return *this;
  }
  FieldWriter& number(int64_t n) {
    const auto [end, ec] =
        std::to_chars(buffer_.data() + size_, buffer_.data() + buffer_.size(), n);
    if (ec == std::errc()) size_ = static_cast<std::size_t>(end - buffer_.data());
    return *this;
  }
  std::string_view view() const { return {buffer_.data(), size_}; }

 private:
  std::array<char, 160> buffer_;  // no zeroing: only view()'s bytes are ever read
  std::size_t size_ = 0;
};

// The value of the one field named `name` ("" when there is none); nullopt when there are several.
std::optional<std::string_view> onlyValue(const plugin::HeaderMap& headers, std::string_view name) {
  std::string_view found;
  int count = 0;
  headers.forEach([&](std::string_view fieldName, std::string_view value) {
    if (!http::iequals(fieldName, name)) return true;
    found = value;
    return ++count < 2;
  });
  if (count > 1) return std::nullopt;
  return found;
}

void setNumber(plugin::HeaderMap& headers, std::string_view name, int64_t n) {
  FieldWriter w;
  headers.set(name, w.number(n).view());
}

}  // namespace

int64_t ceilSeconds(int64_t ms) { return ms <= 0 ? 0 : (ms + 999) / 1000; }

std::string defaultScope(const std::vector<NamedLimit>& limits, const std::vector<KeySpec>& key) {
  // A fixed key: every instance must derive the same scope from the same settings.
  SipHasher hasher(SipKey{});
  for (const NamedLimit& l : limits) {
    hasher.update(std::to_string(l.limit.requests) + "/" + std::to_string(l.limit.windowMs) + ";");
  }
  for (const KeySpec& spec : key) {
    std::string part = std::to_string(static_cast<int>(spec.kind)) + ":";
    for (char c : spec.header) part += http::asciiLower(c);
    hasher.update(part + ";");
  }
  std::string scope;
  appendHex(hasher.finish().lo, 8, scope);
  return scope;
}

Config::Config(std::vector<NamedLimit> limits, std::vector<KeySpec> key, MissingKey missingKey,
               HeaderStyle headers, Mode mode, std::size_t maxKeys, std::size_t maxKeyBytes,
               RedisSettings redis)
    : limits_(std::move(limits)),
      key_(std::move(key)),
      missingKey_(missingKey),
      headers_(headers),
      mode_(mode),
      maxKeyBytes_(maxKeyBytes),
      redis_(std::move(redis)),
      window_(bareLimits(limits_),
              redis_.scope.empty() ? defaultScope(limits_, key_) : redis_.scope),
      table_(bareLimits(limits_), maxKeys) {
  // The draft's w is whole seconds; a sub-second window is advertised rounded up, which claims
  // a stricter policy than enforced, so a client pacing by it is never refused.
  for (const NamedLimit& l : limits_) {
    if (!policyField_.empty()) policyField_ += ", ";
    policyField_ += '"' + l.name + "\";q=" + std::to_string(l.limit.requests) +
                    ";w=" + std::to_string(ceilSeconds(l.limit.windowMs));
  }
}

plugin::Status RateLimit::onRequestHeaders(plugin::Context& ctx) {
  const plugin::RequestInfo& request = ctx.request();
  partCount_ = 0;
  for (const KeySpec& spec : config_.key()) {
    KeyPart& part = parts_[partCount_++];
    switch (spec.kind) {
      case KeyKind::ClientIp:
        part = {static_cast<uint8_t>(KeyKind::ClientIp), request.clientIp};
        break;
      case KeyKind::Route:
        part = {static_cast<uint8_t>(KeyKind::Route), request.routeName};
        break;
      case KeyKind::Header: {
        // Which of two values a backend reads is its own choice: keying on either would let a
        // client be counted under one key and served under the other.
        const auto value = onlyValue(ctx.requestHeaders(), spec.header);
        if (!value) {
          ctx.fail(core::Error::downstream(
              core::ErrorCode::BadRequest,
              "the " + spec.header + " header appears more than once (it keys the rate limit)"));
          return plugin::Status::Respond;
        }
        if (value->size() > config_.maxKeyBytes()) {
          ctx.fail(core::Error::downstream(core::ErrorCode::HeadersTooLarge,
                                           "the " + spec.header + " header is longer than the " +
                                               std::to_string(config_.maxKeyBytes()) +
                                               " bytes a rate-limit key may have"));
          return plugin::Status::Respond;
        }
        if (!value->empty()) {
          part = {static_cast<uint8_t>(KeyKind::Header), *value};
        } else if (config_.missingKey() == MissingKey::ClientIp) {
          // Tagged as an IP: a header whose value looks like an IP never shares its counter.
          part = {static_cast<uint8_t>(KeyKind::ClientIp), request.clientIp};
        } else {
          ctx.fail(core::Error::downstream(
              core::ErrorCode::BadRequest,
              "the " + spec.header + " header is required (it keys the rate limit)"));
          return plugin::Status::Respond;
        }
        break;
      }
    }
  }

  if (config_.redis().store == Store::Local) {
    decision_ = config_.table().admit(parts(), ctx.nowMs());
    return conclude(ctx);
  }
  return askRedis(ctx);
}

plugin::Status RateLimit::askRedis(plugin::Context& ctx) {
  redis::Client* client = ctx.dispatcher().redis();
  if (!client || !state_) return fallBack(ctx);
  state_->useScriptOn(*client);
  const int64_t now = ctx.nowMs();
  const Digest digest = redisDigest(client->keySpace(), parts());
  if (const auto refusal = state_->memo.refusal(digest, now)) {
    ctx.count(slots_.counters + kMemoRefusals);
    decision_ = *refusal;
    return conclude(ctx);
  }
  const LeaseTable::Result lease =
      state_->leases.take(*client, digest, now, static_cast<LeaseWaiter&>(*this));
  ctx.count(slots_.counters + kRedisCalls, state_->leases.takeCallCount());
  switch (lease.outcome) {
    case LeaseTable::Outcome::Admitted:
      decision_ = lease.decision;
      return conclude(ctx);
    case LeaseTable::Outcome::Waiting:
      ctx.count(slots_.counters + kRedisWaits);
      ctx_ = &ctx;
      return plugin::Status::Stop;
    case LeaseTable::Outcome::Failed:
      break;
  }
  return fallBack(ctx);
}

void RateLimit::onLease(const Decision* decision, redis::Failure) {
  plugin::Context& ctx = *std::exchange(ctx_, nullptr);
  // A call sent from a reply (for the requests still waiting) has no request of its own: the
  // next one the table serves counts it.
  ctx.count(slots_.counters + kRedisCalls, state_->leases.takeCallCount());
  if (decision) {
    decision_ = *decision;
    conclude(ctx);
  } else {
    fallBack(ctx);
  }
  ctx.resume();  // last: the exchange, and this plugin with it, may end inside
}

plugin::Status RateLimit::fallBack(plugin::Context& ctx) {
  std::string_view& note = ctx.notes()[slots_.logFields];
  const bool weakNote = note.empty() || note == "allowed";
  if (config_.redis().onError == OnRedisError::Allow) {
    ctx.count(slots_.counters + kFallbackAllow);
    decision_ = config_.table().admit(parts(), ctx.nowMs());
    if (!decision_->allowed) return conclude(ctx);
    if (weakNote) note = "fallback";
    return plugin::Status::Continue;
  }
  ctx.count(slots_.counters + kFallbackDeny);
  if (config_.mode() == Mode::Shadow) {
    if (weakNote) note = "unavailable";
    return plugin::Status::Continue;
  }
  note = "unavailable";
  unavailable_ = true;
  ctx.fail(core::Error::downstream(
      kRateLimitUnavailable,
      "the rate limit's shared store (Redis) is unavailable; retry after the Retry-After delay"));
  return plugin::Status::Respond;
}

plugin::Status RateLimit::conclude(plugin::Context& ctx) {
  // Two tiers on one route note the most telling outcome: rejected over shadow over allowed.
  std::string_view& note = ctx.notes()[slots_.logFields];
  if (decision_->allowed) {
    if (note.empty()) note = "allowed";
    return plugin::Status::Continue;
  }
  if (config_.mode() == Mode::Shadow) {
    ctx.count(slots_.counters + kShadowExceeded);
    note = "shadow";
    return plugin::Status::Continue;
  }
  ctx.count(slots_.counters + kRejections);
  note = "rejected";
  refused_ = true;
  ctx.fail(core::Error::downstream(kRateLimitExceeded,
                                   "rate limit exceeded; retry after the Retry-After delay"));
  return plugin::Status::Respond;
}

plugin::Status RateLimit::onResponseHeaders(plugin::Context& ctx) {
  plugin::HeaderMap& headers = ctx.responseHeaders();
  // Redis may be back within a second; a client told later would only wait longer.
  if (unavailable_) setNumber(headers, "Retry-After", 1);
  if (!decision_) return plugin::Status::Continue;
  if (refused_) {
    setNumber(headers, "Retry-After", std::max<int64_t>(1, ceilSeconds(decision_->retryAfterMs)));
  }
  const NamedLimit& binding = config_.limits()[decision_->limit];
  const int64_t reset = ceilSeconds(decision_->resetMs);
  switch (config_.headers()) {
    case HeaderStyle::Draft: {
      // draft-ietf-httpapi-ratelimit-headers-08 and later (checked against -08; -11, May 2026,
      // is current): RateLimit-Policy lists every policy, RateLimit the most restrictive one.
      headers.set("RateLimit-Policy", config_.policyField());
      FieldWriter w;
      w.text("\"").text(binding.name).text("\";r=").number(decision_->remaining);
      headers.set("RateLimit", w.text(";t=").number(reset).view());
      break;
    }
    case HeaderStyle::Legacy:
      setNumber(headers, "RateLimit-Limit", binding.limit.requests);
      setNumber(headers, "RateLimit-Remaining", decision_->remaining);
      setNumber(headers, "RateLimit-Reset", reset);
      break;
    case HeaderStyle::X:
      setNumber(headers, "X-RateLimit-Limit", binding.limit.requests);
      setNumber(headers, "X-RateLimit-Remaining", decision_->remaining);
      setNumber(headers, "X-RateLimit-Reset", reset);
      break;
    case HeaderStyle::Off:
      break;
  }
  return plugin::Status::Continue;
}

}  // namespace gw::plugins::rate_limit
