#include "plugins/cache/purge_query.h"

#include <doctest.h>

using gw::plugins::cache::parsePurgeQuery;

namespace {

// The message of a refused query ("" when it was accepted).
std::string refusal(std::string_view query) {
  auto parsed = parsePurgeQuery(query);
  if (parsed) return "";
  CHECK(parsed.error().code == gw::core::ErrorCode::BadRequest);
  return parsed.error().message;
}

}  // namespace

TEST_CASE("cache purge query: path, prefix, host and route") {
  auto exact = parsePurgeQuery("path=/items/7");
  REQUIRE(exact);
  CHECK(exact->path == "/items/7");
  CHECK_FALSE(exact->prefix);
  CHECK(exact->host.empty());
  CHECK_FALSE(exact->route.has_value());

  auto under = parsePurgeQuery("prefix=/items/&host=Example.COM&route=api");
  REQUIRE(under);
  CHECK(under->path == "/items/");
  CHECK(under->prefix);
  CHECK(under->host == "example.com");
  CHECK(under->route == "api");
}

TEST_CASE("cache purge query: values are percent-decoded, then normalised like a routed path") {
  CHECK(refusal("path=%2Fa%20b") == "'path' must be a valid absolute path");  // a space
  auto plus = parsePurgeQuery("p%61th=/a+b/%257E//x/./y&h%6Fst=example.com.");
  REQUIRE(plus);
  CHECK(plus->path == "/a+b/~/x/y");  // "%257E" is what a client sends as "%7E": stored as "~"
  CHECK(plus->host == "example.com");
  auto encodedSlash = parsePurgeQuery("path=/a%252Fb");
  REQUIRE(encodedSlash);
  CHECK(encodedSlash->path == "/a%2Fb");  // kept encoded, as the router keeps it
}

TEST_CASE("cache purge query: refused queries") {
  CHECK(refusal("") == "give exactly one of 'path' (one path) and 'prefix' (every path under it)");
  CHECK(refusal("host=example.com") ==
        "give exactly one of 'path' (one path) and 'prefix' (every path under it)");
  CHECK(refusal("path=/a&prefix=/b") ==
        "give exactly one of 'path' (one path) and 'prefix' (every path under it)");
  CHECK(refusal("path=/a&path=/b") == "parameter 'path' given twice");
  CHECK(refusal("path=/a&hots=example.com") ==
        "unknown parameter 'hots' (known: path, prefix, host, route)");
  CHECK(refusal("path") == "parameter 'path' needs a value");
  CHECK(refusal("path=/a&route=") == "parameter 'route' needs a value");
  CHECK(refusal("path=/a%2") == "malformed percent-encoding in the query");
  CHECK(refusal("path=/a%zz") == "malformed percent-encoding in the query");
  CHECK(refusal("prefix=items") == "'prefix' must be a valid absolute path");
  CHECK(refusal("path=/a&host=exa%20mple") == "'host' is not a valid host");
  CHECK(refusal("&&path=/a&").empty());  // empty pairs are skipped
}
