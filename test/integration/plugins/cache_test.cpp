// cache through the real gatewayd, in front of test_backend's scripted /origin/ paths: what is
// stored and served, what bypasses the store, keys and variants, validation, invalidation, ranges,
// stale-if-error, coalescing, the fields the cache sets and its config errors. The origin's
// request count and its "#k" body rank tell a stored copy from a fresh fetch.
#include <doctest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// One route "cached" with `cache: <settings>` in front of `b`; `extra_top` is YAML appended at
// top level, `upstream_extra` more keys of the upstream (indented as its `backends:`).
std::string config(const Backend& b, std::string_view settings = "{}", int workers = 1,
                   std::string_view extra_top = {}, std::string_view upstream_extra = {}) {
  return subst(R"(workers: ${W}
${TOP}listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends:
      - ${B}
${UP}routes:
  - name: cached
    match: {prefix: /}
    upstream: main
    plugins:
      - cache: ${S}
)",
               {{"W", std::to_string(workers)},
                {"B", b.address()},
                {"S", std::string(settings)},
                {"TOP", std::string(extra_top)},
                {"UP", std::string(upstream_extra)}});
}

// Query parameter that makes the origin add one header line to its answer.
std::string originHeader(std::string_view line) { return "h=" + percentEncode(line); }
std::string cacheControl(std::string_view directives) {
  return originHeader("Cache-Control: " + std::string(directives));
}

// The default body of the origin's k-th answer since its last reset.
std::string originBody(std::string_view path, int rank) {
  return "origin " + std::string(path) + " #" + std::to_string(rank);
}

// The bytes [offset, offset + n) of a generated body.
std::string pattern(uint64_t offset, uint64_t n) {
  std::string s;
  for (uint64_t i = offset; i < offset + n; ++i) s += patternByte(i);
  return s;
}

bool isInteger(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The gateway's member of Cache-Status (RFC 9211): its parameters, "hit" and "stored" as keys
// without value.
struct CacheStatus {
  std::string raw;
  std::string cache;
  std::map<std::string, std::string> params;

  bool has(const std::string& key) const { return params.count(key) > 0; }
  std::string param(const std::string& key) const {
    auto it = params.find(key);
    return it == params.end() ? "<none>" : it->second;
  }
};

CacheStatus cacheStatus(const Response& r) {
  CacheStatus s;
  s.raw = r.header("Cache-Status").value_or("<none>");
  if (!r.header("Cache-Status")) return s;
  std::vector<std::string> parts;
  std::string rest = s.raw;
  for (std::size_t semi; (semi = rest.find(';')) != std::string::npos; rest.erase(0, semi + 1))
    parts.push_back(rest.substr(0, semi));
  parts.push_back(rest);
  for (std::string& p : parts) {
    p.erase(0, p.find_first_not_of(' '));
    p.erase(p.find_last_not_of(' ') + 1);
  }
  s.cache = parts.front();
  for (std::size_t i = 1; i < parts.size(); ++i) {
    auto eq = parts[i].find('=');
    s.params[parts[i].substr(0, eq)] = eq == std::string::npos ? "" : parts[i].substr(eq + 1);
  }
  return s;
}

bool isHit(const Response& r) { return cacheStatus(r).has("hit"); }

// One exchange on a connection of its own; fails the test unless a whole response came back.
Response exchange(const Gateway& gw, std::string_view method, std::string_view target,
                  std::string_view headers = {}, std::string_view body = {}) {
  Client c(gw.port());
  REQUIRE(c.send(request(method, target, headers, body)));
  ReadOptions options;
  options.head = method == "HEAD";
  Response r = c.read(options);
  REQUIRE_MESSAGE(r.complete, method << " " << target << ": " << r.error);
  return r;
}

Response fetch(const Gateway& gw, std::string_view target, std::string_view headers = {}) {
  return exchange(gw, "GET", target, headers);
}

// GETs target every 100 ms until the answer is no longer a fresh hit: a max-age=1 entry goes
// stale within about two seconds, and then the cache has to consult the origin.
Response fetchUntilNotHit(const Gateway& gw, const std::string& target) {
  Response r;
  const bool changed = waitFor(
      [&] {
        r = fetch(gw, target);
        return !isHit(r);
      },
      5000ms, 100ms);
  REQUIRE_MESSAGE(changed, target << " still a hit after 5 s: " << cacheStatus(r).raw);
  return r;
}

// Requests the origin has received: in these tests only the ones the gateway forwarded.
uint64_t originRequests(Backend& b) { return b.stats().requests; }

constexpr const char* kLastModified = "Tue, 01 Sep 2026 10:00:00 GMT";

}  // namespace

TEST_CASE(
    "plugins cache: a miss is stored; the next GET and a HEAD are hits the origin never sees") {
  Backend b;
  Gateway gw(config(b));
  const std::string target = "/origin/a?" + cacheControl("max-age=60");

  Response miss = fetch(gw, target);
  CHECK(miss.status == 200);
  CHECK(miss.body == originBody("/origin/a", 1));
  const CacheStatus missed = cacheStatus(miss);
  INFO("miss: " << missed.raw);
  CHECK(missed.cache == "gatewayd");
  CHECK(missed.param("fwd") == "uri-miss");
  CHECK(missed.has("stored"));
  CHECK_FALSE(missed.has("hit"));

  Response hit = fetch(gw, target);
  const CacheStatus hitStatus = cacheStatus(hit);
  INFO("hit: " << hitStatus.raw);
  CHECK(hit.status == 200);
  CHECK(hit.body == originBody("/origin/a", 1));
  CHECK(hitStatus.cache == "gatewayd");
  CHECK(hitStatus.has("hit"));
  CHECK_FALSE(hitStatus.has("fwd"));
  REQUIRE(isInteger(hitStatus.param("ttl")));
  CHECK(std::stol(hitStatus.param("ttl")) >= 55);
  CHECK(std::stol(hitStatus.param("ttl")) <= 60);
  const std::string age = hit.header("Age").value_or("<none>");
  REQUIRE_MESSAGE(isInteger(age), "Age: " << age);
  CHECK(std::stol(age) <= 5);
  CHECK(hit.header("X-Backend-Id") == "b1");  // the stored fields come along
  CHECK(hit.header("Cache-Control") == "max-age=60");

  Response head = exchange(gw, "HEAD", target);
  INFO("HEAD: " << cacheStatus(head).raw);
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(isHit(head));
  // A HEAD may leave Content-Length out; if it says one, it is the GET's.
  CHECK(head.header("Content-Length").value_or("19") == std::to_string(hit.body.size()));
  CHECK(originRequests(b) == 1);
}

TEST_CASE("plugins cache: no-store, private and Set-Cookie answers are not stored unless allowed") {
  struct Case {
    const char* settings;
    std::string query;
    bool stored;
    const char* detail;  // expected Cache-Status detail on the miss when not stored, or nullptr
  };
  Case c;
  SUBCASE("no-store") { c = {"{}", cacheControl("no-store"), false, "no-store"}; }
  SUBCASE("private") { c = {"{}", cacheControl("private, max-age=60"), false, nullptr}; }
  SUBCASE("Set-Cookie") {
    c = {"{}", cacheControl("max-age=60") + "&" + originHeader("Set-Cookie: sid=1"), false,
         "set-cookie"};
  }
  SUBCASE("no-store with ignore_no_store") {
    c = {"{ignore_no_store: true, default_ttl: 60s}", cacheControl("no-store"), true, nullptr};
  }
  SUBCASE("private with ignore_private") {
    c = {"{ignore_private: true}", cacheControl("private, max-age=60"), true, nullptr};
  }
  SUBCASE("Set-Cookie with store_set_cookie") {
    c = {"{store_set_cookie: true}",
         cacheControl("max-age=60") + "&" + originHeader("Set-Cookie: sid=1"), true, nullptr};
  }
  Backend b;
  Gateway gw(config(b, c.settings));
  const std::string target = "/origin/x?" + c.query;
  Response first = fetch(gw, target);
  const CacheStatus s = cacheStatus(first);
  INFO("settings " << c.settings << ", " << target << " -> " << s.raw);
  CHECK(first.status == 200);
  CHECK(s.param("fwd") == "uri-miss");
  CHECK(s.has("stored") == c.stored);
  if (c.detail) CHECK(s.param("detail") == c.detail);
  Response second = fetch(gw, target);
  CHECK(isHit(second) == c.stored);
  CHECK(second.body == originBody("/origin/x", c.stored ? 1 : 2));
  CHECK(originRequests(b) == (c.stored ? 1 : 2));
}

TEST_CASE("plugins cache: Authorization and Cookie bypass the cache by default") {
  Backend b;
  Gateway gw(config(b));
  const std::string target = "/origin/auth?" + cacheControl("public, max-age=60");
  CHECK(fetch(gw, target).body == originBody("/origin/auth", 1));

  Response authorized = fetch(gw, target, "Authorization: Bearer t0k3n\r\n");
  INFO("Authorization: " << cacheStatus(authorized).raw);
  CHECK(authorized.body == originBody("/origin/auth", 2));
  CHECK(cacheStatus(authorized).param("fwd") == "bypass");
  Response withCookie = fetch(gw, target, "Cookie: sid=1\r\n");
  INFO("Cookie: " << cacheStatus(withCookie).raw);
  CHECK(withCookie.body == originBody("/origin/auth", 3));
  CHECK(cacheStatus(withCookie).param("fwd") == "bypass");
  const std::vector<Echo> seen = b.requests();
  REQUIRE(seen.size() == 3);
  CHECK(seen[1].header("Authorization") == "Bearer t0k3n");
  CHECK(seen[2].header("Cookie") == "sid=1");

  // The bypassed answers replaced nothing: the stored copy is still the first one.
  Response plain = fetch(gw, target);
  CHECK(isHit(plain));
  CHECK(plain.body == originBody("/origin/auth", 1));

  // An answer to an authorized request is not stored either.
  const std::string other = "/origin/auth-only?" + cacheControl("public, max-age=60");
  CHECK(fetch(gw, other, "Authorization: Bearer t0k3n\r\n").body ==
        originBody("/origin/auth-only", 4));
  Response after = fetch(gw, other);
  CHECK_FALSE(isHit(after));
  CHECK(after.body == originBody("/origin/auth-only", 5));
  CHECK(originRequests(b) == 5);
}

TEST_CASE("plugins cache: allow_authorized and allow_cookies let those requests use the cache") {
  Backend b;
  Gateway gw(config(b, "{allow_authorized: true, allow_cookies: true}"));
  const std::string target = "/origin/shared?" + cacheControl("max-age=60");
  CHECK(fetch(gw, target).body == originBody("/origin/shared", 1));
  Response withCookie = fetch(gw, target, "Cookie: sid=1\r\n");
  INFO("Cookie: " << cacheStatus(withCookie).raw);
  CHECK(isHit(withCookie));
  CHECK(withCookie.body == originBody("/origin/shared", 1));
  Response authorized = fetch(gw, target, "Authorization: Bearer t0k3n\r\n");
  INFO("Authorization: " << cacheStatus(authorized).raw);
  CHECK(isHit(authorized));
  CHECK(authorized.body == originBody("/origin/shared", 1));
  CHECK(originRequests(b) == 1);
}

// allow_authorized lets such requests use the cache, but only answers the upstream marks as
// shareable are stored (RFC 9111 §3.5, as docs/plugins.md says).
TEST_CASE("plugins cache: with allow_authorized, RFC 9111 3.5 still decides what is stored") {
  Backend b;
  Gateway gw(config(b, "{allow_authorized: true}"));
  const std::string explicitlyPublic = "/origin/public?" + cacheControl("public, max-age=60");
  CHECK(fetch(gw, explicitlyPublic, "Authorization: Bearer a\r\n").body ==
        originBody("/origin/public", 1));
  CHECK(isHit(fetch(gw, explicitlyPublic, "Authorization: Bearer a\r\n")));
  const std::string notPublic = "/origin/not-public?" + cacheControl("max-age=60");
  Response first = fetch(gw, notPublic, "Authorization: Bearer a\r\n");
  INFO("max-age=60 only: " << cacheStatus(first).raw);
  CHECK(first.body == originBody("/origin/not-public", 2));
  CHECK(cacheStatus(first).param("detail") == "authorization");
  Response again = fetch(gw, notPublic, "Authorization: Bearer a\r\n");
  CHECK_FALSE(isHit(again));
  CHECK(again.body == originBody("/origin/not-public", 3));
  CHECK(originRequests(b) == 3);
}

TEST_CASE(
    "plugins cache: default_ttl when the origin says nothing; max-age=0 and s-maxage obeyed") {
  Backend b;
  Gateway gw(config(b, "{default_ttl: 30s}"));
  CHECK(fetch(gw, "/origin/plain").body == originBody("/origin/plain", 1));
  Response hit = fetch(gw, "/origin/plain");
  const CacheStatus s = cacheStatus(hit);
  INFO("default_ttl hit: " << s.raw);
  CHECK(s.has("hit"));
  REQUIRE(isInteger(s.param("ttl")));
  CHECK(std::stol(s.param("ttl")) >= 25);
  CHECK(std::stol(s.param("ttl")) <= 30);
  CHECK(originRequests(b) == 1);

  // Freshness the origin states wins over default_ttl.
  const std::string zero = "/origin/zero?" + cacheControl("max-age=0");
  fetch(gw, zero);
  CHECK_FALSE(isHit(fetch(gw, zero)));
  CHECK(originRequests(b) == 3);
  const std::string sharedLonger = "/origin/smax?" + cacheControl("max-age=0, s-maxage=60");
  fetch(gw, sharedLonger);
  CHECK(isHit(fetch(gw, sharedLonger)));
  CHECK(originRequests(b) == 4);
  const std::string sharedZero = "/origin/smax0?" + cacheControl("max-age=60, s-maxage=0");
  fetch(gw, sharedZero);
  CHECK_FALSE(isHit(fetch(gw, sharedZero)));
  CHECK(originRequests(b) == 6);
}

TEST_CASE(
    "plugins cache: without default_ttl an answer with no freshness information is not reused") {
  Backend b;
  Gateway gw(config(b));
  fetch(gw, "/origin/plain");
  Response second = fetch(gw, "/origin/plain");
  CHECK_FALSE(isHit(second));
  CHECK(second.body == originBody("/origin/plain", 2));
}

TEST_CASE("plugins cache: an Age list from upstream counts by its first member") {
  Backend b;
  Gateway gw(config(b));
  const std::string ageList = originHeader("Age: 7200, 0");
  // 7200 s of a 7300 s lifetime already spent upstream: about 100 s left.
  const std::string aged = "/origin/aged?" + cacheControl("max-age=7300") + "&" + ageList;
  fetch(gw, aged);
  Response hit = fetch(gw, aged);
  const CacheStatus s = cacheStatus(hit);
  INFO("aged: " << s.raw << ", Age: " << hit.header("Age").value_or("<none>"));
  CHECK(isHit(hit));
  REQUIRE(isInteger(s.param("ttl")));
  CHECK(std::stol(s.param("ttl")) <= 100);
  REQUIRE(isInteger(hit.header("Age").value_or("")));
  CHECK(std::stol(*hit.header("Age")) >= 7200);
  // Older than its lifetime when it arrived: stale at once, never served unasked.
  const std::string stale = "/origin/aged-out?" + cacheControl("max-age=600") + "&" + ageList;
  fetch(gw, stale);
  Response again = fetch(gw, stale);
  INFO("aged out: " << cacheStatus(again).raw);
  CHECK_FALSE(isHit(again));
  CHECK(again.body == originBody("/origin/aged-out", 3));
  CHECK(originRequests(b) == 3);
}

TEST_CASE("plugins cache: Vary on a request header keeps one variant per value; Vary: * none") {
  Backend b;
  Gateway gw(config(b));
  const std::string target =
      "/origin/vary?" + cacheControl("max-age=60") + "&" + originHeader("Vary: X-Lang");
  CHECK(fetch(gw, target, "X-Lang: en\r\n").body == originBody("/origin/vary", 1));
  Response de = fetch(gw, target, "X-Lang: de\r\n");
  INFO("second variant: " << cacheStatus(de).raw);
  CHECK(de.body == originBody("/origin/vary", 2));
  CHECK(cacheStatus(de).param("fwd") == "vary-miss");
  Response en = fetch(gw, target, "X-Lang: en\r\n");
  CHECK(isHit(en));
  CHECK(en.body == originBody("/origin/vary", 1));
  de = fetch(gw, target, "X-Lang: de\r\n");
  CHECK(isHit(de));
  CHECK(de.body == originBody("/origin/vary", 2));
  // No X-Lang at all is a value of its own.
  CHECK(fetch(gw, target).body == originBody("/origin/vary", 3));
  CHECK(fetch(gw, target).body == originBody("/origin/vary", 3));
  CHECK(originRequests(b) == 3);

  const std::string star =
      "/origin/star?" + cacheControl("max-age=60") + "&" + originHeader("Vary: *");
  fetch(gw, star);
  Response again = fetch(gw, star);
  CHECK_FALSE(isHit(again));
  CHECK(again.body == originBody("/origin/star", 5));
}

TEST_CASE(
    "plugins cache: only Vary's fields select a variant; a coded answer also by Accept-Encoding") {
  Backend b;
  Gateway gw(config(b));
  // RFC 9111 4.1: without Vary, one stored answer serves every Accept-Encoding, and a Range
  // request with Accept-Encoding: identity gets its part of it.
  const std::string plain = "/origin/ae?size=100&" + cacheControl("max-age=60");
  CHECK(fetch(gw, plain, "Accept-Encoding: gzip\r\n").body == pattern(0, 100));
  for (const char* headers : {"", "Accept-Encoding: br\r\n", "Accept-Encoding: identity\r\n"}) {
    Response r = fetch(gw, plain, headers);
    INFO("'" << headers << "' -> " << cacheStatus(r).raw);
    CHECK(isHit(r));
    CHECK(r.body == pattern(0, 100));
  }
  Response part = fetch(gw, plain, "Accept-Encoding: identity\r\nRange: bytes=10-19\r\n");
  INFO("range: " << cacheStatus(part).raw);
  CHECK(isHit(part));
  CHECK(part.status == 206);
  CHECK(part.body == pattern(10, 10));
  CHECK(originRequests(b) == 1);

  // A content-coded answer whose origin forgot Vary: Accept-Encoding is still only served to
  // requests with the Accept-Encoding it was fetched with (a miss costs less than a body the
  // client cannot decode).
  const std::string coded = "/origin/ae-coded?" + cacheControl("max-age=60") + "&" +
                            originHeader("Content-Encoding: gzip");
  CHECK(fetch(gw, coded, "Accept-Encoding: gzip\r\n").body == originBody("/origin/ae-coded", 2));
  Response identity = fetch(gw, coded, "Accept-Encoding: identity\r\n");
  CHECK_FALSE(isHit(identity));
  CHECK(identity.body == originBody("/origin/ae-coded", 3));
  Response gzip = fetch(gw, coded, "Accept-Encoding: gzip\r\n");
  CHECK(isHit(gzip));
  CHECK(gzip.body == originBody("/origin/ae-coded", 2));
  CHECK(originRequests(b) == 3);
}

TEST_CASE("plugins cache: key.headers, sort_query and ignore_query_params shape the key") {
  Backend b;
  Gateway gw(config(
      b, "{key: {headers: [X-Tenant], sort_query: true, ignore_query_params: [utm_source]}}"));
  const std::string cc = cacheControl("max-age=60");
  const std::string tenant = "/origin/tenant?" + cc;
  CHECK(fetch(gw, tenant, "X-Tenant: a\r\n").body == originBody("/origin/tenant", 1));
  CHECK(fetch(gw, tenant, "X-Tenant: b\r\n").body == originBody("/origin/tenant", 2));
  Response a = fetch(gw, tenant, "X-Tenant: a\r\n");
  CHECK(isHit(a));
  CHECK(a.body == originBody("/origin/tenant", 1));
  CHECK(originRequests(b) == 2);

  CHECK(fetch(gw, "/origin/q?a=1&b=2&" + cc).body == originBody("/origin/q", 3));
  for (const std::string& same :
       {"/origin/q?" + cc + "&b=2&a=1", "/origin/q?utm_source=news&a=1&b=2&" + cc}) {
    Response r = fetch(gw, same);
    INFO(same << " -> " << cacheStatus(r).raw);
    CHECK(isHit(r));
    CHECK(r.body == originBody("/origin/q", 3));
  }
  Response other = fetch(gw, "/origin/q?a=1&b=3&" + cc);
  CHECK_FALSE(isHit(other));
  CHECK(other.body == originBody("/origin/q", 4));
  CHECK(originRequests(b) == 4);
}

TEST_CASE("plugins cache: by default the key is the exact query and no other request header") {
  Backend b;
  Gateway gw(config(b));
  const std::string cc = cacheControl("max-age=60");
  fetch(gw, "/origin/q?a=1&b=2&" + cc);
  Response reordered = fetch(gw, "/origin/q?b=2&a=1&" + cc);
  CHECK_FALSE(isHit(reordered));
  CHECK(reordered.body == originBody("/origin/q", 2));
  Response tracked = fetch(gw, "/origin/q?a=1&b=2&" + cc + "&utm_source=x");
  CHECK_FALSE(isHit(tracked));
  const std::string tenant = "/origin/tenant?" + cc;
  fetch(gw, tenant, "X-Tenant: a\r\n");
  CHECK(isHit(fetch(gw, tenant, "X-Tenant: b\r\n")));
  CHECK(originRequests(b) == 4);
}

TEST_CASE("plugins cache: the key holds the Host value the backend receives, port and all") {
  // With preserve_host: false the backend still receives the client's value, as
  // X-Forwarded-Host, and may build its answer from it just the same.
  bool preserveHost = true;
  SUBCASE("preserve_host: true") {}
  SUBCASE("preserve_host: false") { preserveHost = false; }
  Backend b;
  std::string yaml = config(b);
  if (!preserveHost) {
    const std::string route = "    upstream: main\n";
    yaml.insert(yaml.find(route) + route.size(), "    preserve_host: false\n");
  }
  Gateway gw(yaml);
  const std::string target = "/origin/host?" + cacheControl("max-age=60");
  auto fetchAs = [&](std::string_view host, std::string_view method = "GET") {
    Client c(gw.port());
    REQUIRE(c.send(request(method, target, {}, {}, host)));
    Response r = c.read();
    REQUIRE_MESSAGE(r.complete, host << ": " << r.error);
    return r;
  };
  // A client poisons the entry for "victim.example" if the port is not part of the key.
  CHECK(fetchAs("victim.example:6666").body == originBody("/origin/host", 1));
  const std::vector<Echo> seen = b.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].header(preserveHost ? "Host" : "X-Forwarded-Host") == "victim.example:6666");
  for (const auto& [hostName, rank] : std::vector<std::pair<std::string, int>>{
           {"victim.example", 2}, {"victim.example.", 3}, {"VICTIM.example", 4}}) {
    const std::string& host = hostName;  // INFO takes a variable, not a binding
    Response r = fetchAs(host);
    INFO(host << " -> " << cacheStatus(r).raw);
    CHECK_FALSE(isHit(r));
    CHECK(r.body == originBody("/origin/host", rank));
  }
  Response same = fetchAs("victim.example");
  CHECK(isHit(same));
  CHECK(same.body == originBody("/origin/host", 2));
  CHECK(originRequests(b) == 4);
  // An unsafe request invalidates the URL whatever port or case its Host was written with.
  CHECK(fetchAs("Victim.Example:80", "DELETE").status == 200);
  for (const char* host :
       {"victim.example:6666", "victim.example", "victim.example.", "VICTIM.example"}) {
    Response r = fetchAs(host);
    INFO(host << " after DELETE -> " << cacheStatus(r).raw);
    CHECK_FALSE(isHit(r));
  }
  CHECK(originRequests(b) == 9);
}

TEST_CASE("plugins cache: a GET with a body neither reads nor fills the store") {
  Backend b;
  Gateway gw(config(b));
  const std::string target = "/origin/get-body?" + cacheControl("max-age=60");
  auto withBody = [&](std::string_view headers, std::string_view body, int rank) {
    Response r = exchange(gw, "GET", target, headers, body);
    const CacheStatus s = cacheStatus(r);
    INFO(headers << " -> " << s.raw);
    CHECK(r.status == 200);
    CHECK(r.body == originBody("/origin/get-body", rank));
    CHECK(s.param("fwd") == "bypass");
    CHECK(s.param("detail") == "request-body");
    CHECK_FALSE(s.has("stored"));
  };
  // What the origin answered by a body is served to no one else ...
  withBody("Content-Type: text/plain\r\n", "q=secret", 1);
  Response plain = fetch(gw, target);
  CHECK_FALSE(isHit(plain));
  CHECK(plain.body == originBody("/origin/get-body", 2));
  // ... and a stored answer is not served to a request with a body.
  withBody("Transfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n", 3);
  plain = fetch(gw, target);
  CHECK(isHit(plain));
  CHECK(plain.body == originBody("/origin/get-body", 2));
  CHECK(originRequests(b) == 3);
}

TEST_CASE(
    "plugins cache: a successful unsafe request invalidates its URL and same-origin Location") {
  Backend b;
  Gateway gw(config(b, "{default_ttl: 60s}"));
  for (const char* path : {"/origin/inv", "/origin/other", "/origin/third", "/origin/fourth"}) {
    fetch(gw, path);
    CHECK_MESSAGE(isHit(fetch(gw, path)), path);
  }
  CHECK(originRequests(b) == 4);

  Response posted = exchange(gw, "POST", "/origin/inv", "Content-Type: text/plain\r\n", "new");
  CHECK(posted.status == 200);
  Response refetched = fetch(gw, "/origin/inv");
  CHECK_FALSE(isHit(refetched));
  CHECK(refetched.body == originBody("/origin/inv", 6));

  // Location (relative) and Content-Location (absolute, same host) of a 201 are invalidated; a
  // Location on another host is not, nor anything named by an error answer.
  const std::string create = "/origin/create?status=201&" +
                             originHeader("Location: /origin/other") + "&" +
                             originHeader("Content-Location: http://gw.test/origin/third");
  CHECK(exchange(gw, "POST", create, {}, "{}").status == 201);
  CHECK(
      exchange(gw, "PUT",
               "/origin/elsewhere?" + originHeader("Location: http://elsewhere.test/origin/fourth"),
               {}, "{}")
          .status == 200);
  CHECK(exchange(gw, "DELETE",
                 "/origin/missing?status=404&" + originHeader("Location: /origin/fourth"))
            .status == 404);
  Response other = fetch(gw, "/origin/other");
  CHECK_FALSE(isHit(other));
  CHECK(other.body == originBody("/origin/other", 10));
  Response third = fetch(gw, "/origin/third");
  CHECK_FALSE(isHit(third));
  CHECK(third.body == originBody("/origin/third", 11));
  Response fourth = fetch(gw, "/origin/fourth");
  CHECK(isHit(fourth));
  CHECK(fourth.body == originBody("/origin/fourth", 4));
  CHECK(originRequests(b) == 11);
}

TEST_CASE("plugins cache: If-None-Match and If-Modified-Since on a fresh entry get a 304 from it") {
  Backend b;
  Gateway gw(config(b));
  const std::string target = "/origin/cond?etag=" + percentEncode("\"v1\"") +
                             "&lm=" + percentEncode(kLastModified) + "&" + cacheControl("max-age=60");
  CHECK(fetch(gw, target).body == originBody("/origin/cond", 1));

  struct Case {
    const char* conditional;
    int status;
  };
  for (const Case& c :
       {Case{"If-None-Match: \"v1\"", 304}, Case{"If-None-Match: W/\"v1\"", 304},
        Case{"If-None-Match: \"zz\", \"v1\"", 304}, Case{"If-None-Match: \"v2\"", 200},
        Case{"If-Modified-Since: Tue, 01 Sep 2026 10:00:00 GMT", 304},
        Case{"If-Modified-Since: Wed, 02 Sep 2026 10:00:00 GMT", 304},
        Case{"If-Modified-Since: Mon, 31 Aug 2026 10:00:00 GMT", 200},
        // If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
        Case{"If-None-Match: \"v2\"\r\nIf-Modified-Since: "
             "Tue, 01 Sep 2026 10:00:00 GMT",
             200}}) {
    Response r = fetch(gw, target, std::string(c.conditional) + "\r\n");
    INFO(c.conditional << " -> " << r.status << ", " << cacheStatus(r).raw);
    CHECK(r.status == c.status);
    if (c.status == 304) {
      CHECK(r.body.empty());
      CHECK(r.header("ETag") == "\"v1\"");
    } else {
      CHECK(r.body == originBody("/origin/cond", 1));
    }
  }
  Response head = exchange(gw, "HEAD", target, "If-None-Match: \"v1\"\r\n");
  CHECK(head.status == 304);
  CHECK(originRequests(b) == 1);
}

TEST_CASE("plugins cache: a stale entry is revalidated with its validator; a 304 refreshes it") {
  struct Case {
    std::string validator;  // query asking the origin for it
    const char* sent;       // the conditional field the origin must see
    std::string value;
  };
  Case c;
  SUBCASE("ETag") { c = {"etag=" + percentEncode("\"r1\""), "If-None-Match", "\"r1\""}; }
  SUBCASE("Last-Modified") {
    c = {"lm=" + percentEncode(kLastModified), "If-Modified-Since", kLastModified};
  }
  Backend b;
  Gateway gw(config(b));
  const std::string target = "/origin/reval?" + c.validator + "&" + cacheControl("max-age=1");
  CHECK(fetch(gw, target).body == originBody("/origin/reval", 1));

  Response revalidated = fetchUntilNotHit(gw, target);
  const CacheStatus s = cacheStatus(revalidated);
  INFO(c.sent << ": " << s.raw);
  CHECK(revalidated.status == 200);
  CHECK(revalidated.body == originBody("/origin/reval", 1));  // the stored body, not a new one
  CHECK(s.param("fwd") == "stale");
  CHECK(s.param("fwd-status") == "304");
  const std::vector<Echo> seen = b.requests();
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].header(c.sent) == c.value);
  // The 304 made the entry fresh again.
  Response after = fetch(gw, target);
  CHECK(isHit(after));
  CHECK(after.body == originBody("/origin/reval", 1));
  CHECK(originRequests(b) == 2);
}

TEST_CASE("plugins cache: a 304 that makes the stored entry unstorable removes it") {
  Backend b;
  Gateway gw(config(b));
  // The 200 may be kept for a second; the 304 that revalidates it says no-store.
  const std::string target = "/origin/reval-gone?etag=" + percentEncode("\"r1\"") + "&" +
                             cacheControl("max-age=1") +
                             "&h304=" + percentEncode("Cache-Control: no-store");
  CHECK(fetch(gw, target).body == originBody("/origin/reval-gone", 1));

  Response revalidated = fetchUntilNotHit(gw, target);
  const CacheStatus s = cacheStatus(revalidated);
  INFO("revalidated: " << s.raw);
  CHECK(revalidated.status == 200);
  CHECK(revalidated.body == originBody("/origin/reval-gone", 1));
  CHECK(s.param("fwd") == "stale");
  CHECK(s.param("fwd-status") == "304");
  CHECK_FALSE(s.has("stored"));
  // The entry is gone: the next request is a plain miss, fetched without a validator.
  Response next = fetch(gw, target);
  INFO("next: " << cacheStatus(next).raw);
  CHECK(cacheStatus(next).param("fwd") == "uri-miss");
  CHECK(next.body == originBody("/origin/reval-gone", 3));
  const std::vector<Echo> seen = b.requests();
  REQUIRE(seen.size() == 3);
  CHECK(seen[1].header("If-None-Match") == "\"r1\"");
  CHECK_FALSE(seen[2].header("If-None-Match"));
}

// Waits on the clock alone (polling would refresh the entry early) until an entry stored now
// with max-age=2 is stale: its age, counted in whole seconds, is then past 2.
void waitUntilStale() {
  const auto storedAt = std::chrono::steady_clock::now();
  REQUIRE(waitFor([&] { return std::chrono::steady_clock::now() - storedAt >= 3100ms; }, 3200ms));
}

TEST_CASE("plugins cache: stale-while-revalidate answers at once and refreshes in the background") {
  Backend b;
  Gateway gw(config(b));
  // The origin takes 500 ms, so an answer much faster than that came from the store.
  const std::string target =
      "/origin/swr?delay=500&" + cacheControl("max-age=2, stale-while-revalidate=30");
  CHECK(fetch(gw, target).body == originBody("/origin/swr", 1));
  waitUntilStale();
  CHECK(originRequests(b) == 1);

  // The first request to find it stale does not wait for the refresh it starts (RFC 5861 3).
  auto sentAt = std::chrono::steady_clock::now();
  Response first = fetch(gw, target);
  auto took = std::chrono::steady_clock::now() - sentAt;
  INFO("first: " << cacheStatus(first).raw);
  CHECK(isHit(first));
  CHECK(cacheStatus(first).param("detail") == "stale-while-revalidate");
  CHECK(first.body == originBody("/origin/swr", 1));
  CHECK(took < 300ms);
  REQUIRE(waitFor([&] { return originRequests(b) == 2; }, 2000ms, 10ms));
  // Nor does the next one, and it starts no second refresh.
  sentAt = std::chrono::steady_clock::now();
  Response meanwhile = fetch(gw, target);
  took = std::chrono::steady_clock::now() - sentAt;
  CHECK(isHit(meanwhile));
  CHECK(meanwhile.body == originBody("/origin/swr", 1));
  CHECK(took < 300ms);
  // What the refresh fetched replaces the stale copy.
  Response refreshed;
  CHECK(waitFor(
      [&] {
        refreshed = fetch(gw, target);
        return refreshed.body == originBody("/origin/swr", 2);
      },
      3000ms, 50ms));
  INFO("refreshed: " << cacheStatus(refreshed).raw);
  CHECK(isHit(refreshed));
  CHECK_FALSE(cacheStatus(refreshed).has("detail"));
  CHECK(originRequests(b) == 2);
  // The refresh asked for the whole answer (no validator here) as a GET like any other.
  const std::vector<Echo> seen = b.requests();
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].method == "GET");
  CHECK(seen[1].target == target);
  CHECK(seen[1].header("Host") == "gw.test");
  CHECK(seen[1].header("Via") == "1.1 gatewayd");
}

TEST_CASE("plugins cache: a background refresh revalidates with the entry's validator") {
  Backend b;
  Gateway gw(config(b));
  std::string target = "/origin/swr-304?etag=" + percentEncode("\"s1\"") + "&" +
                       cacheControl("max-age=2, stale-while-revalidate=30");
  // A 304 may carry the Content-Length of the stored representation (RFC 9110 §8.6); it still
  // has no body, and the refresh must not wait for one.
  SUBCASE("a bare 304") {}
  SUBCASE("a 304 carrying Content-Length") {
    target += "&h304=" + percentEncode("Content-Length: 4096");
  }
  CHECK(fetch(gw, target).body == originBody("/origin/swr-304", 1));
  waitUntilStale();
  // A client's own conditional is answered from the stale copy; the refresh asks with "s1".
  Response first = fetch(gw, target, "If-None-Match: \"other\"\r\n");
  CHECK(first.status == 200);
  CHECK(cacheStatus(first).param("detail") == "stale-while-revalidate");
  // The origin's 304 freshens the entry: fresh hits again, with the stored body.
  Response fresh;
  CHECK(waitFor(
      [&] {
        fresh = fetch(gw, target);
        return !cacheStatus(fresh).has("detail");
      },
      3000ms, 50ms));
  INFO("after the 304: " << cacheStatus(fresh).raw);
  CHECK(isHit(fresh));
  CHECK(fresh.body == originBody("/origin/swr-304", 1));
  const std::vector<Echo> seen = b.requests();
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].header("If-None-Match") == "\"s1\"");
}

TEST_CASE("plugins cache: a background refresh is bounded by coalesce_timeout") {
  Backend b;
  Gateway gw(config(b, "{coalesce_timeout: 300ms}"));
  // The origin takes 2 s; a refresh is given up after 300 ms and the next request tries again.
  const std::string target =
      "/origin/swr-slow?delay=2000&" + cacheControl("max-age=2, stale-while-revalidate=30");
  const auto storedAt = std::chrono::steady_clock::now();
  CHECK(fetch(gw, target, {}).body == originBody("/origin/swr-slow", 1));
  REQUIRE(waitFor([&] { return std::chrono::steady_clock::now() - storedAt >= 3100ms; }, 4000ms));
  const auto firstAt = std::chrono::steady_clock::now();
  CHECK(isHit(fetch(gw, target)));
  REQUIRE(waitFor([&] { return originRequests(b) == 2; }, 1000ms, 10ms));
  // Every request meanwhile is answered from the stale copy; after the timeout one of them
  // starts the second refresh, long before the first one's origin answer would come.
  int notFromStore = 0;
  CHECK(waitFor(
      [&] {
        notFromStore += !isHit(fetch(gw, target));
        return originRequests(b) == 3;
      },
      1500ms, 50ms));
  CHECK(notFromStore == 0);
  CHECK(std::chrono::steady_clock::now() - firstAt < 1800ms);
}

TEST_CASE("plugins cache: a background refresh still running does not hold up shutdown") {
  Backend b;
  auto gw = std::make_unique<Gateway>(config(b, "{coalesce_timeout: 30s}"));
  // Answered at once the first time; the refresh then waits ten seconds for the origin.
  const std::string target = "/origin/swr-stop?delay=10000&delay_after=1&" +
                             cacheControl("max-age=2, stale-while-revalidate=60");
  CHECK(fetch(*gw, target).body == originBody("/origin/swr-stop", 1));
  waitUntilStale();
  CHECK(isHit(fetch(*gw, target)));
  REQUIRE(waitFor([&] { return originRequests(b) == 2; }, 2000ms));
  // Stopped with SIGTERM: a clean exit (checked by ~Gateway, sanitizers included), not after
  // the refresh, which nobody waits for.
  const auto stopAt = std::chrono::steady_clock::now();
  gw.reset();
  CHECK(std::chrono::steady_clock::now() - stopAt < 3000ms);
}

TEST_CASE("plugins cache: at most 64 background refreshes run at once on a worker") {
  constexpr int kKeys = 65;  // one more than a worker runs at once
  // The 65 stale requests must all be answered while the first refreshes still run: the origin
  // takes long enough for a sanitized build on a loaded machine, within coalesce_timeout (5 s).
  constexpr int kOriginMs = 3000;
  Backend b;
  Gateway gw(config(b));
  auto target = [](int i) {
    return "/origin/swr-many/" + std::to_string(i) + "?delay=" + std::to_string(kOriginMs) + "&" +
           cacheControl("max-age=2, stale-while-revalidate=30");
  };
  // Which origin answer a key's stored copy is: 1..65 filled it, later ones refreshed it.
  auto storedRank = [&](int i) {
    const std::string body = fetch(gw, target(i)).body;
    return std::stoi(body.substr(body.find('#') + 1));
  };
  // Filled in parallel, each answer taking the origin kOriginMs.
  std::vector<std::unique_ptr<Client>> fill;
  for (int i = 0; i < kKeys; ++i) {
    fill.push_back(std::make_unique<Client>(gw.port(), 10000ms));
    REQUIRE(fill.back()->send(get(target(i))));
  }
  for (auto& client : fill) REQUIRE(client->read(10000ms).status == 200);
  fill.clear();
  waitUntilStale();
  REQUIRE(originRequests(b) == kKeys);
  // One stale request per key, in order, each answered at once; the last finds no room.
  for (int i = 0; i < kKeys; ++i) {
    Response r = fetch(gw, target(i));
    CHECK(cacheStatus(r).param("detail") == "stale-while-revalidate");
  }
  CHECK(waitFor([&] { return originRequests(b) == 2 * kKeys - 1; }, 2000ms));
  REQUIRE(waitFor([&] { return storedRank(kKeys - 2) > kKeys; }, 8000ms, 50ms));
  for (int i = 0; i < kKeys - 1; ++i) CHECK_MESSAGE(storedRank(i) > kKeys, "key " << i);
  CHECK(storedRank(kKeys - 1) <= kKeys);
}

TEST_CASE("plugins cache: hits, misses and bypasses are counted and logged") {
  Backend b;
  TempDir dir;
  const std::string logPath = dir.path() + "/access.log";
  Gateway gw("access_log:\n  path: " + logPath + "\n" + config(b));
  const std::string target = "/origin/counted?" + cacheControl("max-age=60");
  fetch(gw, target);
  fetch(gw, target);
  fetch(gw, target, "Cookie: sid=1\r\n");

  std::vector<std::string> results;
  waitFor(
      [&] {
        results.clear();
        const std::regex kCacheField(R"re("cache":"([a-z]*)")re");
        const std::string text = readFile(logPath);
        for (std::sregex_iterator it(text.begin(), text.end(), kCacheField), end; it != end; ++it)
          results.push_back((*it)[1]);
        return results.size() >= 3;
      },
      5000ms);
  CHECK(results == std::vector<std::string>{"miss", "hit", "bypass"});

  const std::string metrics = adminRequest(gw, "/metrics").body;
  for (const char* result : {"miss", "hit", "bypass"}) {
    const std::string series =
        std::string("gatewayd_cache_requests_total{route=\"cached\",result=\"") + result + "\"}";
    CHECK_MESSAGE(metricSample(metrics, series) == 1, series);
  }
}

TEST_CASE("plugins cache: stale-if-error serves the stale copy when the origin fails") {
  Backend b1("b1"), b2("b2");
  Gateway byDirective(config(b1));
  Gateway byDefault(config(b2, "{stale_if_error: 60s}"));
  // fail_after=1: the origin answers this target once, then 503 for good.
  const std::string allowed =
      "/origin/sie?fail_after=1&" + cacheControl("max-age=1, stale-if-error=60");
  const std::string notAllowed = "/origin/strict?fail_after=1&" + cacheControl("max-age=1");
  const std::string operatorDefault = "/origin/op?fail_after=1&" + cacheControl("max-age=1");
  CHECK(fetch(byDirective, allowed).body == originBody("/origin/sie", 1));
  CHECK(fetch(byDirective, notAllowed).body == originBody("/origin/strict", 2));
  CHECK(fetch(byDefault, operatorDefault).body == originBody("/origin/op", 1));

  using Case = std::pair<const Gateway*, std::string>;
  for (const auto& [gw, caseTarget] :
       {Case{&byDirective, allowed}, Case{&byDefault, operatorDefault}}) {
    const auto& target = caseTarget;  // INFO takes a variable, not a binding
    Response stale = fetchUntilNotHit(*gw, target);
    const CacheStatus s = cacheStatus(stale);
    INFO(target << ": " << s.raw);
    CHECK(stale.status == 200);
    CHECK(stale.body.starts_with("origin /origin/"));
    CHECK(stale.body.ends_with(" #1"));
    CHECK(s.param("fwd") == "stale");
    CHECK(s.param("fwd-status") == "503");
    CHECK(s.param("detail") == "stale-if-error");
  }
  Response failed = fetchUntilNotHit(byDirective, notAllowed);
  CHECK(failed.status == 503);
  CHECK(failed.body == "origin failing\n");
}

TEST_CASE("plugins cache: Range requests are answered from a stored entry with 206 or 416") {
  Backend b;
  Gateway gw(config(b));
  const std::string target = "/origin/range?size=100&" + cacheControl("max-age=60");
  Response whole = fetch(gw, target);
  REQUIRE(whole.body == pattern(0, 100));

  struct Case {
    const char* range;
    int status;
    const char* contentRange;
    uint64_t from, length;
  };
  for (const Case& c : {Case{"bytes=10-19", 206, "bytes 10-19/100", 10, 10},
                        Case{"bytes=-5", 206, "bytes 95-99/100", 95, 5},
                        Case{"bytes=90-", 206, "bytes 90-99/100", 90, 10},
                        Case{"bytes=95-500", 206, "bytes 95-99/100", 95, 5},
                        Case{"bytes=200-300", 416, "bytes */100", 0, 0}}) {
    Response r = fetch(gw, target, "Range: " + std::string(c.range) + "\r\n");
    INFO(c.range << " -> " << r.status << ", " << cacheStatus(r).raw);
    CHECK(r.status == c.status);
    CHECK(r.header("Content-Range") == c.contentRange);
    if (c.status == 206) {
      CHECK(r.body == pattern(c.from, c.length));
      CHECK(r.header("Content-Length") == std::to_string(c.length));
    }
  }
  CHECK(originRequests(b) == 1);
}

TEST_CASE("plugins cache: only-if-cached with nothing stored is a 504 NOT_CACHED") {
  Backend b;
  Gateway gw(config(b));
  const std::string target = "/origin/oic?" + cacheControl("max-age=60");
  Response empty = fetch(gw, target, "Cache-Control: only-if-cached\r\n");
  CHECK(empty.status == 504);
  CHECK(errorCode(empty.body) == "NOT_CACHED");
  CHECK(empty.header("Content-Type").value_or("").find("application/json") == 0);
  CHECK(originRequests(b) == 0);

  fetch(gw, target);
  Response stored = fetch(gw, target, "Cache-Control: only-if-cached\r\n");
  CHECK(stored.status == 200);
  CHECK(stored.body == originBody("/origin/oic", 1));
  CHECK(originRequests(b) == 1);
}

TEST_CASE(
    "plugins cache: a client's no-cache goes to the origin; honour_request_directives: false "
    "ignores it") {
  SUBCASE("honoured") {
    Backend b;
    Gateway gw(config(b));
    const std::string target = "/origin/req?" + cacheControl("max-age=60");
    fetch(gw, target);
    for (const char* directive : {"Cache-Control: no-cache", "Pragma: no-cache"}) {
      Response r = fetch(gw, target, std::string(directive) + "\r\n");
      INFO(directive << " -> " << cacheStatus(r).raw);
      CHECK(cacheStatus(r).param("fwd") == "request");
    }
    CHECK(originRequests(b) == 3);
  }
  SUBCASE("honour_request_directives: false") {
    Backend b;
    Gateway gw(config(b, "{honour_request_directives: false}"));
    const std::string target = "/origin/req?" + cacheControl("max-age=60");
    fetch(gw, target);
    CHECK(isHit(fetch(gw, target, "Cache-Control: no-cache\r\n")));
    CHECK(isHit(fetch(gw, target, "Pragma: no-cache\r\n")));
    CHECK(originRequests(b) == 1);
  }
}

TEST_CASE("plugins cache: a client's no-store keeps its exchange out of the store") {
  Backend b;
  Gateway gw(config(b));
  // RFC 9111 5.2.1.5: nothing of the exchange is stored; a stored answer may still serve it.
  const std::string fresh = "/origin/req-ns?" + cacheControl("max-age=60");
  Response miss = fetch(gw, fresh, "Cache-Control: no-store\r\n");
  INFO("no-store on a miss -> " << cacheStatus(miss).raw);
  CHECK_FALSE(cacheStatus(miss).has("stored"));
  CHECK(fetch(gw, fresh).body == originBody("/origin/req-ns", 2));
  Response served = fetch(gw, fresh, "Cache-Control: no-store\r\n");
  INFO("no-store on a stored entry -> " << cacheStatus(served).raw);
  CHECK(isHit(served));
  CHECK(served.body == originBody("/origin/req-ns", 2));
  CHECK(originRequests(b) == 2);
}

TEST_CASE(
    "plugins cache: an answer over max_entry_bytes streams through intact and is not stored") {
  Backend b;
  Gateway gw(config(b, "{max_entry_bytes: 64KiB, default_ttl: 60s}"));
  const std::string big = "/origin/big?size=200000&" + cacheControl("max-age=60");
  for (int i = 1; i <= 2; ++i) {
    Response r = fetch(gw, big);
    INFO("attempt " << i << ": " << cacheStatus(r).raw);
    CHECK(r.status == 200);
    CHECK(r.body == pattern(0, 200000));
    CHECK_FALSE(isHit(r));
    CHECK(cacheStatus(r).param("detail") == "too-large");  // Content-Length said so up front
    CHECK(originRequests(b) == static_cast<uint64_t>(i));
  }
  // Without a Content-Length the cache learns it is too large only while it streams.
  for (int i = 1; i <= 2; ++i) {
    Response r = fetch(gw, "/chunked/300000?chunk=16384");
    CHECK(r.status == 200);
    CHECK(r.body == pattern(0, 300000));
    CHECK_FALSE(isHit(r));
  }
  CHECK(originRequests(b) == 4);
  // Under the cap both framings are stored.
  for (const char* small : {"/chunked/1000", "/origin/small?size=60000"}) {
    Response first = fetch(gw, small);
    Response second = fetch(gw, small);
    INFO(small << ": " << cacheStatus(first).raw << " then " << cacheStatus(second).raw);
    CHECK(isHit(second));
    CHECK(second.body == first.body);
  }
  CHECK(originRequests(b) == 6);
}

TEST_CASE("plugins cache: concurrent misses on one key make one origin request") {
  constexpr int kClients = 8;
  std::string settings = "{}";
  std::string directives = "max-age=60";
  int expectedOriginRequests = 1;
  SUBCASE("coalesced") {}
  SUBCASE("coalesce: false") {
    settings = "{coalesce: false}";
    expectedOriginRequests = kClients;
  }
  SUBCASE("the leader's answer is not storable: the waiters fetch for themselves") {
    directives = "no-store";
    expectedOriginRequests = kClients;
  }
  Backend b;
  Gateway gw(config(b, settings, 2));
  const std::string target = "/origin/slow?delay=300&" + cacheControl(directives);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>(gw.port()));
    REQUIRE(clients.back()->connected());
  }
  std::vector<Response> responses(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] { responses[i] = clients[i]->roundTrip(get(target), 5000ms); });
  }
  for (auto& t : threads) t.join();

  CHECK(originRequests(b) == static_cast<uint64_t>(expectedOriginRequests));
  int hits = 0;
  for (const Response& r : responses) {
    INFO(r.status << " " << r.body << " " << cacheStatus(r).raw);
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    if (expectedOriginRequests == 1) CHECK(r.body == originBody("/origin/slow", 1));
    if (!isHit(r)) CHECK(cacheStatus(r).param("fwd") == "uri-miss");
    hits += isHit(r);
  }
  CHECK(hits == kClients - expectedOriginRequests);
}

TEST_CASE("plugins cache: when the leading client leaves, one waiter fetches for the others") {
  constexpr int kWaiters = 5;
  Backend b;
  Gateway gw(config(b));
  // A stored entry to probe with: the gateway answers it alone, after what was sent before it.
  const std::string probe = "/origin/probe?" + cacheControl("max-age=60");
  fetch(gw, probe);
  const std::string target = "/origin/left?delay=500&" + cacheControl("max-age=60");
  Client leader(gw.port());
  REQUIRE(leader.send(get(target)));
  REQUIRE(waitFor([&] { return originRequests(b) == 2; }, 2000ms));
  std::vector<std::unique_ptr<Client>> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.push_back(std::make_unique<Client>(gw.port()));
    REQUIRE(waiters.back()->send(get(target)));
  }
  // The one worker reads in order: once the probe is answered, every waiter waits for the leader.
  CHECK(isHit(fetch(gw, probe)));
  leader.close();

  std::vector<Response> answers;
  for (auto& waiter : waiters) answers.push_back(waiter->read(5000ms));
  int hits = 0;
  for (const Response& r : answers) {
    INFO(r.status << " " << r.body << " " << cacheStatus(r).raw);
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    CHECK(r.body == answers.front().body);
    hits += isHit(r);
  }
  CHECK(answers.front().body.starts_with("origin /origin/left #"));
  // The probe, the leader's fetch, and one more for all the waiters (not one each).
  CHECK(originRequests(b) == 3);
  CHECK(hits == kWaiters - 1);
}

TEST_CASE("plugins cache: a waiter stops waiting after coalesce_timeout and fetches itself") {
  Backend b;
  Gateway gw(config(b, "{coalesce_timeout: 200ms}"));
  // The leader's origin answer takes 1.5 s; the second request gives up waiting after 200 ms.
  const std::string target = "/origin/slow-leader?delay=1500&" + cacheControl("max-age=60");
  Response leader, waiter;
  std::thread first([&] { leader = fetch(gw, target); });
  REQUIRE(waitFor([&] { return originRequests(b) >= 1; }, 2000ms));
  const auto sentAt = std::chrono::steady_clock::now();
  waiter = fetch(gw, target);
  const auto took = std::chrono::steady_clock::now() - sentAt;
  first.join();
  INFO("leader: " << cacheStatus(leader).raw << "; waiter: " << cacheStatus(waiter).raw);
  CHECK(leader.status == 200);
  CHECK(waiter.status == 200);
  CHECK_FALSE(isHit(waiter));
  CHECK(originRequests(b) == 2);  // without the timeout the waiter would have had the leader's
  CHECK(took >= 1500ms);          // its own fetch, not an early error
}

TEST_CASE("plugins cache: a waiter outlasting client_header_timeout is answered, not timed out") {
  Backend b;
  Gateway gw(config(b, "{coalesce_timeout: 4s}", 1, "limits:\n  client_header_timeout: 1s\n"));
  const std::string target = "/origin/slow-head?delay=2500&" + cacheControl("max-age=60");
  Response leader;
  std::thread first([&] { leader = fetch(gw, target); });
  REQUIRE(waitFor([&] { return originRequests(b) >= 1; }, 2000ms));
  Response waiter = fetch(gw, target);  // waits ~2.5 s for the leader, past the 1 s head deadline
  first.join();
  INFO("waiter: " << waiter.status << " " << cacheStatus(waiter).raw);
  CHECK(leader.status == 200);
  CHECK(waiter.status == 200);
  CHECK(isHit(waiter));
  CHECK(originRequests(b) == 1);
}

TEST_CASE("plugins cache: a 503 replaced by stale-if-error still counts against the backend") {
  Backend b;
  Gateway gw(config(b, "{stale_if_error: 60s}", 1, {},
                    "    health_checks:\n      passive: {consecutive_failures: 2, count_5xx: true}\n"));
  const std::string target = "/origin/sick?fail_after=1&" + cacheControl("max-age=1");
  CHECK(fetch(gw, target).status == 200);
  Response r;
  // Once stale, each request reaches the sick origin and is answered from the stale copy.
  REQUIRE(waitFor([&] {
    r = fetch(gw, target);
    return cacheStatus(r).param("detail") == "stale-if-error";
  }, 5000ms, 100ms));
  CHECK(r.status == 200);
  r = fetch(gw, target);  // the origin's second 503 in a row, hidden from the client too
  CHECK(r.status == 200);
  CHECK(cacheStatus(r).param("detail") == "stale-if-error");
  // Two 503s in a row complete the streak; only the never-eject-the-last-backend cap keeps the
  // upstream's one backend in (and /status counts the refused ejection).
  auto refusedOnce = [&] {
    return adminRequest(gw, "/status").body.find("\"ejections_refused\":1") != std::string::npos;
  };
  CHECK(waitFor(refusedOnce, 3000ms));
}

TEST_CASE("plugins cache: targeted_field CDN-Cache-Control is obeyed before Cache-Control") {
  const std::string cdnOnly = "/origin/cdn?" + cacheControl("no-store") + "&" +
                              originHeader("CDN-Cache-Control: max-age=60");
  const std::string cdnForbids = "/origin/cdn-no?" + cacheControl("max-age=60") + "&" +
                                 originHeader("CDN-Cache-Control: no-store");
  SUBCASE("targeted") {
    Backend b;
    Gateway gw(config(b, "{targeted_field: CDN-Cache-Control}"));
    fetch(gw, cdnOnly);
    CHECK(isHit(fetch(gw, cdnOnly)));
    fetch(gw, cdnForbids);
    CHECK_FALSE(isHit(fetch(gw, cdnForbids)));
    CHECK(originRequests(b) == 3);
  }
  SUBCASE("not targeted: CDN-Cache-Control is just a field") {
    Backend b;
    Gateway gw(config(b));
    fetch(gw, cdnOnly);
    CHECK_FALSE(isHit(fetch(gw, cdnOnly)));
    fetch(gw, cdnForbids);
    CHECK(isHit(fetch(gw, cdnForbids)));
    CHECK(originRequests(b) == 3);
  }
}

TEST_CASE("plugins cache: response_cache_control and surrogate_control are set toward clients") {
  const std::string target = "/origin/rcc?" + cacheControl("max-age=60");
  const std::string noStore = "/origin/rcc-ns?" + cacheControl("no-store");
  SUBCASE("configured") {
    Backend b;
    Gateway gw(config(
        b, R"({response_cache_control: "public, max-age=5", surrogate_control: "max-age=3600"})"));
    for (const std::string& t : {target, target}) {
      Response r = fetch(gw, t);
      INFO(t << " -> " << cacheStatus(r).raw);
      CHECK(r.headerCount("Cache-Control") == 1);
      CHECK(r.header("Cache-Control") == "public, max-age=5");
      CHECK(r.header("Surrogate-Control") == "max-age=3600");
    }
    // What the cache may not keep is never relabelled for caches downstream.
    const std::string personal =
        "/origin/rcc-me?" + cacheControl("private, max-age=60") + "&" + originHeader("Set-Cookie: s=1");
    for (const auto& [path, headers] : std::vector<std::pair<std::string, std::string>>{
             {noStore, ""},
             {noStore, ""},
             {personal, ""},
             {target, "Authorization: Bearer x\r\n"}}) {
      const std::string& t = path;  // INFO takes a variable, not a binding
      Response r = fetch(gw, t, headers);
      INFO(t << " -> " << cacheStatus(r).raw);
      CHECK(r.header("Cache-Control") != "public, max-age=5");
      CHECK(r.headerCount("Surrogate-Control") == 0);
    }
    // The store still went by what the origin said.
    CHECK(originRequests(b) == 5);
    const CacheStatus s = cacheStatus(fetch(gw, target));
    CHECK(s.has("hit"));
    REQUIRE(isInteger(s.param("ttl")));
    CHECK(std::stol(s.param("ttl")) > 5);
  }
  SUBCASE("default: left alone") {
    Backend b;
    Gateway gw(config(b));
    for (const std::string& t : {target, target}) {
      Response r = fetch(gw, t);
      CHECK(r.header("Cache-Control") == "max-age=60");
      CHECK(r.headerCount("Surrogate-Control") == 0);
    }
  }
}

// A config whose last line opens the cache's settings, for `gatewayd -t` (nothing is started).
constexpr const char* kCheckedHead = R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: 18999
upstreams:
  - name: main
    backends:
      - 127.0.0.1:9
routes:
  - match: {prefix: /}
    upstream: main
    plugins:
      - cache:
)";

TEST_CASE("plugins cache: gatewayd -t accepts every documented key") {
  TempDir dir;
  const std::string path = dir.write("cache.yaml", std::string(kCheckedHead) +
                                                       R"(          max_bytes: 64MiB
          max_entry_bytes: 1MiB
          default_ttl: 30s
          heuristic: true
          heuristic_max: 24h
          stale_if_error: 0s
          key:
            headers: [X-Tenant]
            sort_query: false
            ignore_query_params: [utm_source]
          targeted_field: CDN-Cache-Control
          allow_authorized: false
          allow_cookies: false
          store_set_cookie: false
          ignore_no_store: false
          ignore_private: false
          ignore_no_cache: false
          honour_request_directives: true
          coalesce: true
          coalesce_timeout: 5s
          max_waiters: 256
          response_cache_control: "public, max-age=60"
          surrogate_control: "max-age=3600"
)");
  CommandResult run = runGatewaydCommand({"-t", "-c", path});
  INFO("stdout: " << run.out << "stderr: " << run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.out == path + ": configuration ok\n");
}

TEST_CASE("plugins cache: gatewayd -t refuses bad settings at FILE:LINE:COL") {
  // The bad setting is on line 15; the message names the key or the bad value (`mention`, a regex).
  std::string line, mention;
  SUBCASE("unknown key") { line = "bogus_key: 1", mention = "bogus_key"; }
  SUBCASE("bad size") { line = "max_bytes: lots", mention = "max_bytes|lots"; }
  SUBCASE("bad entry size") {
    line = "max_entry_bytes: 12 parsecs", mention = "max_entry_bytes|parsecs";
  }
  SUBCASE("bad duration") { line = "coalesce_timeout: soon", mention = "coalesce_timeout|soon"; }
  SUBCASE("wrong type") { line = "coalesce: maybe", mention = "coalesce|maybe"; }
  SUBCASE("unknown key under key") { line = "key: {hedaers: [X-Tenant]}", mention = "hedaers"; }
  TempDir dir;
  const std::string path = dir.write(
      "bad.yaml", std::string(kCheckedHead) + "          default_ttl: 30s\n          " + line + "\n");
  CommandResult run = runGatewaydCommand({"-t", "-c", path});
  INFO("stdout: " << run.out << "stderr: " << run.err);
  CHECK(run.exit_code == 1);
  CHECK(run.out.find("configuration ok") == std::string::npos);
  const std::string quoted =
      std::regex_replace(path, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
  CHECK(std::regex_search(run.err,
                          std::regex("(^|\n)" + quoted + R"(:15:\d+: [^\n]*()" + mention + ")")));
}
