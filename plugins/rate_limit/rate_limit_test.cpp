#include "plugins/rate_limit/rate_limit.h"

#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>

#include "plugins/rate_limit/rate_limit_config.h"
#include "test/support/plugin_context.h"

namespace gw::plugins::rate_limit {
namespace {

constexpr int64_t kT0 = 36'000'000;  // whole hours: every window below starts here

std::shared_ptr<const plugin::RouteConfig> load(const std::string& yaml) {
  std::vector<plugin::ConfigError> errors;
  auto config = Factory().parse(YAML::Load(yaml), errors);
  REQUIRE(errors.empty());
  REQUIRE(config);
  return config;
}

// One exchange through a fresh plugin instance: both header phases, as the stream runs them.
struct Exchange {
  test::TestContext ctx;
  plugin::Status request = plugin::Status::Continue;

  Exchange(const plugin::RouteConfig& config, int64_t now, std::string ip = "192.0.2.1",
           std::optional<std::string> apiKey = std::nullopt, std::string route = "route") {
    ctx.loop->now = now;
    ctx.info.clientIp = ip_ = std::move(ip);
    ctx.info.routeName = route_ = std::move(route);
    if (apiKey) ctx.requestHeaders().add("X-API-Key", *apiKey);
    auto plugin = Factory().create(config, nullptr);
    request = plugin->onRequestHeaders(ctx);
    ctx.status = request == plugin::Status::Respond ? 429 : 200;
    CHECK(plugin->onResponseHeaders(ctx) == plugin::Status::Continue);
  }
  bool admitted() const { return request == plugin::Status::Continue; }
  std::string header(std::string_view name) {
    return std::string(ctx.responseHeaders().get(name).value_or("<none>"));
  }

 private:
  std::string ip_;
  std::string route_;
};

int countAdmitted(const plugin::RouteConfig& config, int64_t now, int tries,
                  std::string ip = "192.0.2.1", std::optional<std::string> apiKey = std::nullopt,
                  std::string route = "route") {
  int n = 0;
  for (int i = 0; i < tries; ++i) n += Exchange(config, now, ip, apiKey, route).admitted();
  return n;
}

std::size_t keysIn(const plugin::RouteConfig& config) {
  return static_cast<const Config&>(config).table().size();
}

// What a request with these X-API-Key fields gets: nullopt when admitted, else the error.
std::optional<core::Error> keyError(const plugin::RouteConfig& config,
                                    std::initializer_list<std::string_view> values) {
  test::TestContext ctx;
  ctx.loop->now = kT0;
  for (std::string_view value : values) ctx.requestHeaders().add("X-API-Key", value);
  auto plugin = Factory().create(config, nullptr);
  if (plugin->onRequestHeaders(ctx) == plugin::Status::Continue) return std::nullopt;
  REQUIRE(ctx.failedWith);
  return ctx.failedWith;
}

TEST_CASE("rate_limit: refuses with 429 RATE_LIMIT_EXCEEDED and Retry-After rounded up") {
  const auto config = load("limits: [{requests: 1, window: 1s}]");
  Exchange first(*config, kT0);
  CHECK(first.admitted());
  CHECK(first.ctx.exchangeNotes[0] == "allowed");
  CHECK(first.ctx.counted[kRejections] == 0);
  Exchange refused(*config, kT0 + 500);
  CHECK(refused.request == plugin::Status::Respond);
  REQUIRE(refused.ctx.failedWith);
  CHECK(refused.ctx.failedWith->code == kRateLimitExceeded);
  CHECK(core::httpStatus(refused.ctx.failedWith->code) == 429);
  CHECK(refused.header("Retry-After") == "2");  // 1499 ms: at 1 s the client would be early
  CHECK(refused.header("RateLimit") == "\"default\";r=0;t=2");
  CHECK(refused.ctx.counted[kRejections] == 1);
  CHECK(refused.ctx.counted[kShadowExceeded] == 0);
  CHECK(refused.ctx.exchangeNotes[0] == "rejected");

  // Retry-After is at least 1 even when the wait is 1 ms.
  Exchange soon(*config, kT0 + 1998);
  CHECK_FALSE(soon.admitted());
  CHECK(soon.header("Retry-After") == "1");
  CHECK(Exchange(*config, kT0 + 1999).admitted());
}

TEST_CASE("rate_limit: ceilSeconds rounds up") {
  CHECK(ceilSeconds(0) == 0);
  CHECK(ceilSeconds(1) == 1);
  CHECK(ceilSeconds(1000) == 1);
  CHECK(ceilSeconds(1001) == 2);
}

TEST_CASE("rate_limit: draft headers on every response, exact values") {
  const auto config = load("limits: [{requests: 10, window: 1s}]");
  Exchange first(*config, kT0);
  CHECK(first.header("RateLimit-Policy") == "\"default\";q=10;w=1");
  CHECK(first.header("RateLimit") == "\"default\";r=9;t=2");
  CHECK(first.header("Retry-After") == "<none>");
  Exchange second(*config, kT0 + 1500);  // prev 1 weighs 0.499: 10 - 0.499 - 1 -> 8
  CHECK(second.header("RateLimit") == "\"default\";r=8;t=2");
}

TEST_CASE("rate_limit: draft headers list every policy and report the most restrictive") {
  const auto config = load(R"(
limits:
  - {requests: 3, window: 1s}
  - {requests: 5, window: 1m, name: minute}
)");
  Exchange a(*config, kT0);
  CHECK(a.header("RateLimit-Policy") == "\"limit1\";q=3;w=1, \"minute\";q=5;w=60");
  CHECK(a.header("RateLimit") == "\"limit1\";r=2;t=2");
  CHECK(countAdmitted(*config, kT0 + 2000, 3) == 3);
  CHECK(countAdmitted(*config, kT0 + 4000, 3) == 1);  // the fifth of the minute
  Exchange b(*config, kT0 + 6000);
  CHECK_FALSE(b.admitted());
  CHECK(b.header("RateLimit") == "\"minute\";r=0;t=114");
}

TEST_CASE("rate_limit: sub-second windows are advertised rounded up to whole seconds") {
  const auto config = load("limits: [{requests: 5, window: 250ms}]");
  CHECK(Exchange(*config, kT0).header("RateLimit-Policy") == "\"default\";q=5;w=1");
}

TEST_CASE("rate_limit: legacy, x and off header styles") {
  const auto legacy = load("{limits: [{requests: 10, window: 1m}], headers: legacy}");
  Exchange l(*legacy, kT0);
  CHECK(l.header("RateLimit-Limit") == "10");
  CHECK(l.header("RateLimit-Remaining") == "9");
  CHECK(l.header("RateLimit-Reset") == "120");
  CHECK(l.header("RateLimit") == "<none>");
  CHECK(l.header("RateLimit-Policy") == "<none>");

  const auto x = load("{limits: [{requests: 10, window: 1m}], headers: x}");
  Exchange xx(*x, kT0 + 30000);
  CHECK(xx.header("X-RateLimit-Limit") == "10");
  CHECK(xx.header("X-RateLimit-Remaining") == "9");
  CHECK(xx.header("X-RateLimit-Reset") == "90");
  CHECK(xx.header("RateLimit-Limit") == "<none>");

  const auto off = load("{limits: [{requests: 1, window: 1m}], headers: off}");
  Exchange o(*off, kT0);
  CHECK(o.ctx.responseHeaders().size() == 0);
  Exchange refused(*off, kT0);
  CHECK_FALSE(refused.admitted());
  REQUIRE(refused.ctx.responseHeaders().size() == 1);  // Retry-After still goes with a 429
  // With one request per window the previous window weighs until its last ms is over.
  CHECK(refused.header("Retry-After") == "120");
}

TEST_CASE("rate_limit: shadow mode counts and reports but never refuses") {
  const auto config = load("{limits: [{requests: 2, window: 1m}], mode: shadow}");
  CHECK(countAdmitted(*config, kT0, 5) == 5);
  Exchange e(*config, kT0);
  CHECK(e.admitted());
  CHECK_FALSE(e.ctx.failedWith);
  CHECK(e.header("RateLimit") == "\"default\";r=0;t=120");
  CHECK(e.header("Retry-After") == "<none>");
  CHECK(e.ctx.counted[kShadowExceeded] == 1);
  CHECK(e.ctx.counted[kRejections] == 0);
  CHECK(e.ctx.exchangeNotes[0] == "shadow");
}

TEST_CASE("rate_limit: keyed by client IP (the default)") {
  const auto config = load("limits: [{requests: 1, window: 1m}]");
  CHECK(countAdmitted(*config, kT0, 3, "192.0.2.1") == 1);
  CHECK(countAdmitted(*config, kT0, 3, "192.0.2.2") == 1);
  CHECK(countAdmitted(*config, kT0, 3, "2001:db8::1", "k", "other") == 1);
}

TEST_CASE("rate_limit: keyed by a header, missing header keyed by IP") {
  const auto config = load("{limits: [{requests: 1, window: 1m}], key: [{header: X-API-Key}]}");
  CHECK(countAdmitted(*config, kT0, 3, "192.0.2.1", "alpha") == 1);
  CHECK(countAdmitted(*config, kT0, 3, "192.0.2.2", "alpha") == 0);  // same key, other IP
  CHECK(countAdmitted(*config, kT0, 3, "192.0.2.1", "beta") == 1);
  CHECK(countAdmitted(*config, kT0, 3, "192.0.2.9") == 1);      // no key: by IP
  CHECK(countAdmitted(*config, kT0, 3, "192.0.2.8", "") == 1);  // empty counts as missing
  // A key that spells an IP does not share (or exhaust) that IP's counter.
  CHECK(countAdmitted(*config, kT0, 3, "192.0.2.7", "192.0.2.6") == 1);
  CHECK(countAdmitted(*config, kT0, 3, "192.0.2.6") == 1);
}

TEST_CASE("rate_limit: missing_key reject answers 400 and sets no quota headers") {
  const auto config = load(
      "{limits: [{requests: 1, window: 1m}], key: [{header: X-API-Key}], missing_key: reject}");
  Exchange e(*config, kT0);
  CHECK(e.request == plugin::Status::Respond);
  REQUIRE(e.ctx.failedWith);
  CHECK(e.ctx.failedWith->code == core::ErrorCode::BadRequest);
  CHECK(e.ctx.failedWith->message.find("X-API-Key") != std::string::npos);
  CHECK(e.ctx.responseHeaders().size() == 0);
  CHECK(Exchange(*config, kT0, "192.0.2.1", "alpha").admitted());
}

TEST_CASE("rate_limit: a key header sent twice is refused with 400, whatever its values") {
  const auto config = load("{limits: [{requests: 5, window: 1m}], key: [{header: X-API-Key}]}");
  for (const auto& values : {std::pair{"alpha", "beta"}, {"alpha", "alpha"}, {"alpha", ""}}) {
    CAPTURE(values.first);
    CAPTURE(values.second);
    const auto error = keyError(*config, {values.first, values.second});
    REQUIRE(error);
    CHECK(error->code == core::ErrorCode::BadRequest);
    CHECK(error->message == "the X-API-Key header appears more than once (it keys the rate limit)");
  }
  CHECK(keysIn(*config) == 0);  // nothing was counted toward a limit
}

TEST_CASE("rate_limit: a key header longer than max_key_bytes is refused with 431") {
  const auto config =
      load("{limits: [{requests: 5, window: 1m}], key: [{header: X-API-Key}], max_key_bytes: 8}");
  CHECK_FALSE(keyError(*config, {"12345678"}));
  const auto error = keyError(*config, {"123456789"});
  REQUIRE(error);
  CHECK(error->code == core::ErrorCode::HeadersTooLarge);
  CHECK(core::httpStatus(error->code) == 431);
  CHECK(error->message ==
        "the X-API-Key header is longer than the 8 bytes a rate-limit key may have");
  CHECK(keysIn(*config) == 1);
}

TEST_CASE("rate_limit: reset and Retry-After while only the previous window weighs") {
  const auto config = load("{limits: [{requests: 1, window: 1m}], headers: legacy}");
  CHECK(Exchange(*config, kT0).admitted());
  // 15 s into the next window, nothing counted in it yet: the last window's request weighs
  // (60000 - 15001) / 60000 and keeps the client out until it weighs 0, 44999 ms from now.
  Exchange refused(*config, kT0 + 75000);
  CHECK_FALSE(refused.admitted());
  CHECK(refused.header("Retry-After") == "45");
  CHECK(refused.header("RateLimit-Reset") == "45");
  CHECK(refused.header("RateLimit-Remaining") == "0");
}

TEST_CASE("rate_limit: keyed by route, and by a combination") {
  const auto byRoute = load("{limits: [{requests: 1, window: 1m}], key: [route]}");
  CHECK(countAdmitted(*byRoute, kT0, 2, "192.0.2.1", std::nullopt, "a") == 1);
  CHECK(countAdmitted(*byRoute, kT0, 2, "192.0.2.2", std::nullopt, "a") == 0);
  CHECK(countAdmitted(*byRoute, kT0, 2, "192.0.2.2", std::nullopt, "b") == 1);

  const auto combo =
      load("{limits: [{requests: 1, window: 1m}], key: [client_ip, {header: X-API-Key}, route]}");
  CHECK(countAdmitted(*combo, kT0, 2, "192.0.2.1", "k", "a") == 1);
  CHECK(countAdmitted(*combo, kT0, 2, "192.0.2.2", "k", "a") == 1);
  CHECK(countAdmitted(*combo, kT0, 2, "192.0.2.1", "j", "a") == 1);
  CHECK(countAdmitted(*combo, kT0, 2, "192.0.2.1", "k", "b") == 1);
  CHECK(countAdmitted(*combo, kT0, 2, "192.0.2.1", "k", "a") == 0);
}

TEST_CASE("rate_limit: two instances on one route keep separate tables") {
  const auto perIp = load("limits: [{requests: 1, window: 1m}]");
  const auto perKey = load("{limits: [{requests: 5, window: 1m}], key: [{header: X-API-Key}]}");
  CHECK(countAdmitted(*perIp, kT0, 3) == 1);
  CHECK(countAdmitted(*perKey, kT0, 3, "192.0.2.1", "alpha") == 3);
  CHECK(&static_cast<const Config&>(*perIp).table() !=
        &static_cast<const Config&>(*perKey).table());
}

TEST_CASE("rate_limit: no headers when an earlier plugin answered before ours ran") {
  const auto config = load("limits: [{requests: 1, window: 1m}]");
  test::TestContext ctx;
  auto plugin = Factory().create(*config, nullptr);
  CHECK(plugin->onResponseHeaders(ctx) == plugin::Status::Continue);
  CHECK(ctx.responseHeaders().size() == 0);
}

TEST_CASE("rate_limit: a recycled instance forgets the previous exchange's decision") {
  const auto config = load("limits: [{requests: 1, window: 1m}]");
  auto plugin = Factory().create(*config, nullptr);
  {
    test::TestContext refused;
    refused.loop->now = kT0;
    refused.info.clientIp = "192.0.2.1";
    CHECK(plugin->onRequestHeaders(refused) == plugin::Status::Continue);
    CHECK(plugin->onRequestHeaders(refused) == plugin::Status::Respond);
  }
  REQUIRE(plugin->recycle());
  // The next exchange was answered by an earlier plugin: ours never judged it.
  test::TestContext next;
  CHECK(plugin->onResponseHeaders(next) == plugin::Status::Continue);
  CHECK(next.responseHeaders().size() == 0);
}

}  // namespace
}  // namespace gw::plugins::rate_limit
