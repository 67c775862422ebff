#include "plugins/cache/range.h"

#include <doctest.h>

#include <vector>

#include "plugins/cache/http_date.h"

namespace gw::plugins::cache {
namespace {

using Fields = std::vector<Field>;
using Kind = RangeAnswer::Kind;
constexpr int64_t kT = 1795000000;

StoredMeta meta(const Fields& fields = {}, int status = 200) {
  return analyseResponse(status, FieldSpan(fields), kT, kT, Policy());
}

RangeAnswer range(std::string_view value, uint64_t length = 1000, const StoredMeta& m = meta(),
                  std::optional<std::string_view> ifRange = std::nullopt,
                  std::string_view method = "GET") {
  return answerRange(method, value, ifRange, length, m);
}

void checkPartial(const RangeAnswer& a, uint64_t first, uint64_t length, std::string_view cr) {
  CHECK(a.kind == Kind::Partial);
  CHECK(a.status() == 206);
  CHECK(a.first == first);
  CHECK(a.length == length);
  CHECK(a.contentRange == cr);
}

TEST_CASE("range: single byte ranges") {
  checkPartial(range("bytes=0-99"), 0, 100, "bytes 0-99/1000");
  checkPartial(range("bytes=500-"), 500, 500, "bytes 500-999/1000");
  checkPartial(range("bytes=-100"), 900, 100, "bytes 900-999/1000");
  checkPartial(range("bytes=-2000"), 0, 1000, "bytes 0-999/1000");
  checkPartial(range("bytes=990-5000"), 990, 10, "bytes 990-999/1000");
  checkPartial(range("bytes=999-999"), 999, 1, "bytes 999-999/1000");
  checkPartial(range(" Bytes = 1-1 "), 1, 1, "bytes 1-1/1000");
}

TEST_CASE("range: unsatisfiable -> 416 with bytes */length") {
  for (const char* r : {"bytes=1000-", "bytes=1000-2000", "bytes=-0",
                        "bytes=99999999999999999999999-"}) {
    CAPTURE(r);
    auto a = range(r);
    CHECK(a.kind == Kind::Unsatisfiable);
    CHECK(a.status() == 416);
    CHECK(a.contentRange == "bytes */1000");
  }
  CHECK(range("bytes=0-", 0).contentRange == "bytes */0");
}

TEST_CASE("range: ignored (200, whole body) for what the cache does not answer partially") {
  for (const char* r : {"items=0-1", "bytes", "bytes=", "bytes=5-1", "bytes=a-b", "bytes=-",
                        "bytes=1-2-3", "bytes=0-1,5-6", "bytes=0-1, -5", "bytes= 1 -2"}) {
    CAPTURE(r);
    auto a = range(r);
    CHECK(a.kind == Kind::Full);
    CHECK(a.status() == 200);
    CHECK(a.contentRange.empty());
  }
  CHECK(range("bytes=0-1", 1000, meta(), std::nullopt, "HEAD").kind == Kind::Full);
  CHECK(range("bytes=0-1", 1000, meta({}, 404)).kind == Kind::Full);
  CHECK(answerRange("GET", std::nullopt, std::nullopt, 1000, meta()).kind == Kind::Full);
}

TEST_CASE("range: If-Range") {
  const std::string lm = formatHttpDate(kT - 100);
  auto strong = meta({{"ETag", "\"v1\""}, {"Last-Modified", lm}, {"Date", formatHttpDate(kT)}});
  CHECK(range("bytes=0-9", 1000, strong, "\"v1\"").kind == Kind::Partial);
  CHECK(range("bytes=0-9", 1000, strong, "\"v2\"").kind == Kind::Full);
  CHECK(range("bytes=0-9", 1000, strong, "W/\"v1\"").kind == Kind::Full);
  CHECK(range("bytes=0-9", 1000, strong, std::string_view(lm)).kind == Kind::Partial);
  CHECK(range("bytes=0-9", 1000, strong, std::string_view(formatHttpDate(kT - 99))).kind ==
        Kind::Full);
  CHECK(range("bytes=0-9", 1000, strong, "garbage").kind == Kind::Full);
  auto weakEtag = meta({{"ETag", "W/\"v1\""}});
  CHECK(range("bytes=0-9", 1000, weakEtag, "W/\"v1\"").kind == Kind::Full);
  // Last-Modified equal to Date is only a weak validator (RFC 9110 §8.8.2.2).
  auto sameSecond = meta({{"Last-Modified", lm}, {"Date", lm}});
  CHECK(range("bytes=0-9", 1000, sameSecond, std::string_view(lm)).kind == Kind::Full);
  // If-Range does not rescue an invalid Range.
  CHECK(range("bytes=9-0", 1000, strong, "\"v1\"").kind == Kind::Full);
}

}  // namespace
}  // namespace gw::plugins::cache
