#include "plugins/cache/freshness.h"

#include <algorithm>

#include "gateway/http/headers.h"
#include "plugins/cache/http_date.h"

namespace gw::plugins::cache {
namespace {

int64_t clampDelta(int64_t v) { return std::clamp<int64_t>(v, 0, kDeltaMax); }

// Status codes whose caching requirements we implement, for must-understand (§5.2.2.3).
bool understood(int status) {
  return heuristicallyCacheable(status) || status == 302 || status == 303 || status == 307;
}

std::optional<int64_t> dateField(const FieldsView& fields, std::string_view name, int64_t now) {
  auto value = firstValue(fields, name);
  return value ? parseHttpDate(*value, now) : std::nullopt;
}

void computeLifetime(StoredMeta& m, const Policy& policy) {
  const ResponseDirectives& cc = m.cc;
  // §4.2.1, in this order; invalid freshness information makes the response stale.
  if (cc.sMaxage || cc.sMaxageInvalid) {
    m.lifetimeSource = LifetimeSource::SMaxage;
    m.lifetime = cc.sMaxage.value_or(0);
    return;
  }
  if (cc.maxAge || cc.maxAgeInvalid) {
    m.lifetimeSource = LifetimeSource::MaxAge;
    m.lifetime = cc.maxAge.value_or(0);
    return;
  }
  const int64_t dateValue = m.date.value_or(m.responseTime);
  if (m.expires || m.expiresInvalid) {
    m.lifetimeSource = LifetimeSource::Expires;
    m.lifetime = m.expires ? clampDelta(*m.expires - dateValue) : 0;
    return;
  }
  if (!heuristicallyCacheable(m.status)) return;
  if (policy.heuristic && m.lastModified && *m.lastModified < dateValue) {
    // §4.2.2: "no more than some fraction"; 10% is the RFC's example, capped by the operator.
    m.lifetimeSource = LifetimeSource::Heuristic;
    m.lifetime = std::min((dateValue - *m.lastModified) / 10, policy.heuristicMax);
    return;
  }
  if (policy.defaultTtl) {
    m.lifetimeSource = LifetimeSource::Default;
    m.lifetime = clampDelta(*policy.defaultTtl);
  }
}

}  // namespace

bool heuristicallyCacheable(int status) {
  switch (status) {
    case 200: case 203: case 204: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
      return true;
    default:
      return false;
  }
}

StoredMeta analyseResponse(int status, const FieldsView& fields, int64_t requestTime,
                           int64_t responseTime, const Policy& policy) {
  StoredMeta m;
  m.status = status;
  m.requestTime = requestTime;
  m.responseTime = responseTime;
  m.date = dateField(fields, "Date", responseTime);
  m.lastModified = dateField(fields, "Last-Modified", responseTime);
  if (auto etag = firstValue(fields, "ETag")) m.etag = trimOws(*etag);
  // §5.1: Age is delta-seconds; a list or a repeated field counts by its first member, and an
  // invalid one is ignored.
  if (auto age = firstValue(fields, "Age")) {
    m.ageValue = parseDeltaSeconds(trimOws(age->substr(0, age->find(',')))).value_or(0);
  }

  if (!policy.targetedField.empty()) {
    std::string targeted;
    if (combinedValue(fields, policy.targetedField, targeted)) {
      m.targeted = parseTargetedCacheControl(targeted, m.cc);
    }
  }
  for (std::size_t i = 0; i < fields.size(); ++i) {
    auto [name, value] = fields.at(i);
    if (!m.targeted && http::iequals(name, "Cache-Control")) {
      parseResponseCacheControl(value, m.cc);
    } else if (http::iequals(name, "Set-Cookie")) {
      m.hasSetCookie = true;
    } else if (http::iequals(name, "Vary")) {
      forEachListElement(value, [&](std::string_view element) {
        m.varyStar = m.varyStar || element == "*";
        return !m.varyStar;
      });
    }
  }
  // RFC 9213 §2.2: a targeted field that applies replaces Cache-Control AND Expires.
  if (!m.targeted) {
    if (auto expires = firstValue(fields, "Expires")) {
      m.expires = parseHttpDate(*expires, responseTime);
      m.expiresInvalid = !m.expires;  // §5.3: "0" and other non-dates mean already expired
    }
  }
  computeLifetime(m, policy);

  // §4.2.3
  const int64_t dateValue = m.date.value_or(responseTime);
  const int64_t apparentAge = clampDelta(responseTime - dateValue);
  const int64_t responseDelay = clampDelta(responseTime - requestTime);
  const int64_t correctedAgeValue = clampDelta(m.ageValue + responseDelay);
  m.correctedInitialAge = std::max(apparentAge, correctedAgeValue);
  return m;
}

RequestDirectives requestDirectives(const FieldsView& fields, const Policy& policy) {
  RequestDirectives d;
  if (!policy.honourRequestDirectives) return d;
  bool hasCacheControl = false;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    auto [name, value] = fields.at(i);
    if (http::iequals(name, "Cache-Control")) {
      hasCacheControl = true;
      parseRequestCacheControl(value, d);
    }
  }
  if (!hasCacheControl) {
    for (std::size_t i = 0; i < fields.size(); ++i) {
      auto [name, value] = fields.at(i);
      if (http::iequals(name, "Pragma")) applyPragma(value, d);
    }
  }
  return d;
}

int64_t currentAge(const StoredMeta& meta, int64_t nowSec) {
  const int64_t residentTime = clampDelta(nowSec - meta.responseTime);
  return clampDelta(meta.correctedInitialAge + residentTime);
}

std::string_view label(Storable verdict) {
  switch (verdict) {
    case Storable::Yes: return "stored";
    case Storable::Method: return "method";
    case Storable::Status: return "status";
    case Storable::NoStore: return "no-store";
    case Storable::Private: return "private";
    case Storable::Authorization: return "authorization";
    case Storable::NoFreshness: return "no-freshness";
    case Storable::SetCookie: return "set-cookie";
    case Storable::VaryStar: return "vary-star";
  }
  return "";
}

Storable storability(std::string_view method, bool requestHasAuthorization,
                     const RequestDirectives& request, const StoredMeta& meta,
                     const Policy& policy) {
  // Only GET: a HEAD response has no content, so it could never answer the GETs sharing its key.
  if (method != "GET") return Storable::Method;
  const int status = meta.status;
  const ResponseDirectives& cc = meta.cc;
  if (status < 200 || status == 206 || status == 304) return Storable::Status;
  if (cc.mustUnderstand && !understood(status)) return Storable::Status;
  // §5.2.2.3: a cache that understands the status may ignore no-store sent with must-understand.
  const bool noStore = cc.noStore && !(cc.mustUnderstand && understood(status));
  if ((noStore && !policy.ignoreNoStore) || request.noStore) return Storable::NoStore;
  if (cc.privateAll && !policy.ignorePrivate) return Storable::Private;
  if (requestHasAuthorization && !(cc.isPublic || cc.sMaxage || cc.mustRevalidate)) {
    return Storable::Authorization;
  }
  if (meta.hasSetCookie && !policy.storeSetCookie) return Storable::SetCookie;
  if (meta.varyStar) return Storable::VaryStar;
  if (meta.lifetimeSource == LifetimeSource::None && !cc.isPublic) return Storable::NoFreshness;
  return Storable::Yes;
}

std::string_view label(Decision decision) {
  switch (decision) {
    case Decision::Fresh: return "fresh";
    case Decision::ServeStale: return "stale";
    case Decision::StaleWhileRevalidate: return "stale-while-revalidate";
    case Decision::MustRevalidate: return "must-revalidate";
    case Decision::Unusable: return "unusable";
  }
  return "";
}

Decision evaluate(const StoredMeta& meta, const RequestDirectives& request, int64_t nowSec,
                  const Policy& policy) {
  const Decision revalidate = meta.hasValidator() ? Decision::MustRevalidate : Decision::Unusable;
  // §5.2.2.4: no-cache (qualified ones treated as unqualified, which §5.2.2.4 permits).
  if (meta.cc.noCache && !policy.ignoreNoCache) return revalidate;
  if (request.noCache) return revalidate;  // §5.2.1.4
  const int64_t age = currentAge(meta, nowSec);
  if (request.maxAge && age > *request.maxAge) return revalidate;  // §5.2.1.1
  if (meta.lifetime > age) {
    if (request.minFresh && meta.lifetime - age < *request.minFresh) return revalidate;
    return Decision::Fresh;
  }
  // Stale (§4.2.4): only where nothing forbids it.
  if (meta.staleForbidden() || request.minFresh) return revalidate;
  const int64_t staleness = age - meta.lifetime;
  if (request.maxStale && (!request.maxStaleSeconds || staleness <= *request.maxStaleSeconds)) {
    return Decision::ServeStale;  // §5.2.1.2
  }
  if (meta.cc.staleWhileRevalidate && staleness <= *meta.cc.staleWhileRevalidate) {
    return Decision::StaleWhileRevalidate;
  }
  return revalidate;
}

bool staleIfErrorAllows(const StoredMeta& meta, const RequestDirectives& request, int64_t nowSec,
                        const Policy& policy) {
  if (meta.staleForbidden()) return false;
  // §5.2.2.4: no-cache means never reused without validation, stale or not (and §5.2.1.4 for a
  // request that asked for validation).
  if ((meta.cc.noCache && !policy.ignoreNoCache) || request.noCache) return false;
  std::optional<int64_t> window = request.staleIfError ? request.staleIfError
                                  : meta.cc.staleIfError ? meta.cc.staleIfError
                                  : policy.staleIfErrorDefault > 0
                                      ? std::optional<int64_t>(policy.staleIfErrorDefault)
                                      : std::nullopt;
  if (!window) return false;
  const int64_t staleness = std::max<int64_t>(0, currentAge(meta, nowSec) - meta.lifetime);
  return staleness <= *window;
}

}  // namespace gw::plugins::cache
