#include "gateway/http/path.h"

#include <doctest.h>

#include <cstdint>
#include <string>

namespace gw::http {
namespace {

// Rules that forward every spelling as is, to test what normalisation does apart from them.
constexpr PathRules kKeep{EscapedSlashes::Keep, PathParameters::Keep};
constexpr PathRules kStrip{EscapedSlashes::Reject, PathParameters::Strip};

// The normalised path, or "<invalid>" / "<escapes>" / "<escaped-slash>" / "<parameter>" so each
// case reads as one CHECK.
std::string norm(std::string_view raw, PathRules rules = {}) {
  std::string out;
  switch (normalisePath(raw, out, rules)) {
    case PathError::None:
      return out;
    case PathError::Invalid:
      return "<invalid>";
    case PathError::EscapesRoot:
      return "<escapes>";
    case PathError::EscapedSlash:
      return "<escaped-slash>";
    case PathError::PathParameter:
      return "<parameter>";
  }
  return "<unreachable>";
}

TEST_CASE("splitTarget splits at the first '?' and drops it") {
  auto parts = splitTarget("/a/b?x=1&y=2");
  CHECK(parts.path == "/a/b");
  CHECK(parts.query == "x=1&y=2");
  CHECK(parts.has_query);

  parts = splitTarget("/a?b?c");
  CHECK(parts.path == "/a");
  CHECK(parts.query == "b?c");

  parts = splitTarget("/a?");
  CHECK(parts.path == "/a");
  CHECK(parts.query.empty());
  CHECK(parts.has_query);

  parts = splitTarget("/a");
  CHECK(parts.path == "/a");
  CHECK(parts.query.empty());
  CHECK_FALSE(parts.has_query);

  parts = splitTarget("?q");
  CHECK(parts.path.empty());
  CHECK(parts.query == "q");
}

TEST_CASE("plain paths pass through unchanged") {
  CHECK(norm("/") == "/");
  CHECK(norm("/a") == "/a");
  CHECK(norm("/a/b/c") == "/a/b/c");
  CHECK(norm("/a/b/") == "/a/b/");
  CHECK(norm("/a:b@c!$&'()*+,=") == "/a:b@c!$&'()*+,=");
  CHECK(norm("/a:b@c!$&'()*+,;=", kKeep) == "/a:b@c!$&'()*+,;=");
  CHECK(norm("/...") == "/...");
  CHECK(norm("/.a/a./..b/b..") == "/.a/a./..b/b..");
}

TEST_CASE("the path must start with '/'") {
  CHECK(norm("") == "<invalid>");
  CHECK(norm("a/b") == "<invalid>");
  CHECK(norm("*") == "<invalid>");
  CHECK(norm("http://h/a") == "<invalid>");
  CHECK(norm("%2Fa") == "<invalid>");
}

TEST_CASE("dot segments are removed") {
  CHECK(norm("/admin/../public") == "/public");
  CHECK(norm("/a/./b") == "/a/b");
  CHECK(norm("/a/b/../c") == "/a/c");
  CHECK(norm("/a/b/c/../../d") == "/a/d");
  CHECK(norm("/a/..") == "/");
  CHECK(norm("/a/../") == "/");
  CHECK(norm("/a/.") == "/a/");
  CHECK(norm("/a/./") == "/a/");
  CHECK(norm("/.") == "/");
  CHECK(norm("/./") == "/");
  CHECK(norm("/./a") == "/a");
  CHECK(norm("/a/b/..") == "/a/");
  CHECK(norm("/a/b/../") == "/a/");
  CHECK(norm("/a/b/./../c/.") == "/a/c/");
}

TEST_CASE("'..' above the root is refused") {
  CHECK(norm("/..") == "<escapes>");
  CHECK(norm("/../") == "<escapes>");
  CHECK(norm("/../a") == "<escapes>");
  CHECK(norm("/a/../..") == "<escapes>");
  CHECK(norm("/a/../../b") == "<escapes>");
  CHECK(norm("/./..") == "<escapes>");
  CHECK(norm("//..") == "<escapes>");
}

TEST_CASE("encoded dots count as dot segments") {
  CHECK(norm("/%2e%2e/x") == "<escapes>");
  CHECK(norm("/%2E%2E/x") == "<escapes>");
  CHECK(norm("/.%2e/x") == "<escapes>");
  CHECK(norm("/a/%2E%2E/b") == "/b");
  CHECK(norm("/a/%2e/b") == "/a/b");
  CHECK(norm("/a/%2e.%2e") == "/a/...");
}

TEST_CASE("unreserved characters are decoded") {
  CHECK(norm("/%61dmin") == "/admin");
  CHECK(norm("/%41%5A%61%7A%30%39") == "/AZaz09");
  CHECK(norm("/%2D%2e%5F%7e") == "/-._~");
  CHECK(norm("/a%2Db") == "/a-b");
}

TEST_CASE("other escapes stay encoded with upper-case hex") {
  CHECK(norm("/a%2fb", kKeep) == "/a%2Fb");
  CHECK(norm("/a%2Fb", kKeep) == "/a%2Fb");
  CHECK(norm("/a%2f..%2fb", kKeep) == "/a%2F..%2Fb");
  CHECK(norm("/%2f%2e%2e", kKeep) == "/%2F..");
  CHECK(norm("/%5cadmin", kKeep) == "/%5Cadmin");
  CHECK(norm("/a%3bb", kKeep) == "/a%3Bb");
  CHECK(norm("/%25") == "/%25");
  CHECK(norm("/%2541") == "/%2541");  // no double decoding
  CHECK(norm("/%252F") == "/%252F");
  CHECK(norm("/%20%3f%23") == "/%20%3F%23");
  CHECK(norm("/%c3%a9") == "/%C3%A9");
  CHECK(norm("/%ff%0a%0D%7f") == "/%FF%0A%0D%7F");
}

TEST_CASE("encoded slashes and backslashes are refused by default") {
  for (std::string_view raw : {"/admin%2Fx", "/admin%2fx", "/%2Fadmin", "/%2fadmin", "/%5Cadmin",
                               "/%5cadmin", "/public%5C..%5Cadmin", "/a/b/%2F", "/%2F%2F"}) {
    CAPTURE(raw);
    CHECK(norm(raw) == "<escaped-slash>");
    CHECK(norm(raw, kStrip) == "<escaped-slash>");
  }
  CHECK(norm("/admin%2Fx", kKeep) == "/admin%2Fx");
  CHECK(norm("/%2Fadmin", kKeep) == "/%2Fadmin");
  CHECK(norm("/%5Cadmin", kKeep) == "/%5Cadmin");
  // Keeping escaped slashes does not let a parameter through.
  CHECK(norm("/%2F;x", {EscapedSlashes::Keep, PathParameters::Reject}) == "<parameter>");
}

TEST_CASE("path parameters are refused by default") {
  for (std::string_view raw :
       {"/admin;jsessionid=1", "/.;/admin", "/admin..;/", "/public/..;/admin", "/;", "/a;",
        "/a/b;c/d", "/admin%3Bx", "/admin%3bx", "/x;/%2e%2e/admin"}) {
    CAPTURE(raw);
    CHECK(norm(raw) == "<parameter>");
  }
  CHECK(norm("/admin;jsessionid=1", kKeep) == "/admin;jsessionid=1");
  CHECK(norm("/.;/admin", kKeep) == "/.;/admin");
  CHECK(norm("/admin..;/", kKeep) == "/admin..;/");
}

TEST_CASE("stripped path parameters leave what Tomcat and Spring route on") {
  CHECK(norm("/admin;jsessionid=1", kStrip) == "/admin");
  CHECK(norm("/admin;a=1;b=2/x;y", kStrip) == "/admin/x");
  CHECK(norm("/.;/admin", kStrip) == "/admin");
  CHECK(norm("/.;x=1/admin", kStrip) == "/admin");
  CHECK(norm("/public/..;/admin", kStrip) == "/admin");
  CHECK(norm("/public/..;x/admin", kStrip) == "/admin");
  CHECK(norm("/admin..;/", kStrip) == "/admin../");
  CHECK(norm("/a/;x/b", kStrip) == "/a/b");
  CHECK(norm("/a/;x", kStrip) == "/a/");
  CHECK(norm("/;x", kStrip) == "/");
  CHECK(norm("/a;x/", kStrip) == "/a/");
  CHECK(norm("/..;x", kStrip) == "<escapes>");
  CHECK(norm("/a/..;/..;/b", kStrip) == "<escapes>");
  // The parameters are checked like the rest of the path before they are cut off.
  CHECK(norm("/a;%zz", kStrip) == "<invalid>");
  CHECK(norm("/a;x y", kStrip) == "<invalid>");
  CHECK(norm("/a;%2F", kStrip) == "<escaped-slash>");
  // Backends disagree on whether an encoded ';' starts parameters: only keep forwards it.
  CHECK(norm("/admin%3Bx", kStrip) == "<parameter>");
  CHECK(norm("/.%3B/admin", kStrip) == "<parameter>");
}

TEST_CASE("describe words every path error") {
  CHECK(describe(PathError::Invalid) == "invalid request path");
  CHECK(describe(PathError::EscapesRoot) == "request path escapes the root");
  CHECK(describe(PathError::EscapedSlash) ==
        "encoded slash or backslash (%2F, %5C) in the request path");
  CHECK(describe(PathError::PathParameter) == "path parameter (';' or %3B) in the request path");
}

TEST_CASE("malformed escapes and %00 are invalid") {
  CHECK(norm("/%") == "<invalid>");
  CHECK(norm("/a%") == "<invalid>");
  CHECK(norm("/a%4") == "<invalid>");
  CHECK(norm("/%G1") == "<invalid>");
  CHECK(norm("/%1G") == "<invalid>");
  CHECK(norm("/%%41") == "<invalid>");
  CHECK(norm("/% 1") == "<invalid>");
  CHECK(norm("/%00") == "<invalid>");
  CHECK(norm("/a%00b") == "<invalid>");
  CHECK(norm("/%4/") == "<invalid>");
}

TEST_CASE("raw bytes that a path may not carry are invalid") {
  CHECK(norm("/a b") == "<invalid>");
  CHECK(norm("/a\tb") == "<invalid>");
  CHECK(norm("/a\rb") == "<invalid>");
  CHECK(norm("/a\nb") == "<invalid>");
  CHECK(norm(std::string_view("/a\0b", 4)) == "<invalid>");
  CHECK(norm("/a\x7f") == "<invalid>");
  CHECK(norm("/caf\xc3\xa9") == "<invalid>");
  CHECK(norm("/\xff") == "<invalid>");
  CHECK(norm("/a#frag") == "<invalid>");
  CHECK(norm("/a?q") == "<invalid>");
  CHECK(norm("/public\\..\\admin") == "<invalid>");
}

TEST_CASE("runs of slashes are merged") {
  CHECK(norm("//a///b") == "/a/b");
  CHECK(norm("//") == "/");
  CHECK(norm("///") == "/");
  CHECK(norm("/a//") == "/a/");
  CHECK(norm("/a//..") == "/");
  CHECK(norm("/a/.//b") == "/a/b");
  CHECK(norm("//a/..//b//") == "/b/");
}

TEST_CASE("a trailing slash is kept") {
  CHECK(norm("/a/") == "/a/");
  CHECK(norm("/a/b/") == "/a/b/");
  CHECK(norm("/a/%62/") == "/a/b/");
  CHECK(norm("/a/b") == "/a/b");
}

TEST_CASE("the output buffer is overwritten and its capacity reused") {
  std::string out = "previous contents that are much longer than the next path";
  const auto capacity = out.capacity();
  const char* data = out.data();
  REQUIRE(normalisePath("/x/../y", out) == PathError::None);
  CHECK(out == "/y");
  CHECK(out.capacity() == capacity);
  CHECK(out.data() == data);
}

TEST_CASE("normalising is idempotent") {
  for (const PathRules rules : {PathRules{}, kKeep, kStrip}) {
    for (std::string_view raw :
         {"/a/./b/../c//d/", "/%61%2e%2E/x", "/a/%7E%7e/", "/x%20y", "/a;p/.;q/b;r/"}) {
      CAPTURE(raw);
      std::string once;
      if (normalisePath(raw, once, rules) != PathError::None) continue;
      std::string twice;
      REQUIRE(normalisePath(once, twice, rules) == PathError::None);
      CHECK(twice == once);
    }
  }
}

TEST_CASE("random paths: accepted output keeps the invariants") {
  // A fixed-seed generator over the characters that matter, so failures reproduce.
  constexpr std::string_view kAlphabet = "/./%2eE5fF0a;3bBcC";
  uint32_t state = 12345;
  const auto nextRandom = [&state] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  std::string raw;
  std::string out;
  std::string again;
  for (const PathRules rules : {PathRules{}, kKeep, kStrip}) {
    for (int round = 0; round < 20000; ++round) {
      raw.assign(1, '/');
      for (uint32_t n = nextRandom() % 24; n > 0; --n)
        raw += kAlphabet[nextRandom() % kAlphabet.size()];
      CAPTURE(raw);
      if (normalisePath(raw, out, rules) != PathError::None) continue;
      REQUIRE(out.starts_with('/'));
      CHECK(out.size() <= raw.size());
      CHECK(out.find("//") == std::string::npos);
      CHECK(out.find("/./") == std::string::npos);
      CHECK(out.find("/../") == std::string::npos);
      CHECK_FALSE(out.ends_with("/."));
      CHECK_FALSE(out.ends_with("/.."));
      CHECK(out.find("%2e") == std::string::npos);
      CHECK(out.find("%2E") == std::string::npos);
      if (rules.escaped_slashes == EscapedSlashes::Reject) {
        CHECK(out.find("%2F") == std::string::npos);
        CHECK(out.find("%5C") == std::string::npos);
      }
      if (rules.path_parameters != PathParameters::Keep) {
        CHECK(out.find(';') == std::string::npos);
        CHECK(out.find("%3B") == std::string::npos);
      }
      REQUIRE(normalisePath(out, again, rules) == PathError::None);
      CHECK(again == out);
    }
  }
}

TEST_CASE("pathHasPrefix respects segment boundaries") {
  CHECK(pathHasPrefix("/api", "/api"));
  CHECK(pathHasPrefix("/api/", "/api"));
  CHECK(pathHasPrefix("/api/x/y", "/api"));
  CHECK_FALSE(pathHasPrefix("/apix", "/api"));
  CHECK_FALSE(pathHasPrefix("/ap", "/api"));
  CHECK_FALSE(pathHasPrefix("/other", "/api"));

  CHECK(pathHasPrefix("/api/", "/api/"));
  CHECK(pathHasPrefix("/api/x", "/api/"));
  CHECK_FALSE(pathHasPrefix("/api", "/api/"));
  CHECK_FALSE(pathHasPrefix("/apix", "/api/"));

  CHECK(pathHasPrefix("/", "/"));
  CHECK(pathHasPrefix("/anything/at/all", "/"));
  CHECK(pathHasPrefix("/a/b", "/a/b"));
  CHECK_FALSE(pathHasPrefix("/a/bc", "/a/b"));

  static_assert(pathHasPrefix("/api/x", "/api"));
  static_assert(!pathHasPrefix("/apix", "/api"));
}

}  // namespace
}  // namespace gw::http
