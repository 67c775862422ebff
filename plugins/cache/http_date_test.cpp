#include "plugins/cache/http_date.h"

#include <doctest.h>

namespace gw::plugins::cache {
namespace {

constexpr int64_t kNow = 1795000000;  // 2026-11-18
constexpr int64_t kRfcExample = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT

TEST_CASE("http_date: the three forms of RFC 9110 §5.6.7 name the same instant") {
  CHECK(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT", kNow) == kRfcExample);
  CHECK(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", kNow) == kRfcExample);
  CHECK(parseHttpDate("Sun Nov  6 08:49:37 1994", kNow) == kRfcExample);
  CHECK(parseHttpDate("  Sun, 06 Nov 1994 08:49:37 GMT\t", kNow) == kRfcExample);
}

TEST_CASE("http_date: invalid dates are nullopt") {
  for (const char* bad : {"", "0", "-1", "Sun, 06 Nov 1994 08:49:37 UTC",
                          "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT",
                          "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                          "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT x",
                          "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994",
                          "Sunday, 06-Nov-1994 08:49:37 GMT", "Thu, 29 Feb 2001 00:00:00 GMT"}) {
    CAPTURE(bad);
    CHECK_FALSE(parseHttpDate(bad, kNow).has_value());
  }
  CHECK(parseHttpDate("Tue, 29 Feb 2000 00:00:00 GMT", kNow) == 951782400);
  CHECK(parseHttpDate("Sun, 06 Nov 1994 08:49:60 GMT", kNow) == kRfcExample + 23);  // leap sec
}

TEST_CASE("http_date: RFC 850 two-digit years stay within 50 years of now") {
  // now is 2026: 30 -> 2030 (4 years ahead), 80 -> 1980 (2080 would be 54 years ahead).
  CHECK(parseHttpDate("Monday, 01-Jan-30 00:00:00 GMT", kNow) == 1893456000);
  CHECK(parseHttpDate("Tuesday, 01-Jan-80 00:00:00 GMT", kNow) == 315532800);
}

TEST_CASE("http_date: IMF-fixdate formatting round-trips") {
  CHECK(formatHttpDate(kRfcExample) == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(formatHttpDate(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
  CHECK(formatHttpDate(951782400) == "Tue, 29 Feb 2000 00:00:00 GMT");
  for (int64_t t : {int64_t{0}, int64_t{86399}, kRfcExample, kNow, int64_t{4102444799}}) {
    CAPTURE(t);
    CHECK(parseHttpDate(formatHttpDate(t), kNow) == t);
  }
}

}  // namespace
}  // namespace gw::plugins::cache
