#include "plugins/cache/cache_control.h"

#include <doctest.h>

namespace gw::plugins::cache {
namespace {

ResponseDirectives response(std::initializer_list<std::string_view> lines) {
  ResponseDirectives d;
  for (std::string_view line : lines) parseResponseCacheControl(line, d);
  return d;
}

RequestDirectives request(std::string_view value) {
  RequestDirectives d;
  parseRequestCacheControl(value, d);
  return d;
}

TEST_CASE("cache_control: delta-seconds") {
  CHECK(parseDeltaSeconds("0") == 0);
  CHECK(parseDeltaSeconds("3600") == 3600);
  CHECK(parseDeltaSeconds("\"3600\"") == 3600);
  // §1.2.2: too large to represent means 2^31.
  CHECK(parseDeltaSeconds("2147483649") == kDeltaMax);
  CHECK(parseDeltaSeconds("99999999999999999999999999") == kDeltaMax);
  for (const char* bad : {"", "-1", "+1", "1.5", "1 2", "abc", "\"\"", "0x10"}) {
    CAPTURE(bad);
    CHECK_FALSE(parseDeltaSeconds(bad).has_value());
  }
}

TEST_CASE("cache_control: response directives, case-insensitive names, list syntax") {
  auto d = response({"Public, MAX-AGE=60, s-maxage=30 , must-revalidate,proxy-revalidate",
                     "no-transform, immutable, must-understand, stale-while-revalidate=5",
                     "stale-if-error=\"86400\", no-store, unknown-ext=\"a,b\", x"});
  CHECK(d.isPublic);
  CHECK(d.maxAge == 60);
  CHECK(d.sMaxage == 30);
  CHECK(d.mustRevalidate);
  CHECK(d.proxyRevalidate);
  CHECK(d.noTransform);
  CHECK(d.immutable);
  CHECK(d.mustUnderstand);
  CHECK(d.staleWhileRevalidate == 5);
  CHECK(d.staleIfError == 86400);
  CHECK(d.noStore);
  CHECK_FALSE(d.noCache);
  CHECK_FALSE(d.privateAll);
}

TEST_CASE("cache_control: duplicates: the first occurrence wins, across field lines too") {
  CHECK(response({"max-age=60, max-age=10"}).maxAge == 60);
  CHECK(response({"max-age=60", "max-age=10"}).maxAge == 60);
  CHECK(response({"s-maxage=1, s-maxage=2"}).sMaxage == 1);
  CHECK(response({"stale-if-error=1, stale-if-error=2"}).staleIfError == 1);
}

TEST_CASE("cache_control: invalid max-age marks the response stale, not ignored (§4.2.1)") {
  auto bad = response({"max-age=abc, max-age=60"});
  CHECK(bad.maxAgeInvalid);
  CHECK_FALSE(bad.maxAge.has_value());
  CHECK(response({"max-age"}).maxAgeInvalid);
  CHECK(response({"max-age=-5"}).maxAgeInvalid);
  CHECK(response({"s-maxage=1.5"}).sMaxageInvalid);
  auto good = response({"max-age=60, max-age=abc"});
  CHECK(good.maxAge == 60);
  CHECK_FALSE(good.maxAgeInvalid);
  CHECK(response({"max-age=99999999999"}).maxAge == kDeltaMax);
  // An invalid stale-* value is ignored: it can only extend what the cache may do.
  CHECK_FALSE(response({"stale-while-revalidate=x"}).staleWhileRevalidate.has_value());
}

TEST_CASE("cache_control: qualified private / no-cache keep their field names") {
  auto d = response({"private=\"Set-Cookie, X-User\", no-cache=\"Authorization-Info\""});
  CHECK_FALSE(d.privateAll);
  CHECK(d.privateFields == std::vector<std::string>{"set-cookie", "x-user"});
  CHECK(d.noCache);
  CHECK(d.noCacheFields == std::vector<std::string>{"authorization-info"});
  CHECK(response({"private"}).privateAll);
  CHECK(response({"private=X-Token"}).privateFields == std::vector<std::string>{"x-token"});
}

TEST_CASE("cache_control: malformed elements are skipped, the rest still counts") {
  auto d = response({",, ,max-age=5,,\"quoted junk\", a b, =x, no-cache"});
  CHECK(d.maxAge == 5);
  CHECK(d.noCache);
}

TEST_CASE("cache_control: request directives") {
  auto d = request("max-age=0, max-stale, min-fresh=10, no-cache, no-store, only-if-cached");
  CHECK(d.maxAge == 0);
  CHECK(d.maxStale);
  CHECK_FALSE(d.maxStaleSeconds.has_value());
  CHECK(d.minFresh == 10);
  CHECK(d.noCache);
  CHECK(d.noStore);
  CHECK(d.onlyIfCached);
  auto limited = request("max-stale=5");
  CHECK(limited.maxStale);
  CHECK(limited.maxStaleSeconds == 5);
  // An invalid max-stale never widens to "any staleness".
  CHECK_FALSE(request("max-stale=abc").maxStale);
  CHECK_FALSE(request("max-age=abc").maxAge.has_value());
  CHECK(request("stale-if-error=30").staleIfError == 30);
}

TEST_CASE("cache_control: Pragma: no-cache") {
  RequestDirectives d;
  applyPragma("foo, No-Cache", d);
  CHECK(d.noCache);
  RequestDirectives other;
  applyPragma("nocache", other);
  CHECK_FALSE(other.noCache);
}

TEST_CASE("cache_control: targeted field (RFC 9213) is a structured dictionary") {
  ResponseDirectives d;
  REQUIRE(parseTargetedCacheControl("max-age=600, stale-while-revalidate=30, must-revalidate", d));
  CHECK(d.maxAge == 600);
  CHECK(d.staleWhileRevalidate == 30);
  CHECK(d.mustRevalidate);

  ResponseDirectives strings;
  REQUIRE(parseTargetedCacheControl("private=\"Set-Cookie\", no-store=?0, public=?1", strings));
  CHECK(strings.privateFields == std::vector<std::string>{"set-cookie"});
  CHECK_FALSE(strings.privateAll);
  CHECK_FALSE(strings.noStore);
  CHECK(strings.isPublic);

  ResponseDirectives dup;  // RFC 8941: the last duplicate wins
  REQUIRE(parseTargetedCacheControl("max-age=10, max-age=20", dup));
  CHECK(dup.maxAge == 20);

  ResponseDirectives params;
  REQUIRE(parseTargetedCacheControl("max-age=60;foo=bar, no-cache;a;b=?0", params));
  CHECK(params.maxAge == 60);
  CHECK(params.noCache);

  ResponseDirectives wrongType;  // a String where an Integer belongs is invalid freshness
  REQUIRE(parseTargetedCacheControl("max-age=\"60\"", wrongType));
  CHECK(wrongType.maxAgeInvalid);
  ResponseDirectives negative;
  REQUIRE(parseTargetedCacheControl("max-age=-1", negative));
  CHECK(negative.maxAgeInvalid);

  // Unparseable or empty: the field is ignored and `into` untouched.
  ResponseDirectives untouched;
  untouched.maxAge = 7;
  for (const char* bad : {"", "   ", "Max-Age=5", "max-age=5,", "max-age=5 no-store",
                          "max-age=\"unterminated", "max-age=1.2345", "=5", "max-age=?2"}) {
    CAPTURE(bad);
    CHECK_FALSE(parseTargetedCacheControl(bad, untouched));
    CHECK(untouched.maxAge == 7);
  }
}

}  // namespace
}  // namespace gw::plugins::cache
