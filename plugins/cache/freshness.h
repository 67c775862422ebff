#pragma once
// What RFC 9111 asks of a SHARED cache about one response: may it be stored (§3), how long is it
// fresh (§4.2.1, heuristics §4.2.2), how old is it (§4.2.3), and may a stored response answer
// this request now (§4, §4.2.4, RFC 5861). Pure functions over parsed metadata; times are unix
// seconds and every duration is clamped to kDeltaMax.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "plugins/cache/cache_control.h"
#include "plugins/cache/fields.h"

namespace gw::plugins::cache {

// The operator's choices. Every deviation from the RFC is an explicit option, off by default.
struct Policy {
  // RFC 9213: the targeted field this cache obeys (e.g. "CDN-Cache-Control"); empty: none.
  std::string targetedField;
  // Lifetime given when the upstream says nothing about freshness (route TTL); applies to the
  // heuristically cacheable statuses only, as a heuristic would.
  std::optional<int64_t> defaultTtl;
  // §4.2.2 heuristic (10% of Date - Last-Modified) and its cap; off: no heuristic freshness.
  bool heuristic = true;
  int64_t heuristicMax = 86400;
  // Overrides of upstream directives; each one must be stated in the route's YAML.
  bool ignoreNoStore = false;
  bool ignorePrivate = false;
  bool ignoreNoCache = false;  // the response's no-cache
  // Our safe defaults, beyond the RFC: no Set-Cookie in the store, no Vary: * at all.
  bool storeSetCookie = false;
  // false: ignore the request's Cache-Control / Pragma (as nginx does); default honours them.
  bool honourRequestDirectives = true;
  // Operator stale-if-error window used when the response carries none (0: none).
  int64_t staleIfErrorDefault = 0;
};

enum class LifetimeSource : uint8_t { None, SMaxage, MaxAge, Expires, Heuristic, Default };

// Everything freshness needs from a stored response, parsed once when it is stored.
struct StoredMeta {
  int status = 0;
  int64_t requestTime = 0;   // when the request that fetched it was sent
  int64_t responseTime = 0;  // when the response was received
  std::optional<int64_t> date;
  std::optional<int64_t> lastModified;
  std::optional<int64_t> expires;  // Expires present and valid
  bool expiresInvalid = false;     // present but not a date (e.g. "0"): already expired (§5.3)
  int64_t ageValue = 0;            // Age; absent or invalid: 0 (§5.1)
  std::string etag;                // stored ETag value as received ("" none)
  ResponseDirectives cc;           // the effective directives (targeted field if it applied)
  bool targeted = false;           // cc came from Policy::targetedField
  bool hasSetCookie = false;
  bool varyStar = false;
  LifetimeSource lifetimeSource = LifetimeSource::None;
  int64_t lifetime = 0;             // freshness_lifetime (§4.2.1)
  int64_t correctedInitialAge = 0;  // §4.2.3

  bool hasValidator() const { return !etag.empty() || lastModified.has_value(); }
  // s-maxage, must-revalidate and proxy-revalidate all forbid a shared cache to serve it stale
  // without revalidation (§5.2.2.2, §5.2.2.8, §5.2.2.10).
  bool staleForbidden() const { return cc.sMaxage || cc.mustRevalidate || cc.proxyRevalidate; }
};

// Parses the response head. `responseFields` is the upstream's field list.
StoredMeta analyseResponse(int status, const FieldsView& responseFields, int64_t requestTime,
                           int64_t responseTime, const Policy& policy);

// The request's directives as this policy sees them (Cache-Control, else Pragma; none at all if
// the policy ignores request directives).
RequestDirectives requestDirectives(const FieldsView& requestFields, const Policy& policy);

// §4.2.3 current_age, clamped to [0, kDeltaMax].
int64_t currentAge(const StoredMeta& meta, int64_t nowSec);

// Statuses defined as heuristically cacheable (RFC 9110 §15.1), minus 206: only complete
// responses are stored.
bool heuristicallyCacheable(int status);

enum class Storable : uint8_t {
  Yes,
  Method,         // not GET / HEAD
  Status,         // not final, 206, 304, or not understood under must-understand
  NoStore,        // in the response or the request
  Private,        // unqualified private
  Authorization,  // §3.5
  NoFreshness,    // nothing makes it reusable: no explicit lifetime, public, heuristic or TTL
  SetCookie,
  VaryStar,
};
std::string_view label(Storable verdict);

// §3 for a shared cache plus the policy's safe defaults.
Storable storability(std::string_view method, bool requestHasAuthorization,
                     const RequestDirectives& request, const StoredMeta& meta,
                     const Policy& policy);

enum class Decision : uint8_t {
  Fresh,                 // serve it
  ServeStale,            // stale, but the request's max-stale accepts it: serve it
  StaleWhileRevalidate,  // serve it now and revalidate in the background (RFC 5861 §3)
  MustRevalidate,        // ask the upstream, conditionally (it has a validator)
  Unusable,              // ask the upstream unconditionally (stale, no validator)
};
std::string_view label(Decision decision);

// May the stored response answer this request now (§4, §4.2.4, §5.2.1, RFC 5861 §3)? Request
// directives must already reflect the policy (see requestDirectives()).
Decision evaluate(const StoredMeta& meta, const RequestDirectives& request, int64_t nowSec,
                  const Policy& policy);

// After an upstream error (5xx or no answer): may the stale response be served instead
// (RFC 5861 §4; the request's stale-if-error, else the response's, else the policy's)?
bool staleIfErrorAllows(const StoredMeta& meta, const RequestDirectives& request, int64_t nowSec,
                        const Policy& policy);

}  // namespace gw::plugins::cache
