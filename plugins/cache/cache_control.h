#pragma once
// Cache-Control (RFC 9111 §5.2), the RFC 5861 stale-* extensions, Pragma: no-cache (§5.4) and the
// targeted CDN-Cache-Control field (RFC 9213), parsed into plain structs once per message.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::plugins::cache {

// §1.2.2: a delta-seconds too large to represent, or a calculation that overflows, is taken as
// 2^31. Every duration and age in the cache core is clamped to this.
inline constexpr int64_t kDeltaMax = 2147483648;

// delta-seconds = 1*DIGIT, also accepted quoted (§5.2: recipients accept both forms); clamped
// to kDeltaMax. nullopt for anything else (empty, sign, fraction, garbage).
std::optional<int64_t> parseDeltaSeconds(std::string_view text);

struct ResponseDirectives {
  std::optional<int64_t> maxAge;
  std::optional<int64_t> sMaxage;
  // A first max-age / s-maxage whose value is not delta-seconds. §4.2.1 encourages treating a
  // response with invalid freshness information as stale, so freshness gives it lifetime 0.
  bool maxAgeInvalid = false;
  bool sMaxageInvalid = false;
  bool noStore = false;
  bool noCache = false;                    // unqualified, or qualified (see noCacheFields)
  std::vector<std::string> noCacheFields;  // no-cache="a, b", lower-case
  bool privateAll = false;                 // unqualified private
  std::vector<std::string> privateFields;  // private="a, b", lower-case
  bool mustRevalidate = false;
  bool proxyRevalidate = false;
  bool isPublic = false;
  bool noTransform = false;
  bool mustUnderstand = false;
  bool immutable = false;
  std::optional<int64_t> staleWhileRevalidate;  // RFC 5861 §3; invalid value: ignored
  std::optional<int64_t> staleIfError;          // RFC 5861 §4; invalid value: ignored
};

struct RequestDirectives {
  std::optional<int64_t> maxAge;  // invalid value: directive ignored
  bool maxStale = false;
  std::optional<int64_t> maxStaleSeconds;  // nullopt with maxStale: any staleness
  std::optional<int64_t> minFresh;
  bool noCache = false;  // also set by Pragma: no-cache when there is no Cache-Control
  bool noStore = false;
  bool noTransform = false;
  bool onlyIfCached = false;
  std::optional<int64_t> staleIfError;  // RFC 5861 §4 allows it on requests too
};

// Each call adds one field line's directives; call once per Cache-Control line in order (the
// first occurrence of a directive with a value wins, §4.2.1). Unknown directives are ignored
// (§5.2.3), malformed list elements too.
void parseResponseCacheControl(std::string_view fieldValue, ResponseDirectives& into);
void parseRequestCacheControl(std::string_view fieldValue, RequestDirectives& into);

// §5.4: Pragma is only looked at when the request has no Cache-Control at all.
void applyPragma(std::string_view pragmaValue, RequestDirectives& into);

// A targeted field (RFC 9213 §2) is an RFC 8941 Dictionary: lower-case keys, Integer values,
// Boolean true as bare key (?0 means absent), String field lists, parameters ignored, the last
// duplicate wins. Returns false, leaving `into` untouched, if the field is empty or does not
// parse: §2.1 says the cache then behaves as if the field were absent (falls back to
// Cache-Control and Expires). The caller passes the combined value of all its lines.
bool parseTargetedCacheControl(std::string_view fieldValue, ResponseDirectives& into);

}  // namespace gw::plugins::cache
