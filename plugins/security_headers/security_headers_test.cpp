#include "plugins/security_headers/security_headers.h"

#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include "plugins/security_headers/security_headers_config.h"
#include "test/support/plugin_config.h"
#include "test/support/plugin_context.h"

namespace gw::plugins::security_headers {
namespace {

using Lines = std::vector<std::string>;
using Fields = std::vector<std::pair<std::string, std::string>>;

// Exactly what helmet 7 sends by default (issue 3).
const Fields kHelmet{
    {"Content-Security-Policy",
     "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
     "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
     "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Origin-Agent-Cluster", "?1"},
    {"Referrer-Policy", "no-referrer"},
    {"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-DNS-Prefetch-Control", "off"},
    {"X-Download-Options", "noopen"},
    {"X-Frame-Options", "SAMEORIGIN"},
    {"X-Permitted-Cross-Domain-Policies", "none"},
    {"X-XSS-Protection", "0"},
};

Fields fieldsOf(const plugin::HeaderMap& headers) {
  Fields fields;
  headers.forEach([&](std::string_view name, std::string_view value) {
    fields.emplace_back(name, value);
    return true;
  });
  return fields;
}

// The response fields after the plugin ran on a response that had `upstream` fields.
Fields respond(const YAML::Node& settings, const Fields& upstream = {}) {
  std::vector<plugin::ConfigError> errors;
  const auto config = Factory().parse(settings, errors);
  REQUIRE(config);
  test::TestContext ctx;
  for (const auto& [name, value] : upstream) ctx.responseHeaders().add(name, value);
  CHECK(Factory().create(*config, nullptr)->onResponseHeaders(ctx) == plugin::Status::Continue);
  return fieldsOf(ctx.responseHeaders());
}
Fields respond(const std::string& yaml, const Fields& upstream = {}) {
  return respond(YAML::Load(yaml), upstream);
}

Lines errorsOf(const std::string& yaml) { return test::configErrors(Factory(), yaml); }

TEST_CASE("security_headers: helmet's defaults with no settings") {
  CHECK(respond(YAML::Node()) == kHelmet);  // `- security_headers`
  CHECK(respond("{}") == kHelmet);          // `- security_headers: {}`
}

TEST_CASE("security_headers: a recycled instance sets the same fields on the next response") {
  std::vector<plugin::ConfigError> errors;
  const auto config = Factory().parse(YAML::Node(), errors);
  REQUIRE(config);
  auto plugin = Factory().create(*config, nullptr);
  for (int exchange = 0; exchange < 2; ++exchange) {
    test::TestContext ctx;
    ctx.responseHeaders().add("X-Powered-By", "php");
    CHECK(plugin->onResponseHeaders(ctx) == plugin::Status::Continue);
    CHECK(fieldsOf(ctx.responseHeaders()) == kHelmet);
    REQUIRE(plugin->recycle());
  }
}

TEST_CASE("security_headers: X-Powered-By removed, upstream values replaced, Server kept") {
  Fields expected{{"Server", "app/1.0"}, {"Content-Type", "text/plain"}};
  expected.insert(expected.end(), kHelmet.begin(), kHelmet.end());
  CHECK(respond("{}", {{"Server", "app/1.0"},
                       {"x-powered-by", "Express"},
                       {"x-frame-options", "ALLOWALL"},
                       {"Content-Type", "text/plain"}}) == expected);
}

TEST_CASE("security_headers: upstream_values keep leaves the upstream's fields alone") {
  const Fields out = respond("{upstream_values: keep}", {{"X-Frame-Options", "DENY"}});
  CHECK(out.front() == Fields::value_type{"X-Frame-Options", "DENY"});
  CHECK(out.size() == kHelmet.size());
  CHECK(std::count_if(out.begin(), out.end(),
                      [](const auto& f) { return f.first == "X-Frame-Options"; }) == 1);
}

TEST_CASE("security_headers: each header overridden, turned off or added") {
  const Fields out = respond(
      "headers:\n"
      "  x-frame-options: DENY\n"
      "  X-XSS-Protection: false\n"
      "  Content-Security-Policy: false\n"
      "  Permissions-Policy: 'camera=()'\n"
      "  Referrer-Policy: 'false'\n");
  Fields expected(kHelmet.begin() + 1, kHelmet.end() - 1);
  for (auto& [name, value] : expected) {
    if (name == "X-Frame-Options") value = "DENY";
    if (name == "Referrer-Policy") value = "false";  // quoted: the text, not "turn off"
  }
  expected.emplace_back("Permissions-Policy", "camera=()");
  CHECK(out == expected);
}

TEST_CASE("security_headers: hide_server, hide_powered_by") {
  CHECK(respond("{hide_server: true, hide_powered_by: false, headers: {}}",
                {{"Server", "nginx"}, {"X-Powered-By", "PHP"}})
            .front() == Fields::value_type{"X-Powered-By", "PHP"});
  const Fields out = respond("{hide_server: true, headers: {Server: gw}}", {{"Server", "nginx"}});
  CHECK(out.back() == Fields::value_type{"Server", "gw"});
  CHECK(out.size() == kHelmet.size() + 1);
}

TEST_CASE("security_headers: settings errors") {
  CHECK(errorsOf("headers:\n"
                 "  X-Frame-Options: \"a\\r\\nSet-Cookie: x=1\"\n"
                 "  X-Unknown: false\n"
                 "  Content-Length: 5\n"
                 "  'bad name': x\n"
                 "  x-frame-options: DENY\n"
                 "  Referrer-Policy: [a]\n"
                 "  X-Empty: ''\n"
                 "  X-True: true\n"
                 "upstream_values: merge\n"
                 "hide_server: 1\n"
                 "colour: red\n") ==
        Lines{"12:1: unknown key 'colour' in security_headers; expected one of: headers, "
              "upstream_values, hide_powered_by, hide_server",
              "2:20: header 'X-Frame-Options' must have a non-empty value without control "
              "characters (CR, LF, NUL, ...); use false to turn it off",
              "3:14: header 'X-Unknown': false turns off one of the default headers, and this is "
              "not one of them",
              "4:3: header 'Content-Length' is the gateway's own (it frames the message, "
              "routes it or belongs to the connection) and cannot be set by security_headers",
              "5:3: a header name must be a token such as X-Frame-Options, got 'bad name'",
              "6:3: header 'x-frame-options' is given twice (first at line 2, column 3)",
              "7:20: header 'Referrer-Policy' must be a value (a string) or false, got a list",
              "8:12: header 'X-Empty' must have a non-empty value without control characters "
              "(CR, LF, NUL, ...); use false to turn it off",
              "9:11: header 'X-True' must be a value (a string) or false, got 'true'",
              "10:18: 'upstream_values': expected replace or keep, got 'merge'",
              "11:14: 'hide_server': expected true or false, got '1'"});
  CHECK(errorsOf("headers: [a]") == Lines{"1:10: 'headers' must be a mapping, got a list"});
}

}  // namespace
}  // namespace gw::plugins::security_headers
