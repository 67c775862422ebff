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

Config::Config(std::vector<NamedLimit> limits, std::vector<KeySpec> key, MissingKey missingKey,
               HeaderStyle headers, Mode mode, std::size_t maxKeys, std::size_t maxKeyBytes)
    : limits_(std::move(limits)),
      key_(std::move(key)),
      missingKey_(missingKey),
      headers_(headers),
      mode_(mode),
      maxKeyBytes_(maxKeyBytes),
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
  std::array<KeyPart, Config::kMaxKeyParts> parts;
  std::size_t count = 0;
  for (const KeySpec& spec : config_.key()) {
    KeyPart& part = parts[count++];
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

  decision_ = config_.table().admit({parts.data(), count}, ctx.nowMs());
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
  if (!decision_) return plugin::Status::Continue;
  plugin::HeaderMap& headers = ctx.responseHeaders();
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
