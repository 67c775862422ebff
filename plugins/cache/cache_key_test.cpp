#include "plugins/cache/cache_key.h"

#include <doctest.h>

#include <array>
#include <set>
#include <vector>

namespace gw::plugins::cache {
namespace {

using Fields = std::vector<Field>;

std::string primary(std::string_view method, std::string_view host, std::string_view path,
                    std::string_view query, const Fields& request = {},
                    const KeyOptions& options = {}) {
  RequestKey key;
  buildRequestKey(options, method, host, path, query, FieldSpan(request), key);
  return key.primary;
}

std::string variant(const Fields& response, const Fields& request) {
  std::string out;
  buildVariantKey(varyNames(FieldSpan(response)), FieldSpan(request), out);
  return out;
}

std::string query(std::string_view q, const KeyOptions& options) {
  std::string out;
  normaliseQuery(options, q, out);
  return out;
}

TEST_CASE("cache_key: HEAD shares GET's key") {
  CHECK(primary("GET", "example.com", "/a", "x=1") == primary("HEAD", "example.com", "/a", "x=1"));
  CHECK(primary("GET", "example.com", "/a", "x=1") != primary("POST", "example.com", "/a", "x=1"));
  CHECK(primary("GET", "example.com", "/a", "") != primary("GET", "example.org", "/a", ""));
}

TEST_CASE("cache_key: the Host value as forwarded keys byte for byte; the URL part ignores port") {
  // The backend receives each of these as it is written and may answer each differently.
  std::set<std::string> keys;
  const std::vector<std::string_view> authorities = {"victim.example",    "victim.example:6666",
                                                     "victim.example.",   "Victim.Example",
                                                     "victim.example:80", ""};
  for (std::string_view authority : authorities) keys.insert(primary("GET", authority, "/a", ""));
  CHECK(keys.size() == authorities.size());
  // What an unsafe method invalidates and what a purge by host matches covers them all.
  RequestKey plain, ported;
  buildRequestKey({}, "GET", "victim.example", "/a", "", FieldSpan(Fields{}), plain);
  for (std::string_view authority : {"victim.example:6666", "victim.example.", "VICTIM.example"}) {
    buildRequestKey({}, "POST", authority, "/a", "", FieldSpan(Fields{}), ported);
    CHECK_MESSAGE(ported.url == plain.url, authority);
    CHECK(ported.host == "victim.example");
  }
}

TEST_CASE("cache_key: inputs that collide under naive concatenation do not collide") {
  // Each pair would be equal as method + host + path + "?" + query or with a separator.
  std::set<std::string> keys;
  const std::vector<std::array<std::string_view, 4>> parts = {
      {"GET", "a.com", "/x?y", ""},   {"GET", "a.com", "/x", "y"},
      {"GET", "a.com/x", "", ""},      {"GET", "a.com", "/x", ""},
      {"GET", "a.co", "m/x", ""},      {"GET", "a.com", "/x", "?"},
      {"GET", "a.com", "/x?", ""},     {"GET", "1:a.com", "/x", ""},
      {"GET1:a", "com", "/x", ""},     {"GET", "a.com", "", "/x"},
  };
  for (const auto& p : parts) keys.insert(primary(p[0], p[1], p[2], p[3]));
  CHECK(keys.size() == parts.size());
}

TEST_CASE("cache_key: configured request headers: absent, empty and crafted values differ") {
  KeyOptions options;
  options.headers = {"x-tenant", "x-region"};
  std::set<std::string> keys;
  const std::vector<Fields> requests = {
      {},
      {{"X-Tenant", ""}},
      {{"X-Region", ""}},
      {{"X-Tenant", "a"}, {"X-Region", "b"}},
      {{"X-Tenant", "a1:b"}},
      {{"X-Tenant", "a"}, {"X-Region", "1:b"}},
      {{"X-Tenant", "a, b"}},
      {{"X-Region", "a"}, {"X-Tenant", "b"}},
  };
  for (const Fields& request : requests) {
    keys.insert(primary("GET", "h", "/", "", request, options));
  }
  CHECK(keys.size() == requests.size());
  // Header names match case-insensitively; lines are combined.
  CHECK(primary("GET", "h", "/", "", {{"x-tenant", "a"}, {"X-TENANT", "b"}}, options) ==
        primary("GET", "h", "/", "", {{"X-Tenant", "a,b"}}, options));
}

TEST_CASE("cache_key: query normalisation") {
  KeyOptions none;
  CHECK(query("b=1&a=2", none) == "b=1&a=2");
  KeyOptions sorted;
  sorted.sortQuery = true;
  CHECK(query("b=1&a=2&a=1&c", sorted) == "a=2&a=1&b=1&c");  // stable on equal names
  CHECK(query("b=1&&a=2&", sorted) == "a=2&b=1");
  KeyOptions ignored;
  ignored.ignoredParams = {"utm_source", "fbclid"};
  CHECK(query("utm_source=x&id=3&fbclid&utm_sourcex=1", ignored) == "id=3&utm_sourcex=1");
  CHECK(primary("GET", "h", "/", "b=1&a=2", {}, sorted) ==
        primary("GET", "h", "/", "a=2&b=1", {}, sorted));
  CHECK(primary("GET", "h", "/", "b=1&a=2") != primary("GET", "h", "/", "a=2&b=1"));
  RequestKey key;
  buildRequestKey(ignored, "POST", "H", "/p", "utm_source=1", FieldSpan(Fields{}), key);
  RequestKey get;
  buildRequestKey(ignored, "GET", "h", "/p", "", FieldSpan(Fields{}), get);
  CHECK(key.url == get.url);  // what a POST invalidates is the GET's URL
  CHECK(key.host == "h");
  CHECK(key.path == "/p");
}

TEST_CASE("cache_key: Location / Content-Location invalidate only within the origin (§4.4)") {
  KeyOptions options;
  RequestKey get;
  buildRequestKey(options, "GET", "api.example.com", "/items/7", "a=1", FieldSpan(Fields{}), get);
  std::string url;
  REQUIRE(sameOriginUrl(options, "/items/7?a=1", "api.example.com:80", url));
  CHECK(url == get.url);
  REQUIRE(sameOriginUrl(options, "HTTP://API.example.com/items/7?a=1#frag", "api.example.com",
                        url));
  CHECK(url == get.url);
  REQUIRE(sameOriginUrl(options, "http://api.example.com:80/items/7?a=1", "api.example.com",
                        url));
  CHECK(url == get.url);
  REQUIRE(sameOriginUrl(options, "http://api.example.com", "api.example.com", url));
  CHECK_FALSE(sameOriginUrl(options, "http://evil.example/items/7", "api.example.com", url));
  CHECK_FALSE(sameOriginUrl(options, "http://api.example.com:8080/x", "api.example.com", url));
  CHECK_FALSE(sameOriginUrl(options, "https://api.example.com/x", "api.example.com", url));
  CHECK_FALSE(sameOriginUrl(options, "//api.example.com/x", "api.example.com", url));
  CHECK_FALSE(sameOriginUrl(options, "items/7", "api.example.com", url));
}

TEST_CASE("cache_key: Vary names are lower-cased and de-duplicated; coded answers add encoding") {
  CHECK(varyNames(FieldSpan(Fields{})).empty());
  CHECK(varyNames(FieldSpan(Fields{{"Vary", " Accept-Language ,ACCEPT-ENCODING"},
                                   {"vary", "Cookie, accept-language, *"}})) ==
        std::vector<std::string>{"accept-encoding", "accept-language", "cookie"});
  // Only Vary selects (RFC 9111 4.1) unless the body is content-coded.
  CHECK(varyNames(FieldSpan(Fields{{"Vary", "Accept-Language"}})) ==
        std::vector<std::string>{"accept-language"});
  CHECK(varyNames(FieldSpan(Fields{{"Content-Encoding", "identity"}})).empty());
  for (const char* coding : {"gzip", "br", "identity, gzip", "GZIP"}) {
    CHECK_MESSAGE(varyNames(FieldSpan(Fields{{"Content-Encoding", coding}})) ==
                      std::vector<std::string>{"accept-encoding"},
                  coding);
  }
  CHECK(varyNames(
            FieldSpan(Fields{{"Content-Encoding", "gzip"}, {"Content-Encoding", "identity"}})) ==
        std::vector<std::string>{"accept-encoding"});
  CHECK(varyNames(FieldSpan(Fields{{"Content-Encoding", "gzip"}, {"Vary", "Accept-Encoding"}})) ==
        std::vector<std::string>{"accept-encoding"});
}

TEST_CASE("cache_key: variant key normalises whitespace, lines and name case") {
  const Fields vary{{"Vary", "Accept-Language"}};
  const std::string base = variant(vary, {{"Accept-Language", "en, fr"}});
  CHECK(variant(vary, {{"accept-language", "en,fr"}}) == base);
  CHECK(variant(vary, {{"Accept-Language", " en ,  fr "}}) == base);
  CHECK(variant(vary, {{"Accept-Language", "en"}, {"ACCEPT-LANGUAGE", "fr"}}) == base);
  CHECK(variant(vary, {{"Accept-Language", "fr, en"}}) != base);
  CHECK(variant(vary, {{"Accept-Language", "en;q=1, fr"}}) != base);
  // Without Vary every request is the same variant; a coded answer varies on Accept-Encoding.
  CHECK(variant({}, {{"Accept-Encoding", "gzip"}}) == variant({}, {}));
  CHECK(variant({}, {{"Accept-Encoding", "identity"}, {"Range", "bytes=1-2"}}) == variant({}, {}));
  const Fields coded{{"Content-Encoding", "gzip"}};
  CHECK(variant(coded, {{"Accept-Encoding", "gzip"}}) != variant(coded, {}));
  CHECK(variant(coded, {{"Accept-Encoding", ""}}) != variant(coded, {}));
  CHECK(variant(coded, {{"Accept-Encoding", "gzip"}, {"Accept-Language", "en"}}) ==
        variant(coded, {{"Accept-Encoding", "gzip"}, {"Accept-Language", "de"}}));
  // Values that would run into each other under naive joining stay apart.
  const Fields two{{"Vary", "X-A, X-B"}};
  CHECK(variant(two, {{"X-A", "1"}, {"X-B", "2"}}) != variant(two, {{"X-A", "12"}}));
  CHECK(variant(two, {{"X-A", "1:"}, {"X-B", ""}}) != variant(two, {{"X-A", "1"}, {"X-B", ":"}}));
}

}  // namespace
}  // namespace gw::plugins::cache
