#include "plugins/cache/freshness.h"

#include <doctest.h>

#include <vector>

#include "plugins/cache/http_date.h"

namespace gw::plugins::cache {
namespace {

using Fields = std::vector<Field>;
constexpr int64_t kT = 1795000000;  // response time of most tests
const std::string kDate = formatHttpDate(kT);

StoredMeta analyse(const Fields& fields, const Policy& policy = {}, int status = 200,
                   int64_t requestTime = kT, int64_t responseTime = kT) {
  return analyseResponse(status, FieldSpan(fields), requestTime, responseTime, policy);
}

RequestDirectives req(const Fields& fields, const Policy& policy = {}) {
  return requestDirectives(FieldSpan(fields), policy);
}

Storable storable(const Fields& response, const Policy& policy = {}, int status = 200,
                  std::string_view method = "GET", bool authorization = false,
                  const Fields& request = {}) {
  return storability(method, authorization, req(request, policy),
                     analyse(response, policy, status), policy);
}

TEST_CASE("freshness: lifetime precedence s-maxage > max-age > Expires (§4.2.1)") {
  const std::string in100 = formatHttpDate(kT + 100);
  auto all = analyse({{"Date", kDate}, {"Cache-Control", "max-age=60, s-maxage=30"},
                      {"Expires", in100}});
  CHECK(all.lifetimeSource == LifetimeSource::SMaxage);
  CHECK(all.lifetime == 30);
  auto maxAge = analyse({{"Date", kDate}, {"Cache-Control", "max-age=60"}, {"Expires", in100}});
  CHECK(maxAge.lifetime == 60);
  auto expires = analyse({{"Date", kDate}, {"Expires", in100}});
  CHECK(expires.lifetimeSource == LifetimeSource::Expires);
  CHECK(expires.lifetime == 100);
  // Expires - Date, not Expires - now: an origin clock 1000 s behind ours changes nothing.
  auto skewed =
      analyse({{"Date", formatHttpDate(kT - 1000)}, {"Expires", formatHttpDate(kT - 900)}});
  CHECK(skewed.lifetime == 100);
  // No Date: the response time stands in.
  CHECK(analyse({{"Expires", in100}}).lifetime == 100);
  // Expires before Date: lifetime 0, not negative.
  CHECK(analyse({{"Date", kDate}, {"Expires", formatHttpDate(kT - 5)}}).lifetime == 0);
}

TEST_CASE("freshness: invalid freshness information means stale") {
  auto expires0 = analyse({{"Date", kDate}, {"Expires", "0"}});
  CHECK(expires0.expiresInvalid);
  CHECK(expires0.lifetimeSource == LifetimeSource::Expires);
  CHECK(expires0.lifetime == 0);
  // Invalid max-age wins over a valid Expires (§4.2.1: treat as stale).
  auto badMaxAge = analyse({{"Cache-Control", "max-age=soon"},
                            {"Expires", formatHttpDate(kT + 100)}});
  CHECK(badMaxAge.lifetime == 0);
  CHECK(badMaxAge.lifetimeSource == LifetimeSource::MaxAge);
  // Two Expires lines: the first.
  CHECK(analyse({{"Expires", formatHttpDate(kT + 10)}, {"Expires", formatHttpDate(kT + 99)}})
            .lifetime == 10);
  // A huge max-age is clamped to 2^31 (§1.2.2).
  CHECK(analyse({{"Cache-Control", "max-age=999999999999999"}}).lifetime == kDeltaMax);
}

TEST_CASE("freshness: heuristic only for heuristically cacheable statuses with Last-Modified") {
  const Fields lastModified{{"Date", kDate}, {"Last-Modified", formatHttpDate(kT - 10000)}};
  auto ok = analyse(lastModified);
  CHECK(ok.lifetimeSource == LifetimeSource::Heuristic);
  CHECK(ok.lifetime == 1000);  // 10% of Date - Last-Modified
  Policy capped;
  capped.heuristicMax = 300;
  CHECK(analyse(lastModified, capped).lifetime == 300);
  for (int status : {302, 307, 500, 503, 403}) {
    CAPTURE(status);
    CHECK(analyse(lastModified, {}, status).lifetimeSource == LifetimeSource::None);
  }
  Policy off;
  off.heuristic = false;
  CHECK(analyse(lastModified, off).lifetimeSource == LifetimeSource::None);
  // A Last-Modified after Date gives no heuristic.
  CHECK(analyse({{"Date", kDate}, {"Last-Modified", formatHttpDate(kT + 5)}}).lifetimeSource ==
        LifetimeSource::None);
}

TEST_CASE("freshness: the operator's default TTL applies only when the upstream says nothing") {
  Policy ttl;
  ttl.defaultTtl = 120;
  auto silent = analyse({{"Date", kDate}}, ttl);
  CHECK(silent.lifetimeSource == LifetimeSource::Default);
  CHECK(silent.lifetime == 120);
  CHECK(analyse({{"Cache-Control", "max-age=5"}}, ttl).lifetime == 5);
  CHECK(analyse({{"Cache-Control", "max-age=0"}}, ttl).lifetime == 0);
  CHECK(analyse({{"Expires", "0"}}, ttl).lifetime == 0);
  CHECK(analyse({}, ttl, 500).lifetimeSource == LifetimeSource::None);
  CHECK(analyse({}, ttl, 404).lifetime == 120);
}

TEST_CASE("freshness: age calculation (§4.2.3)") {
  // Sent at T, received at T+2, Date says T+1, Age: 10 -> corrected_age_value 12.
  auto m = analyse({{"Date", formatHttpDate(kT + 1)}, {"Age", "10"}}, {}, 200, kT, kT + 2);
  CHECK(m.ageValue == 10);
  CHECK(m.correctedInitialAge == 12);
  CHECK(currentAge(m, kT + 2) == 12);
  CHECK(currentAge(m, kT + 32) == 42);
  // apparent_age dominates when the origin's Date is old.
  CHECK(analyse({{"Date", formatHttpDate(kT - 50)}}).correctedInitialAge == 50);
  // A Date in the future: apparent age is 0, never negative.
  CHECK(analyse({{"Date", formatHttpDate(kT + 500)}}).correctedInitialAge == 0);
  // Invalid Age is ignored; repeated Age: the first.
  CHECK(analyse({{"Age", "abc"}}).ageValue == 0);
  CHECK(analyse({{"Age", "-3"}}).ageValue == 0);
  CHECK(analyse({{"Age", "7"}, {"Age", "9"}}).ageValue == 7);
  // A list: its first member counts (§5.1), and only its validity.
  CHECK(analyse({{"Age", "7200, 0"}}).ageValue == 7200);
  CHECK(analyse({{"Age", " 7200 ,0"}}).ageValue == 7200);
  CHECK(analyse({{"Age", "abc, 5"}}).ageValue == 0);
  CHECK(analyse({{"Age", "5, abc"}}).ageValue == 5);
  // Overflow clamps to 2^31 everywhere.
  auto huge = analyse({{"Age", "999999999999999999999"}});
  CHECK(huge.ageValue == kDeltaMax);
  CHECK(currentAge(huge, kT + kDeltaMax) == kDeltaMax);
  // A clock that went backwards gives no negative resident time.
  CHECK(currentAge(analyse({}), kT - 100) == 0);
}

TEST_CASE("freshness: storability for a shared cache (§3)") {
  const Fields maxAge{{"Cache-Control", "max-age=60"}};
  CHECK(storable(maxAge) == Storable::Yes);
  CHECK(storable(maxAge, {}, 200, "POST") == Storable::Method);
  CHECK(storable(maxAge, {}, 200, "HEAD") == Storable::Method);
  CHECK(storable(maxAge, {}, 206) == Storable::Status);
  CHECK(storable(maxAge, {}, 304) == Storable::Status);
  CHECK(storable(maxAge, {}, 101) == Storable::Status);
  CHECK(storable(maxAge, {}, 500) == Storable::Yes);  // explicit freshness: any final status
  CHECK(storable({{"Cache-Control", "max-age=60, no-store"}}) == Storable::NoStore);
  CHECK(storable(maxAge, {}, 200, "GET", false, {{"Cache-Control", "no-store"}}) ==
        Storable::NoStore);
  CHECK(storable({{"Cache-Control", "max-age=60, private"}}) == Storable::Private);
  CHECK(storable({{"Cache-Control", "max-age=60, private=\"x-a\""}}) == Storable::Yes);
  CHECK(storable({{"Cache-Control", "no-cache"}}) == Storable::NoFreshness);
  CHECK(storable({{"Cache-Control", "public"}}) == Storable::Yes);
  CHECK(storable({{"Date", kDate}}) == Storable::NoFreshness);
  CHECK(storable({{"Date", kDate}, {"Last-Modified", formatHttpDate(kT - 100)}}) ==
        Storable::Yes);
  CHECK(storable({{"Cache-Control", "max-age=60"}, {"Set-Cookie", "a=b"}}) ==
        Storable::SetCookie);
  CHECK(storable({{"Cache-Control", "max-age=60"}, {"Vary", "Accept, *"}}) == Storable::VaryStar);
}

TEST_CASE("freshness: Authorization needs public, s-maxage or must-revalidate (§3.5)") {
  auto withAuth = [](const Fields& response, const Policy& policy = {}) {
    return storable(response, policy, 200, "GET", true);
  };
  CHECK(withAuth({{"Cache-Control", "max-age=60"}}) == Storable::Authorization);
  CHECK(withAuth({{"Cache-Control", "max-age=60, public"}}) == Storable::Yes);
  CHECK(withAuth({{"Cache-Control", "s-maxage=60"}}) == Storable::Yes);
  CHECK(withAuth({{"Cache-Control", "max-age=60, must-revalidate"}}) == Storable::Yes);
}

TEST_CASE("freshness: must-understand and the policy's stated overrides") {
  CHECK(storable({{"Cache-Control", "max-age=60, no-store, must-understand"}}) == Storable::Yes);
  CHECK(storable({{"Cache-Control", "max-age=60, no-store, must-understand"}}, {}, 299) ==
        Storable::Status);
  CHECK(storable({{"Cache-Control", "max-age=60, must-understand"}}, {}, 418) ==
        Storable::Status);
  Policy overrides;
  overrides.ignoreNoStore = true;
  overrides.ignorePrivate = true;
  overrides.storeSetCookie = true;
  CHECK(storable({{"Cache-Control", "max-age=60, no-store, private"}, {"Set-Cookie", "a=b"}},
                 overrides) == Storable::Yes);
}

TEST_CASE("freshness: a targeted field replaces Cache-Control and Expires (RFC 9213)") {
  Policy cdn;
  cdn.targetedField = "CDN-Cache-Control";
  const Fields both{{"Cache-Control", "no-store"},
                    {"Expires", "0"},
                    {"CDN-Cache-Control", "max-age=600"}};
  auto targeted = analyse(both, cdn);
  CHECK(targeted.targeted);
  CHECK(targeted.lifetime == 600);
  CHECK(storable(both, cdn) == Storable::Yes);
  // Not configured as the target: the field means nothing here.
  CHECK(storable(both) == Storable::NoStore);
  // Present but unparseable: fall back to Cache-Control and Expires (§2.1).
  auto fallback = analyse({{"Cache-Control", "max-age=5"}, {"CDN-Cache-Control", "Max-Age=600"}},
                          cdn);
  CHECK_FALSE(fallback.targeted);
  CHECK(fallback.lifetime == 5);
  // Two lines are one dictionary.
  auto lines = analyse({{"CDN-Cache-Control", "max-age=60"}, {"cdn-cache-control", "public"}},
                       cdn);
  CHECK(lines.lifetime == 60);
  CHECK(lines.cc.isPublic);
}

TEST_CASE("freshness: request directives: Cache-Control, else Pragma, or none by policy") {
  CHECK(req({{"Pragma", "no-cache"}}).noCache);
  CHECK_FALSE(req({{"Pragma", "no-cache"}, {"Cache-Control", "max-age=5"}}).noCache);
  Policy ignore;
  ignore.honourRequestDirectives = false;
  CHECK_FALSE(req({{"Cache-Control", "no-cache"}}, ignore).noCache);
  CHECK_FALSE(req({{"Pragma", "no-cache"}}, ignore).noCache);
}

TEST_CASE("freshness: evaluate") {
  const Policy policy;
  auto meta = analyse({{"Cache-Control", "max-age=100"}, {"ETag", "\"v1\""}});
  const RequestDirectives none;
  CHECK(evaluate(meta, none, kT + 99, policy) == Decision::Fresh);
  CHECK(evaluate(meta, none, kT + 100, policy) == Decision::MustRevalidate);
  auto noValidator = analyse({{"Cache-Control", "max-age=100"}});
  CHECK(evaluate(noValidator, none, kT + 200, policy) == Decision::Unusable);

  SUBCASE("response no-cache revalidates even while fresh, unless overridden") {
    auto noCache = analyse({{"Cache-Control", "max-age=100, no-cache"}, {"ETag", "\"v\""}});
    CHECK(evaluate(noCache, none, kT, policy) == Decision::MustRevalidate);
    Policy override;
    override.ignoreNoCache = true;
    CHECK(evaluate(noCache, none, kT, override) == Decision::Fresh);
  }
  SUBCASE("request directives") {
    CHECK(evaluate(meta, req({{"Cache-Control", "no-cache"}}), kT, policy) ==
          Decision::MustRevalidate);
    CHECK(evaluate(meta, req({{"Pragma", "no-cache"}}), kT, policy) == Decision::MustRevalidate);
    CHECK(evaluate(meta, req({{"Cache-Control", "max-age=0"}}), kT + 1, policy) ==
          Decision::MustRevalidate);
    CHECK(evaluate(meta, req({{"Cache-Control", "max-age=10"}}), kT + 5, policy) ==
          Decision::Fresh);
    CHECK(evaluate(meta, req({{"Cache-Control", "min-fresh=50"}}), kT + 49, policy) ==
          Decision::Fresh);
    CHECK(evaluate(meta, req({{"Cache-Control", "min-fresh=50"}}), kT + 51, policy) ==
          Decision::MustRevalidate);
    CHECK(evaluate(meta, req({{"Cache-Control", "max-stale"}}), kT + 5000, policy) ==
          Decision::ServeStale);
    CHECK(evaluate(meta, req({{"Cache-Control", "max-stale=10"}}), kT + 110, policy) ==
          Decision::ServeStale);
    CHECK(evaluate(meta, req({{"Cache-Control", "max-stale=10"}}), kT + 111, policy) ==
          Decision::MustRevalidate);
    Policy ignore;
    ignore.honourRequestDirectives = false;
    CHECK(evaluate(meta, req({{"Cache-Control", "no-cache"}}, ignore), kT, ignore) ==
          Decision::Fresh);
  }
  SUBCASE("stale-while-revalidate within its window only") {
    auto swr = analyse({{"Cache-Control", "max-age=100, stale-while-revalidate=30"}});
    CHECK(evaluate(swr, none, kT + 50, policy) == Decision::Fresh);
    CHECK(evaluate(swr, none, kT + 130, policy) == Decision::StaleWhileRevalidate);
    CHECK(evaluate(swr, none, kT + 131, policy) == Decision::Unusable);
    CHECK(evaluate(swr, req({{"Cache-Control", "no-cache"}}), kT + 110, policy) ==
          Decision::Unusable);
  }
  SUBCASE("must-revalidate, proxy-revalidate and s-maxage forbid serving stale") {
    for (const char* cc : {"max-age=100, must-revalidate, stale-while-revalidate=30",
                           "max-age=100, proxy-revalidate, stale-while-revalidate=30",
                           "s-maxage=100, stale-while-revalidate=30"}) {
      CAPTURE(cc);
      auto strict = analyse({{"Cache-Control", cc}, {"ETag", "\"x\""}});
      CHECK(evaluate(strict, none, kT + 110, policy) == Decision::MustRevalidate);
      CHECK(evaluate(strict, req({{"Cache-Control", "max-stale"}}), kT + 110, policy) ==
            Decision::MustRevalidate);
    }
  }
}

TEST_CASE("freshness: stale-if-error") {
  const Policy policy;
  const RequestDirectives none;
  auto sie = analyse({{"Cache-Control", "max-age=100, stale-if-error=60"}});
  CHECK(staleIfErrorAllows(sie, none, kT + 160, policy));
  CHECK_FALSE(staleIfErrorAllows(sie, none, kT + 161, policy));
  CHECK(staleIfErrorAllows(sie, req({{"Cache-Control", "stale-if-error=500"}}), kT + 500, policy));
  auto strict = analyse({{"Cache-Control", "max-age=100, stale-if-error=60, must-revalidate"}});
  CHECK_FALSE(staleIfErrorAllows(strict, none, kT + 101, policy));
  auto plain = analyse({{"Cache-Control", "max-age=100"}});
  CHECK_FALSE(staleIfErrorAllows(plain, none, kT + 101, policy));
  Policy operatorDefault;
  operatorDefault.staleIfErrorDefault = 300;
  CHECK(staleIfErrorAllows(plain, none, kT + 400, operatorDefault));
  CHECK_FALSE(staleIfErrorAllows(plain, none, kT + 401, operatorDefault));
  // no-cache: never reused unvalidated, an error notwithstanding.
  auto noCache = analyse({{"Cache-Control", "max-age=100, no-cache, stale-if-error=60"}});
  CHECK_FALSE(staleIfErrorAllows(noCache, none, kT + 101, policy));
  CHECK_FALSE(staleIfErrorAllows(sie, req({{"Cache-Control", "no-cache"}}), kT + 101, policy));
}

}  // namespace
}  // namespace gw::plugins::cache
