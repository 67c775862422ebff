#include "plugins/request_id/request_id.h"

#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "plugins/request_id/request_id_config.h"
#include "test/support/plugin_config.h"
#include "test/support/plugin_context.h"

namespace gw::plugins::request_id {
namespace {

using Lines = std::vector<std::string>;

std::shared_ptr<const plugin::RouteConfig> parse(const std::string& yaml,
                                                 std::vector<plugin::ConfigError>& errors) {
  return Factory().parse(YAML::Load(yaml), errors);
}

Lines errorsOf(const std::string& yaml) { return test::configErrors(Factory(), yaml); }

// Runs both header phases of one exchange through a fresh plugin.
void exchange(const std::string& yaml, test::TestContext& ctx) {
  std::vector<plugin::ConfigError> errors;
  const auto config = parse(yaml, errors);
  REQUIRE(config);
  const auto plugin = Factory().create(*config, nullptr);
  CHECK(plugin->onRequestHeaders(ctx) == plugin::Status::Continue);
  CHECK(plugin->onResponseHeaders(ctx) == plugin::Status::Continue);
}

bool isHex32(std::string_view id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

TEST_CASE("request_id: well-formed ids") {
  CHECK(isWellFormed("a"));
  CHECK(isWellFormed("6f1c2d0e-8b1a-4c55-9d7e-0a1b2c3d4e5f"));
  CHECK(isWellFormed("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK(isWellFormed("dGVzdA==+/._:"));
  CHECK(isWellFormed(std::string(kMaxIdLength, 'x')));
  CHECK_FALSE(isWellFormed(""));
  CHECK_FALSE(isWellFormed(std::string(kMaxIdLength + 1, 'x')));
  CHECK_FALSE(isWellFormed("a b"));
  CHECK_FALSE(isWellFormed("a\"b"));
  CHECK_FALSE(isWellFormed("a,b"));
  CHECK_FALSE(isWellFormed("a\\b"));
  CHECK_FALSE(isWellFormed("caf\xc3\xa9"));
}

TEST_CASE("request_id: generated ids are 128-bit hex and distinct") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = generateId();
    CHECK(isHex32(id));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

using Fields = std::vector<std::pair<std::string, std::string>>;

Fields fieldsOf(const plugin::HeaderMap& headers) {
  Fields fields;
  headers.forEach([&](std::string_view name, std::string_view value) {
    fields.emplace_back(name, value);
    return true;
  });
  return fields;
}

TEST_CASE("request_id: a well-formed incoming id is kept and passed both ways") {
  test::TestContext ctx;
  ctx.requestHeaders().add("x-request-id", "abc-123");
  exchange("{}", ctx);
  CHECK(std::string(ctx.requestId()) == "abc-123");
  CHECK(fieldsOf(ctx.requestHeaders()) == Fields{{"X-Request-Id", "abc-123"}});
  CHECK(fieldsOf(ctx.responseHeaders()) == Fields{{"X-Request-Id", "abc-123"}});
}

TEST_CASE("request_id: a missing, malformed or distrusted id is replaced by a generated one") {
  for (const char* incoming : {"", "has space", "x\"y"}) {
    test::TestContext ctx;
    if (*incoming != '\0') ctx.requestHeaders().add("X-Request-Id", incoming);
    ctx.requestHeaders().add("Accept", "*/*");
    exchange("", ctx);
    CHECK(isHex32(std::string(ctx.requestId())));
    CHECK(fieldsOf(ctx.requestHeaders()) ==
          Fields{{"Accept", "*/*"}, {"X-Request-Id", std::string(ctx.requestId())}});
    CHECK(fieldsOf(ctx.responseHeaders()) ==
          Fields{{"X-Request-Id", std::string(ctx.requestId())}});
  }
  test::TestContext ctx;
  ctx.requestHeaders().add("X-Request-Id", "abc");
  exchange("{accept_incoming: false}", ctx);
  CHECK(isHex32(std::string(ctx.requestId())));
  CHECK(fieldsOf(ctx.requestHeaders()) == Fields{{"X-Request-Id", std::string(ctx.requestId())}});
}

TEST_CASE("request_id: repeated incoming fields collapse to the first") {
  test::TestContext ctx;
  ctx.requestHeaders().add("X-Request-Id", "first");
  ctx.requestHeaders().add("X-Request-Id", "second");
  exchange("{}", ctx);
  CHECK(std::string(ctx.requestId()) == "first");
  CHECK(fieldsOf(ctx.requestHeaders()) == Fields{{"X-Request-Id", "first"}});
}

TEST_CASE("request_id: header name and response echo are configurable") {
  test::TestContext ctx;
  ctx.requestHeaders().add("X-Request-Id", "ignored");
  ctx.requestHeaders().add("X-Correlation-Id", "corr.1");
  ctx.responseHeaders().add("X-Correlation-Id", "from-upstream");
  exchange("{header: X-Correlation-Id, response_header: false}", ctx);
  CHECK(std::string(ctx.requestId()) == "corr.1");
  CHECK(fieldsOf(ctx.requestHeaders()) ==
        Fields{{"X-Request-Id", "ignored"}, {"X-Correlation-Id", "corr.1"}});
  CHECK(fieldsOf(ctx.responseHeaders()) == Fields{{"X-Correlation-Id", "from-upstream"}});
}

TEST_CASE("request_id: settings errors") {
  CHECK(errorsOf("{header: 'X Id', accept_incoming: maybe, echo: true}") ==
        Lines{"1:42: unknown key 'echo' in request_id; expected one of: header, accept_incoming, "
              "response_header",
              "1:10: 'header' must be a header name (letters, digits and !#$%&'*+-.^_`|~), got "
              "'X Id'",
              "1:35: 'accept_incoming': expected true or false, got 'maybe'"});
  CHECK(errorsOf("[header]") ==
        Lines{"1:1: the settings of request_id must be a mapping, got a list"});
}

TEST_CASE("request_id: a field the gateway owns cannot carry the id") {
  for (const char* name :
       {"Content-Length", "transfer-encoding", "Host", "Connection", "Keep-Alive", "TE", "Trailer",
        "Upgrade", "Proxy-Connection", "Proxy-Authorization"}) {
    INFO(name);
    CHECK(errorsOf(std::string("header: ") + name) ==
          Lines{"1:9: 'header' must not be '" + std::string(name) +
                "', the gateway's own field (it frames the message, routes it or belongs to the "
                "connection)"});
  }
  CHECK(errorsOf("header: X-Trace-Id") == Lines{"settings were accepted"});
}

}  // namespace
}  // namespace gw::plugins::request_id
