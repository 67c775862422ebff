#include "gateway/http/headers.h"

#include <doctest.h>

#include <initializer_list>
#include <string>

namespace gw::http {
namespace {

TEST_CASE("asciiLower and iequals are ASCII-only and case-insensitive") {
  CHECK(asciiLower('A') == 'a');
  CHECK(asciiLower('Z') == 'z');
  CHECK(asciiLower('a') == 'a');
  CHECK(asciiLower('@') == '@');
  CHECK(asciiLower('[') == '[');
  CHECK(asciiLower('\xC4') == '\xC4');

  std::string out = "stale";
  asciiLower("Content-TYPE \xC4", out);
  CHECK(out == "content-type \xC4");
  asciiLower("", out);
  CHECK(out.empty());

  CHECK(iequals("Content-Length", "content-length"));
  CHECK(iequals("", ""));
  CHECK_FALSE(iequals("abc", "abcd"));
  CHECK_FALSE(iequals("abc", "abd"));
  // '@' and '`' differ from 'A'-1 / 'a'-1 by 32 too; they must not be folded.
  CHECK_FALSE(iequals("@", "`"));
  CHECK_FALSE(iequals("[", "{"));
  CHECK_FALSE(iequals("\xC4", "\xE4"));
}

TEST_CASE("hop-by-hop headers") {
  for (std::string_view name :
       {"Connection", "connection", "CONNECTION", "Keep-Alive", "keep-alive", "TE", "te", "Trailer",
        "trailer", "Transfer-Encoding", "transfer-encoding", "Upgrade", "UPGRADE",
        "Proxy-Connection", "proxy-connection", "Proxy-Authorization", "proxy-authorization"}) {
    CAPTURE(name);
    CHECK(isHopByHop(name));
  }
  for (std::string_view name : {"", "T", "Tx", "Host", "Content-Length", "Content-Type", "Trailers",
                                "Upgrade-Insecure-Requests", "Proxy-Authenticate", "Authorization",
                                "Keep-Alivx", "Connectiox", "Transfer-Encodings", "Proxy-Connectio",
                                "Trailex", "Upgradx", "X-Connection", "Proxy-Authorizatio"}) {
    CAPTURE(name);
    CHECK_FALSE(isHopByHop(name));
  }
}

TEST_CASE("isProxyOwned: Host, Content-Length and the hop-by-hop names") {
  for (std::string_view name :
       {"Host", "host", "Content-Length", "CONTENT-LENGTH", "Connection", "Keep-Alive", "TE",
        "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Proxy-Authorization"}) {
    CAPTURE(name);
    CHECK(isProxyOwned(name));
  }
  for (std::string_view name : {"X-Request-Id", "Expect", "X-Forwarded-For", "traceparent",
                                "Content-Type", "Hosts", "Content-Lengths", "Authorization"}) {
    CAPTURE(name);
    CHECK_FALSE(isProxyOwned(name));
  }
}

TEST_CASE("ConnectionTokens parses options") {
  ConnectionTokens tokens;
  CHECK_FALSE(tokens.close());
  CHECK_FALSE(tokens.keepAlive());
  CHECK_FALSE(tokens.upgrade());
  CHECK_FALSE(tokens.bad());
  CHECK(tokens.others().empty());
  CHECK_FALSE(tokens.nominates("close"));

  tokens.add("Keep-Alive");
  CHECK(tokens.keepAlive());
  CHECK_FALSE(tokens.close());
  CHECK(tokens.nominates("keep-alive"));
  CHECK(tokens.others().empty());

  tokens.reset();
  tokens.add(" close ,\tUpgrade, X-Foo ,x-bar");
  CHECK(tokens.close());
  CHECK(tokens.upgrade());
  CHECK_FALSE(tokens.keepAlive());
  CHECK_FALSE(tokens.bad());
  REQUIRE(tokens.others().size() == 2);
  CHECK(tokens.others()[0] == "X-Foo");
  CHECK(tokens.others()[1] == "x-bar");
  CHECK(tokens.nominates("x-foo"));
  CHECK(tokens.nominates("X-BAR"));
  CHECK(tokens.nominates("Close"));
  CHECK(tokens.nominates("upgrade"));
  CHECK_FALSE(tokens.nominates("keep-alive"));
  CHECK_FALSE(tokens.nominates("x-baz"));
  CHECK_FALSE(tokens.nominates("x-fo"));
}

TEST_CASE("ConnectionTokens accumulates headers, skips empty elements, dedupes") {
  ConnectionTokens tokens;
  tokens.add("x-a");
  tokens.add(", ,close,, X-A");
  tokens.add("");
  tokens.add("x-b");
  CHECK(tokens.close());
  CHECK_FALSE(tokens.bad());
  REQUIRE(tokens.others().size() == 2);
  CHECK(tokens.others()[0] == "x-a");
  CHECK(tokens.others()[1] == "x-b");
}

TEST_CASE("ConnectionTokens never nominates the fields that frame or route a message") {
  ConnectionTokens tokens;
  tokens.add("close, Content-Length, HOST, transfer-encoding, x-a");
  CHECK(tokens.close());
  CHECK_FALSE(tokens.bad());
  CHECK_FALSE(tokens.nominates("content-length"));
  CHECK_FALSE(tokens.nominates("Host"));
  CHECK_FALSE(tokens.nominates("Transfer-Encoding"));
  REQUIRE(tokens.others().size() == 1);
  CHECK(tokens.others()[0] == "x-a");
}

TEST_CASE("ConnectionTokens marks malformed options bad") {
  for (std::string_view value : {"close;x=1", "foo bar", "\"quoted\"", "a, b c", "x@y", "a/b"}) {
    CAPTURE(value);
    ConnectionTokens tokens;
    tokens.add(value);
    CHECK(tokens.bad());
  }
}

TEST_CASE("ConnectionTokens overflow marks the message bad") {
  static constexpr std::string_view kNames[] = {"h0",  "h1",  "h2",  "h3",  "h4",  "h5",
                                                "h6",  "h7",  "h8",  "h9",  "h10", "h11",
                                                "h12", "h13", "h14", "h15", "h16"};
  static_assert(std::size(kNames) == ConnectionTokens::kMaxNominated + 1);
  ConnectionTokens tokens;
  for (std::size_t i = 0; i < ConnectionTokens::kMaxNominated; ++i) tokens.add(kNames[i]);
  tokens.add("close, H0, keep-alive");  // repeats and flags do not use capacity
  CHECK_FALSE(tokens.bad());
  CHECK(tokens.others().size() == ConnectionTokens::kMaxNominated);
  tokens.add(kNames[ConnectionTokens::kMaxNominated]);
  CHECK(tokens.bad());
  CHECK(tokens.others().size() == ConnectionTokens::kMaxNominated);

  tokens.reset();
  CHECK_FALSE(tokens.bad());
  CHECK(tokens.others().empty());
  CHECK_FALSE(tokens.close());
}

TEST_CASE("isValidFieldValue refuses CTLs except HTAB") {
  CHECK(isValidFieldValue(""));
  CHECK(isValidFieldValue("text/html; charset=utf-8"));
  CHECK(isValidFieldValue("a\tb"));
  CHECK(isValidFieldValue("caf\xC3\xA9 \x80\xFF"));
  CHECK(isValidFieldValue(" ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"));
  CHECK_FALSE(isValidFieldValue("a\rb"));
  CHECK_FALSE(isValidFieldValue("a\nb"));
  CHECK_FALSE(isValidFieldValue("a\r\nX-Injected: 1"));
  CHECK_FALSE(isValidFieldValue(std::string_view("a\0b", 3)));
  CHECK_FALSE(isValidFieldValue("\x01"));
  CHECK_FALSE(isValidFieldValue("\x1F"));
  CHECK_FALSE(isValidFieldValue("\x7F"));
  CHECK_FALSE(isValidFieldValue("\x0B"));
}

TEST_CASE("isToken accepts exactly tchar") {
  CHECK(isToken("Content-Type"));
  CHECK(isToken("!#$%&'*+-.^_`|~09AZaz"));
  CHECK_FALSE(isToken(""));
  for (char c : std::string_view("\"(),/:;<=>?@[\\]{} \t\x7F")) {
    CAPTURE(static_cast<int>(c));
    CHECK_FALSE(isToken(std::string("a") + c));
  }
  CHECK_FALSE(isToken(std::string_view("\0", 1)));
  CHECK_FALSE(isToken("\x80"));
  CHECK_FALSE(isToken("a\xFF"));
}

TEST_CASE("hostWithoutPort accepts names and strips the port") {
  CHECK(hostWithoutPort("example.com") == "example.com");
  CHECK(hostWithoutPort("Example.COM:8080") == "Example.COM");
  CHECK(hostWithoutPort("a-b_c.example.com:1") == "a-b_c.example.com");
  CHECK(hostWithoutPort("localhost:0") == "localhost");
  CHECK(hostWithoutPort("h:65535") == "h");
  CHECK(hostWithoutPort("h:00080") == "h");
  CHECK(hostWithoutPort("127.0.0.1:8080") == "127.0.0.1");
  CHECK(hostWithoutPort("example.com.") == "example.com");
  CHECK(hostWithoutPort("example.com.:443") == "example.com");
}

TEST_CASE("hostWithoutPort handles IPv6 literals") {
  CHECK(hostWithoutPort("[::1]") == "[::1]");
  CHECK(hostWithoutPort("[::1]:80") == "[::1]");
  CHECK(hostWithoutPort("[2001:DB8::1]:443") == "[2001:DB8::1]");
  CHECK(hostWithoutPort("[::ffff:192.0.2.1]") == "[::ffff:192.0.2.1]");
  CHECK_FALSE(hostWithoutPort("[::1"));
  CHECK_FALSE(hostWithoutPort("[]"));
  CHECK_FALSE(hostWithoutPort("[::1]80"));
  CHECK_FALSE(hostWithoutPort("[::1]:"));
  CHECK_FALSE(hostWithoutPort("[::1]:x"));
  CHECK_FALSE(hostWithoutPort("[::g]"));
  CHECK_FALSE(hostWithoutPort("[1:2:3:4:5:6:7:8:9]"));
  CHECK_FALSE(hostWithoutPort("[fe80::1%25eth0]"));
  CHECK_FALSE(hostWithoutPort("[v1.x]"));
  CHECK_FALSE(hostWithoutPort("[127.0.0.1]"));
  CHECK_FALSE(hostWithoutPort("[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]"));
  CHECK_FALSE(hostWithoutPort("::1"));
}

TEST_CASE("hostWithoutPort refuses malformed hosts") {
  const auto refused = [](std::initializer_list<std::string_view> hosts) {
    for (std::string_view host : hosts) {
      CAPTURE(host);
      CHECK_FALSE(hostWithoutPort(host));
    }
  };
  refused({"", ":80", ".", "..", ".example.com", "a..b", "example.com.."});
  refused({"exa mple.com", " example.com", "example.com ", "a\tb", "caf\xC3\xA9.example"});
  refused({"user@example.com", "user:pw@example.com", "a/b", "a%2eb", "a,b", "a;b", "a]"});
  refused({"example.com:", "example.com:x", "example.com:80x", "example.com:-1"});
  refused({"example.com:65536", "example.com:123456", "example.com:80:80", "h: 80"});
}

TEST_CASE("normaliseHost lower-cases into the caller's buffer") {
  std::string out = "previous";
  CHECK(normaliseHost("API.Example.COM:8080", out));
  CHECK(out == "api.example.com");
  CHECK(normaliseHost("[2001:DB8::A]:80", out));
  CHECK(out == "[2001:db8::a]");
  CHECK(normaliseHost("Example.Com.", out));
  CHECK(out == "example.com");
  CHECK_FALSE(normaliseHost("bad host", out));
}

TEST_CASE("hasToken finds list elements") {
  CHECK(hasToken("100-continue", "100-continue"));
  CHECK(hasToken("100-Continue", "100-continue"));
  CHECK(hasToken("gzip, chunked", "chunked"));
  CHECK(hasToken("gzip,chunked", "CHUNKED"));
  CHECK(hasToken(" \tchunked \t", "chunked"));
  CHECK(hasToken(",,chunked,,", "chunked"));
  CHECK(hasToken("trailers, deflate;q=0.5", "deflate"));
  CHECK(hasToken("deflate ; q=0.5", "deflate"));
  CHECK(hasToken("a;p=\"x,chunked\", b", "b"));
  CHECK_FALSE(hasToken("", "chunked"));
  CHECK_FALSE(hasToken("gzip", "chunked"));
  CHECK_FALSE(hasToken("chunkedx", "chunked"));
  CHECK_FALSE(hasToken("xchunked", "chunked"));
  CHECK_FALSE(hasToken("chun ked", "chunked"));
  CHECK_FALSE(hasToken("gzip;chunked", "chunked"));
  // A comma inside a quoted parameter does not start a new element.
  CHECK_FALSE(hasToken("a;p=\"x,chunked\"", "chunked"));
  CHECK_FALSE(hasToken("a;p=\"x\\\",chunked\"", "chunked"));
}

}  // namespace
}  // namespace gw::http

TEST_CASE("classifyField knows each field the proxy treats specially, in any case") {
  using gw::http::FieldName;
  using gw::http::classifyField;
  const std::pair<const char*, FieldName> cases[] = {
      {"Host", FieldName::Host},
      {"EXPECT", FieldName::Expect},
      {"content-length", FieldName::ContentLength},
      {"X-Forwarded-For", FieldName::XForwardedFor},
      {"x-forwarded-host", FieldName::XForwardedHost},
      {"X-Forwarded-Proto", FieldName::XForwardedProto},
      {"traceparent", FieldName::TraceParent},
      {"TraceState", FieldName::TraceState},
      {"Connection", FieldName::Connection},
      {"Keep-Alive", FieldName::KeepAlive},
      {"TE", FieldName::TE},
      {"Trailer", FieldName::Trailer},
      {"Transfer-Encoding", FieldName::TransferEncoding},
      {"Upgrade", FieldName::Upgrade},
      {"Proxy-Connection", FieldName::ProxyConnection},
      {"Proxy-Authorization", FieldName::ProxyAuthorization},
      {"X-Request-Id", FieldName::Other},
      {"tracestatus", FieldName::Other},  // same length as traceparent, another name
      {"keep-alivex", FieldName::Other},
      {"", FieldName::Other},
  };
  for (const auto& [fieldName, kind] : cases) {
    const char* name = fieldName;  // doctest's INFO captures it: a variable, not a binding
    INFO(name);
    CHECK(classifyField(name) == kind);
  }
  CHECK_FALSE(gw::http::isHopByHop(FieldName::TraceParent));
  CHECK(gw::http::isHopByHop(FieldName::Connection));
}
