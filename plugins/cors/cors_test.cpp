#include "plugins/cors/cors.h"

#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include "plugins/cors/cors_config.h"
#include "test/support/plugin_config.h"
#include "test/support/plugin_context.h"

namespace gw::plugins::cors {
namespace {

using Lines = std::vector<std::string>;
using Fields = std::vector<std::pair<std::string, std::string>>;

Fields fieldsOf(const plugin::HeaderMap& headers) {
  Fields fields;
  headers.forEach([&](std::string_view name, std::string_view value) {
    fields.emplace_back(name, value);
    return true;
  });
  return fields;
}

std::shared_ptr<const plugin::RouteConfig> load(const std::string& yaml) {
  std::vector<plugin::ConfigError> errors;
  auto config = Factory().parse(YAML::Load(yaml), errors);
  CHECK(errors.empty());
  return config;
}

// One exchange through the plugin: the request phase, then (unless it answered) an upstream
// response with `upstream` fields, or the gateway's own reply as the engine builds it.
struct Exchange {
  test::TestContext ctx;
  plugin::Status requestStatus = plugin::Status::Continue;

  Exchange(const plugin::RouteConfig& config, std::string_view method, const Fields& request,
           const Fields& upstream = {{"Content-Type", "application/json"}}) {
    ctx.info.method = method;
    for (const auto& [name, value] : request) ctx.requestFields.add(name, value);
    auto plugin = Factory().create(config, nullptr);
    requestStatus = plugin->onRequestHeaders(ctx);
    if (!ctx.repliedStatus) {
      for (const auto& [name, value] : upstream) ctx.responseFields.add(name, value);
    }
    CHECK(plugin->onResponseHeaders(ctx) == plugin::Status::Continue);
  }
  Fields response() const { return fieldsOf(ctx.responseFields); }
};

Lines errorsOf(const std::string& yaml) { return test::configErrors(Factory(), yaml); }

const Fields kPreflight{{"Origin", "https://app.example.com"},
                        {"Access-Control-Request-Method", "PUT"},
                        {"Access-Control-Request-Headers", "content-type, x-token"}};

TEST_CASE("cors: preflight answered with 204 and the defaults") {
  const auto config = load("allow_origins: [https://app.example.com, https://b.example.com]");
  Exchange e(*config, "OPTIONS", kPreflight);
  CHECK(e.requestStatus == plugin::Status::Respond);
  REQUIRE(e.ctx.repliedStatus);
  CHECK(*e.ctx.repliedStatus == 204);
  CHECK(e.ctx.repliedBody.empty());
  CHECK(e.response() == Fields{{"Vary", "Origin"},
                               {"Access-Control-Allow-Origin", "https://app.example.com"},
                               {"Access-Control-Allow-Methods",
                                "GET, HEAD, PUT, PATCH, POST, DELETE"},
                               {"Access-Control-Allow-Headers", "content-type, x-token"}});
}

TEST_CASE("cors: preflight with every setting") {
  const auto config = load(
      "allow_origins: [https://app.example.com]\n"
      "allow_methods: [GET, POST]\n"
      "allow_headers: [Content-Type, Authorization]\n"
      "expose_headers: [X-Total]\n"
      "allow_credentials: true\n"
      "max_age: 10m\n");
  Exchange e(*config, "OPTIONS", kPreflight);
  CHECK(e.requestStatus == plugin::Status::Respond);
  CHECK(e.response() == Fields{{"Vary", "Origin"},
                               {"Access-Control-Allow-Origin", "https://app.example.com"},
                               {"Access-Control-Allow-Credentials", "true"},
                               {"Access-Control-Allow-Methods", "GET, POST"},
                               {"Access-Control-Allow-Headers", "Content-Type, Authorization"},
                               {"Access-Control-Max-Age", "600"}});
}

TEST_CASE("cors: actual request gets origin, Vary, credentials and expose headers") {
  const auto config = load(
      "allow_origins: [https://app.example.com]\n"
      "expose_headers: [X-Total, X-Page]\n"
      "allow_credentials: true\n");
  Exchange e(*config, "GET", {{"Origin", "https://app.example.com"}});
  CHECK(e.requestStatus == plugin::Status::Continue);
  CHECK_FALSE(e.ctx.repliedStatus);
  CHECK(e.response() == Fields{{"Content-Type", "application/json"},
                               {"Vary", "Origin"},
                               {"Access-Control-Allow-Origin", "https://app.example.com"},
                               {"Access-Control-Allow-Credentials", "true"},
                               {"Access-Control-Expose-Headers", "X-Total, X-Page"}});
  // An OPTIONS without Access-Control-Request-Method is an ordinary request: proxied.
  Exchange o(*config, "OPTIONS", {{"Origin", "https://app.example.com"}});
  CHECK(o.requestStatus == plugin::Status::Continue);
  CHECK_FALSE(o.ctx.repliedStatus);
}

TEST_CASE("cors: \"*\" answers * without Vary, by default and when given") {
  for (const char* yaml : {"{}", "allow_origins: \"*\"", "allow_origins: [\"*\"]"}) {
    INFO(yaml);
    const auto config = load(yaml);
    Exchange e(*config, "GET", {{"Origin", "https://anything.test"}});
    CHECK(e.response() == Fields{{"Content-Type", "application/json"},
                                 {"Access-Control-Allow-Origin", "*"}});
  }
  std::vector<plugin::ConfigError> errors;
  const auto config = Factory().parse(YAML::Node(), errors);  // `- cors`
  REQUIRE(config);
  Exchange e(*config, "OPTIONS", kPreflight);
  CHECK(e.requestStatus == plugin::Status::Respond);
}

TEST_CASE("cors: disallowed or missing origin gets only Vary and is proxied") {
  const auto config = load("allow_origins: [https://app.example.com]");
  Exchange evil(*config, "OPTIONS",
                {{"Origin", "https://evil.example.com"}, {"Access-Control-Request-Method", "PUT"}});
  CHECK(evil.requestStatus == plugin::Status::Continue);
  CHECK_FALSE(evil.ctx.repliedStatus);
  const Fields varyOnly{{"Content-Type", "application/json"}, {"Vary", "Origin"}};
  CHECK(evil.response() == varyOnly);
  // Exact comparison: a different scheme, port or a trailing slash is another origin.
  for (const char* origin : {"http://app.example.com", "https://app.example.com:8443",
                             "https://app.example.com/"}) {
    Exchange e(*config, "GET", {{"Origin", origin}});
    CHECK(e.response() == varyOnly);
  }
  Exchange none(*config, "GET", {});
  CHECK(none.response() == varyOnly);
}

TEST_CASE("cors: a preflight's requested headers are echoed only as header names, capped") {
  const auto config = load("allow_origins: [https://app.example.com]");
  // Elements that are not tokens are left out, whatever bytes they hold.
  Exchange e(*config, "OPTIONS",
             {{"Origin", "https://app.example.com"},
              {"Access-Control-Request-Method", "PUT"},
              {"Access-Control-Request-Headers",
               "content-type, x@evil, \"quoted, name\", x y, ,x-token, caf\xc3\xa9"}});
  CHECK(e.requestStatus == plugin::Status::Respond);
  CHECK(e.ctx.responseFields.get("Access-Control-Allow-Headers") == "content-type, x-token");
  // Nothing valid: no field at all.
  Exchange none(*config, "OPTIONS",
                {{"Origin", "https://app.example.com"},
                 {"Access-Control-Request-Method", "PUT"},
                 {"Access-Control-Request-Headers", "<script>, a b"}});
  CHECK_FALSE(none.ctx.responseFields.get("Access-Control-Allow-Headers"));
}

TEST_CASE("cors: echoRequestedHeaders joins every field's names within the byte cap") {
  const std::vector<std::string_view> two{"a, b", "c"};
  CHECK(echoRequestedHeaders(two) == "a, b, c");
  std::string many;
  for (int i = 0; i < 1000; ++i) many += (i ? ", x-header-" : "x-header-") + std::to_string(i);
  const std::vector<std::string_view> thousand{many};
  const std::string echoed = echoRequestedHeaders(thousand);
  CHECK(echoed.size() <= kMaxEchoedHeaderBytes);
  CHECK(echoed.size() > kMaxEchoedHeaderBytes - 16);  // filled up to the cap...
  CHECK(many.starts_with(echoed + ", "));             // ...with whole names, in order
  const std::string huge(kMaxEchoedHeaderBytes + 1, 'x');
  const std::vector<std::string_view> tooLong{huge, "after"};
  CHECK(echoRequestedHeaders(tooLong).empty());  // the cap is reached: nothing after it either
}

TEST_CASE("cors: a request with two Origin fields is not an allowed cross-origin request") {
  const auto listed = load("allow_origins: [https://app.example.com, https://b.example.com]");
  for (const char* second : {"https://app.example.com", "https://b.example.com"}) {
    INFO(second);
    Fields preflight = kPreflight;
    preflight.emplace_back("Origin", second);
    Exchange e(*listed, "OPTIONS", preflight);
    CHECK(e.requestStatus == plugin::Status::Continue);
    CHECK_FALSE(e.ctx.repliedStatus);
    CHECK(e.response() == Fields{{"Content-Type", "application/json"}, {"Vary", "Origin"}});
  }
  const auto any = load("{}");
  Exchange e(*any, "GET",
             {{"Origin", "https://a.example.com"}, {"origin", "https://a.example.com"}});
  CHECK(e.response() == Fields{{"Content-Type", "application/json"}});
}

TEST_CASE("cors: settings errors") {
  CHECK(errorsOf("allow_origins: [\"*\"]\nallow_credentials: true") ==
        Lines{"2:20: allow_credentials: true needs allow_origins to list the origins; \"*\" with "
              "credentials is refused by browsers"});
  CHECK(errorsOf("allow_credentials: true") ==
        Lines{"1:20: allow_credentials: true needs allow_origins to list the origins; \"*\" with "
              "credentials is refused by browsers"});
  CHECK(errorsOf("allow_origins: [https://a.test, app.example.com, https://b.test/x]") ==
        Lines{"1:33: allow_origins: each entry must be an origin such as "
              "https://app.example.com, or \"*\", got 'app.example.com'",
              "1:50: allow_origins: each entry must be an origin such as "
              "https://app.example.com, or \"*\", got 'https://b.test/x'"});
  CHECK(errorsOf("allow_origins: []") == Lines{"1:16: allow_origins must not be empty"});
  CHECK(errorsOf("allow_origins: https://a.test") ==
        Lines{"1:16: allow_origins must be a list, got 'https://a.test'"});
  CHECK(errorsOf("allow_methods: [GET, \"P T\"]") ==
        Lines{"1:22: allow_methods: each entry must be a method such as GET, got 'P T'"});
  CHECK(errorsOf("max_age: 1500ms") == Lines{"1:10: max_age must be whole seconds, got '1500ms'"});
  CHECK(errorsOf("allow_origins: [https://a.test]\nmax_age: 10\norigins: []").size() == 2);
}

}  // namespace
}  // namespace gw::plugins::cors
