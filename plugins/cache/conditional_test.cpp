#include "plugins/cache/conditional.h"

#include <doctest.h>

#include <vector>

#include "plugins/cache/http_date.h"

namespace gw::plugins::cache {
namespace {

using Fields = std::vector<Field>;
constexpr int64_t kT = 1795000000;

StoredMeta meta(const Fields& fields, int status = 200) {
  return analyseResponse(status, FieldSpan(fields), kT, kT, Policy());
}

bool notModified(std::string_view method, const Fields& request, const StoredMeta& stored) {
  return answersNotModified(method, FieldSpan(request), stored);
}

TEST_CASE("conditional: entity-tag comparison table (RFC 9110 §8.8.3.2)") {
  CHECK_FALSE(strongEtagMatch("W/\"1\"", "W/\"1\""));
  CHECK(weakEtagMatch("W/\"1\"", "W/\"1\""));
  CHECK_FALSE(strongEtagMatch("W/\"1\"", "W/\"2\""));
  CHECK_FALSE(weakEtagMatch("W/\"1\"", "W/\"2\""));
  CHECK_FALSE(strongEtagMatch("W/\"1\"", "\"1\""));
  CHECK(weakEtagMatch("W/\"1\"", "\"1\""));
  CHECK(strongEtagMatch("\"1\"", "\"1\""));
  CHECK(weakEtagMatch("\"1\"", "\"1\""));
  CHECK_FALSE(weakEtagMatch("1", "1"));  // not entity-tags
  CHECK_FALSE(weakEtagMatch("w/\"1\"", "\"1\""));
  CHECK_FALSE(weakEtagMatch("\"a\"b\"", "\"a\"b\""));
}

TEST_CASE("conditional: If-None-Match lists and *") {
  CHECK(ifNoneMatchMatches("\"a\", W/\"b\"", "\"b\""));
  CHECK(ifNoneMatchMatches("\"a\",W/\"b\"", "W/\"b\""));
  CHECK_FALSE(ifNoneMatchMatches("\"a\", \"c\"", "\"b\""));
  CHECK(ifNoneMatchMatches("*", "\"b\""));
  CHECK(ifNoneMatchMatches(" * ", ""));
  CHECK_FALSE(ifNoneMatchMatches("\"a\"", ""));
  CHECK(ifNoneMatchMatches("\"a,b\", \"c\"", "\"a,b\""));  // commas inside a tag
}

TEST_CASE("conditional: when the cache answers 304") {
  const std::string lm = formatHttpDate(kT - 1000);
  auto stored = meta({{"ETag", "\"v1\""}, {"Last-Modified", lm}, {"Cache-Control", "max-age=9"}});
  CHECK(notModified("GET", {{"If-None-Match", "\"v1\""}}, stored));
  CHECK(notModified("HEAD", {{"If-None-Match", "W/\"v1\""}}, stored));
  CHECK_FALSE(notModified("POST", {{"If-None-Match", "\"v1\""}}, stored));
  CHECK_FALSE(notModified("GET", {{"If-None-Match", "\"v1\""}},
                          meta({{"ETag", "\"v1\""}}, 404)));
  // If-None-Match decides when present: If-Modified-Since is then ignored.
  CHECK_FALSE(notModified("GET", {{"If-None-Match", "\"v0\""}, {"If-Modified-Since", lm}}, stored));
  CHECK(notModified("GET", {{"If-Modified-Since", lm}}, stored));
  CHECK(notModified("GET", {{"If-Modified-Since", formatHttpDate(kT)}}, stored));
  CHECK_FALSE(notModified("GET", {{"If-Modified-Since", formatHttpDate(kT - 1001)}}, stored));
  CHECK_FALSE(notModified("GET", {{"If-Modified-Since", "yesterday"}}, stored));
  CHECK_FALSE(notModified("GET", {}, stored));
  // No Last-Modified: the stored Date stands in (RFC 9111 §4.3.2).
  auto dated = meta({{"Date", formatHttpDate(kT - 50)}});
  CHECK(notModified("GET", {{"If-Modified-Since", formatHttpDate(kT - 50)}}, dated));
  CHECK_FALSE(notModified("GET", {{"If-Modified-Since", formatHttpDate(kT - 51)}}, dated));
}

TEST_CASE("conditional: a 304 carries the §15.4.5 fields") {
  const Fields stored{{"Content-Type", "text/plain"}, {"ETag", "\"x\""},
                      {"Cache-Control", "max-age=5"}, {"Date", "d"},
                      {"Last-Modified", "lm"},         {"Vary", "Accept"},
                      {"Expires", "e"},                {"Content-Location", "/c"},
                      {"Content-Length", "10"}};
  std::vector<Field> out;
  notModifiedFields(stored, out);
  std::vector<std::string> names;
  for (const Field& f : out) names.push_back(f.name);
  CHECK(names == std::vector<std::string>{"ETag", "Cache-Control", "Date", "Vary", "Expires",
                                          "Content-Location"});
  std::vector<Field> noEtag;
  notModifiedFields(std::vector<Field>{{"Last-Modified", "lm"}, {"Server", "s"}}, noEtag);
  REQUIRE(noEtag.size() == 1);
  CHECK(noEtag[0].name == "Last-Modified");
}

TEST_CASE("conditional: mergeNotModified replaces fields, keeps what a 304 may not change") {
  std::vector<Field> stored{{"Content-Type", "text/html"}, {"Cache-Control", "max-age=10"},
                            {"X-Multi", "1"},             {"X-Multi", "2"},
                            {"Content-Length", "42"},     {"ETag", "\"v1\""}};
  const Fields response304{{"Cache-Control", "max-age=60"}, {"X-Multi", "3"},
                           {"Content-Length", "0"},         {"Connection", "X-Hop, close"},
                           {"X-Hop", "h"},                  {"Keep-Alive", "timeout=5"},
                           {"Age", "3"},                    {"Date", "now"}};
  mergeNotModified(stored, FieldSpan(response304));
  const std::vector<Field> expected{{"Content-Type", "text/html"}, {"Content-Length", "42"},
                                    {"ETag", "\"v1\""},          {"Cache-Control", "max-age=60"},
                                    {"X-Multi", "3"},             {"Date", "now"}};
  REQUIRE(stored.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(stored[i].name == expected[i].name);
    CHECK(stored[i].value == expected[i].value);
  }
}

}  // namespace
}  // namespace gw::plugins::cache
