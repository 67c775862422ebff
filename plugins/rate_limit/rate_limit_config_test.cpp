#include "plugins/rate_limit/rate_limit_config.h"

#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "plugins/rate_limit/rate_limit.h"
#include "test/support/plugin_config.h"

namespace gw::plugins::rate_limit {
namespace {

using Lines = std::vector<std::string>;

std::shared_ptr<const plugin::RouteConfig> parse(const std::string& yaml,
                                                 std::vector<plugin::ConfigError>& errors) {
  return Factory().parse(YAML::Load(yaml), errors);
}

const Config& parsed(const std::string& yaml) {
  static std::vector<std::shared_ptr<const plugin::RouteConfig>> keep;
  std::vector<plugin::ConfigError> errors;
  auto config = parse(yaml, errors);
  REQUIRE(errors.empty());
  REQUIRE(config);
  keep.push_back(config);
  return static_cast<const Config&>(*config);
}

Lines errorsOf(const std::string& yaml) { return test::configErrors(Factory(), yaml); }

TEST_CASE("rate_limit config: defaults") {
  const Config& c = parsed("limits: [{requests: 10, window: 1s}]");
  REQUIRE(c.limits().size() == 1);
  CHECK(c.limits()[0].limit.requests == 10);
  CHECK(c.limits()[0].limit.windowMs == 1000);
  CHECK(c.limits()[0].name == "default");
  REQUIRE(c.key().size() == 1);
  CHECK(c.key()[0].kind == KeyKind::ClientIp);
  CHECK(c.missingKey() == MissingKey::ClientIp);
  CHECK(c.headers() == HeaderStyle::Draft);
  CHECK(c.mode() == Mode::Enforce);
  CHECK(c.policyField() == "\"default\";q=10;w=1");
  CHECK(c.maxKeyBytes() == 1024);
  CHECK(Factory().allowsRepeats());
}

TEST_CASE("rate_limit config: every setting") {
  const Config& c = parsed(R"(
limits:
  - {requests: 10, window: 1s, name: burst}
  - {requests: 500, window: 1m}
key: [client_ip, {header: X-API-Key}, route]
missing_key: reject
headers: legacy
mode: shadow
max_keys: 5000
max_key_bytes: 4KiB
)");
  REQUIRE(c.limits().size() == 2);
  CHECK(c.limits()[0].name == "burst");
  CHECK(c.limits()[1].name == "limit2");
  CHECK(c.limits()[1].limit.windowMs == 60000);
  REQUIRE(c.key().size() == 3);
  CHECK(c.key()[1].kind == KeyKind::Header);
  CHECK(c.key()[1].header == "X-API-Key");
  CHECK(c.key()[2].kind == KeyKind::Route);
  CHECK(c.missingKey() == MissingKey::Reject);
  CHECK(c.headers() == HeaderStyle::Legacy);
  CHECK(c.mode() == Mode::Shadow);
  CHECK(c.maxKeyBytes() == 4096);
  CHECK(c.policyField() == "\"burst\";q=10;w=1, \"limit2\";q=500;w=60");
}

TEST_CASE("rate_limit config: errors carry line and column") {
  CHECK(errorsOf("limits: [{requests: 0, window: 1s}]") ==
        Lines{"1:21: 'requests': expected an integer from 1 to 1000000000, got '0'"});
}

TEST_CASE("rate_limit config: bad values are refused") {
  auto hasError = [](const std::string& yaml, const std::string& part) {
    const Lines lines = errorsOf(yaml);
    std::string all;
    for (const auto& l : lines) all += l + "\n";
    CAPTURE(all);
    CHECK(all.find(part) != std::string::npos);
  };
  hasError("key: [client_ip]", "missing required key 'limits'");
  hasError("limits: []", "'limits' must be a non-empty list");
  hasError("limits: [{window: 1s}]", "missing required key 'requests'");
  hasError("limits: [{requests: 5}]", "missing required key 'window'");
  hasError("limits: [{requests: 1, window: 0ms}]", "'window'");
  hasError("limits: [{requests: 1, window: 10}]", "'window'");
  hasError("limits: [{requests: 1, window: 25h}]", "at most 24h");
  hasError("limits: [{requests: 1, window: 1s, burst: 3}]", "unknown key 'burst'");
  hasError("limits: [{requests: 1, window: 1s, name: 'a b'}]", "'name' must be");
  hasError("limits: [{requests: 1, window: 1s, name: a}, {requests: 2, window: 1m, name: a}]",
           "duplicate limit name 'a'");
  hasError("limits: [{requests: 1, window: 1s}]\nrate: 5", "unknown key 'rate'");
  hasError("limits: [{requests: 1, window: 1s}]\nkey: [{header: 'X API'}]",
           "'header' must be a header name");
  hasError("limits: [{requests: 1, window: 1s}]\nkey: [{header: }]", "'header' must be");
  hasError("limits: [{requests: 1, window: 1s}]\nkey: [cookie]", "a key part must be");
  hasError("limits: [{requests: 1, window: 1s}]\nkey: [route, route]", "listed twice");
  hasError("limits: [{requests: 1, window: 1s}]\nkey: [{header: a}, {header: A}]", "listed twice");
  hasError("limits: [{requests: 1, window: 1s}]\nkey: client_ip", "'key' must be a non-empty list");
  hasError("limits: [{requests: 1, window: 1s}]\nmode: dry", "'mode'");
  hasError("limits: [{requests: 1, window: 1s}]\nheaders: ietf", "'headers'");
  hasError("limits: [{requests: 1, window: 1s}]\nmissing_key: deny", "'missing_key'");
  hasError("limits: [{requests: 1, window: 1s}]\nmax_keys: 0", "'max_keys'");
  hasError("limits: [{requests: 1, window: 1s}]\nmax_key_bytes: 0", "'max_key_bytes'");
  hasError("limits: [{requests: 1, window: 1s}]\nmax_key_bytes: lots", "'max_key_bytes'");
  hasError("- 1", "must be a mapping");
}

TEST_CASE("rate_limit config: store local by default, redis and hybrid with their settings") {
  const Config& local = parsed("limits: [{requests: 10, window: 1s}]");
  CHECK(local.redis().store == Store::Local);
  CHECK_FALSE(local.usesRedis());

  const Config& redis = parsed("{limits: [{requests: 10, window: 1s}], store: redis}");
  CHECK(redis.usesRedis());
  CHECK(redis.redis().onError == OnRedisError::Allow);
  CHECK(redis.redis().memoKeys == 4096);
  CHECK(redis.window().scope().size() == 8);

  const Config& hybrid = parsed(R"(
limits: [{requests: 1000, window: 1m}]
store: hybrid
on_redis_error: deny
scope: api.v2
batch: 50
memo_keys: 10
)");
  CHECK(hybrid.usesRedis());
  CHECK(hybrid.redis().store == Store::Hybrid);
  CHECK(hybrid.redis().onError == OnRedisError::Deny);
  CHECK(hybrid.window().scope() == "api.v2");
  CHECK(hybrid.redis().batch == 50);
  CHECK(hybrid.redis().maxBatch == 800);  // 16 x batch unless set
  CHECK(parsed("{limits: [{requests: 1, window: 1s}], store: hybrid, max_batch: 40}")
            .redis()
            .maxBatch == 40);
  CHECK(hybrid.redis().memoKeys == 10);
}

TEST_CASE("rate_limit config: the default scope follows the limits and the key, not names") {
  auto scope = [](const std::string& yaml) { return parsed(yaml).window().scope(); };
  const std::string base = scope("{limits: [{requests: 10, window: 1s}], store: redis}");
  CHECK(base == scope("{limits: [{requests: 10, window: 1s, name: x}], store: hybrid}"));
  CHECK(base != scope("{limits: [{requests: 11, window: 1s}], store: redis}"));
  CHECK(base != scope("{limits: [{requests: 10, window: 2s}], store: redis}"));
  CHECK(base != scope("{limits: [{requests: 10, window: 1s}], store: redis, key: [route]}"));
  CHECK(scope("{limits: [{requests: 1, window: 1s}], store: redis, key: [{header: X-Key}]}") ==
        scope("{limits: [{requests: 1, window: 1s}], store: redis, key: [{header: x-key}]}"));
}

TEST_CASE("rate_limit config: Redis settings are checked, at their position") {
  CHECK(errorsOf("{limits: [{requests: 1000000000, window: 24h}], store: redis}") ==
        Lines{"1:11: with store: redis or hybrid, a limit's requests x window in ms must be at "
              "most 2^53 (9007199254740992), got 1000000000 x 86400000"});
  const Lines accepted{"settings were accepted"};
  CHECK(errorsOf("{limits: [{requests: 1000000000, window: 24h}]}") == accepted);  // int64
  CHECK(errorsOf("{limits: [{requests: 100000000, window: 24h}], store: hybrid}") == accepted);
  CHECK(errorsOf("{limits: [{requests: 1, window: 1s}], store: disk}") ==
        Lines{"1:46: 'store': expected local, redis or hybrid, got 'disk'"});
  CHECK(errorsOf("{limits: [{requests: 1, window: 1s}], store: redis, scope: 'a{b}'}") ==
        Lines{"1:60: 'scope' must be 1 to 64 letters, digits, '_', '.' or '-', got 'a{b}'"});
  CHECK(errorsOf("{limits: [{requests: 1, window: 1s}], on_redis_error: deny}") ==
        Lines{"1:55: 'on_redis_error' applies to store: redis or hybrid only, and store is local"});
  CHECK(errorsOf("{limits: [{requests: 1, window: 1s}], store: redis, batch: 8}") ==
        Lines{"1:60: 'batch' applies to store: hybrid only"});
  CHECK(errorsOf("{limits: [{requests: 1, window: 1s}], store: hybrid, batch: 1}") ==
        Lines{"1:61: 'batch': expected an integer from 2 to 1000, got '1'"});
  CHECK(errorsOf("{limits: [{requests: 1, window: 1s}], store: redis, max_batch: 8}") ==
        Lines{"1:64: 'max_batch' applies to store: hybrid only"});
  CHECK(
      errorsOf("{limits: [{requests: 1, window: 1s}], store: hybrid, batch: 32, max_batch: 16}") ==
      Lines{"1:76: 'max_batch' (16) must be at least 'batch' (32)"});
  CHECK(errorsOf("{limits: [{requests: 1, window: 1s}], store: hybrid, max_batch: 16001}") ==
        Lines{"1:65: 'max_batch': expected an integer from 2 to 16000, got '16001'"});
  CHECK(errorsOf("{limits: [{requests: 1, window: 1s}], store: hybrid, memo_keys: 0}") ==
        Lines{"1:65: 'memo_keys' must be at least 1 with store: hybrid (it also bounds the keys "
              "holding leases)"});
  CHECK(errorsOf("{limits: [{requests: 1, window: 1s}], store: redis, on_redis_error: open}")
            .size() == 1);
}

TEST_CASE("rate_limit config: no settings at all is an error") {
  std::vector<plugin::ConfigError> errors;
  CHECK(Factory().parse(YAML::Node(), errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "rate_limit is missing required key 'limits'");
}

}  // namespace
}  // namespace gw::plugins::rate_limit
