// The cache plugin with `store: redis`, against test::FakeRedis: what it asks Redis, what it
// does with each answer, what it sends on a fill. Two Settings objects stand for two gatewayd
// instances (each its own memory store) sharing one Redis.

#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <vector>

#include "gateway/http/headers.h"
#include "plugins/cache/cache.h"
#include "plugins/cache/cache_config.h"
#include "plugins/cache/redis_tier.h"
#include "test/support/fake_redis.h"
#include "test/support/plugin_config.h"
#include "test/support/plugin_context.h"

using namespace gw;
using gw::plugin::Status;
using gw::plugins::cache::Cache;
using gw::plugins::cache::Factory;
using gw::plugins::cache::RedisResult;
using gw::plugins::cache::Settings;
using gw::test::FakeRedis;
using gw::test::FakeReply;
using Fields = std::vector<std::pair<std::string, std::string>>;

namespace {

std::shared_ptr<const Settings> instance(const std::string& extra = "") {
  std::vector<plugin::ConfigError> errors;
  auto parsed = Factory().parse(YAML::Load("{coalesce: false, store: redis" + extra + "}"), errors);
  REQUIRE_MESSAGE(parsed, (errors.empty() ? "" : errors.front().message));
  return std::static_pointer_cast<const Settings>(parsed);
}

// One GET exchange, driven step by step.
struct Exchange {
  test::TestContext ctx;
  std::unique_ptr<Cache> cache;
  Status first = Status::Continue;

  Exchange(const Settings& config, FakeRedis* redis, std::string_view path, Fields request = {},
           std::string_view method = "GET") {
    ctx.info.method = method;
    static thread_local std::vector<std::string> paths;  // outlive the exchange's string_views
    paths.emplace_back(path);
    ctx.info.path = paths.back();
    ctx.info.forwardedHost = "example.test";
    ctx.requestFields.fields = std::move(request);
    ctx.loop->redisClient = redis;
    cache = std::make_unique<Cache>(config, plugin::Slots{});
    first = cache->onRequestHeaders(ctx);
  }
  ~Exchange() { cache->onDestroy(); }

  // The upstream answers (the request went on: Continue, or resumed without a reply).
  void upstream(int status, Fields fields, std::string_view body) {
    REQUIRE_FALSE(ctx.repliedStatus);
    ctx.status = status;
    ctx.responseFields.fields = std::move(fields);
    cache->onResponseHeaders(ctx);
    cache->onResponseBody(ctx, body, false);
    cache->onResponseBody(ctx, {}, true);
  }
  uint64_t redisCount(RedisResult result) const {
    return ctx.counted[plugins::cache::kRedisCounters + static_cast<uint32_t>(result)];
  }
};

const Fields kFresh{{"Cache-Control", "max-age=60"}, {"ETag", "\"v1\""}};

std::string entryKey(const FakeRedis& redis, std::string_view path) {
  // What the plugin names the key of a plain GET of http://example.test<path>.
  plugins::cache::RequestKey key;
  plugins::cache::buildRequestKey({}, "GET", "example.test", path, "",
                                  plugins::cache::FieldSpan({}), key);
  return plugins::cache::redisEntryKey(redis.keys, key.primary);
}

// Instance A misses everywhere, fetches, stores, and fills Redis; returns the SET it sent.
std::vector<std::string> fillFrom(const Settings& a, FakeRedis& redis, std::string_view path,
                                  const Fields& origin = kFresh,
                                  std::string_view body = "payload") {
  Exchange x(a, &redis, path);
  REQUIRE(x.first == Status::Stop);
  redis.respond(FakeReply::nil());
  REQUIRE(x.ctx.resumes == 1);
  x.upstream(200, origin, body);
  REQUIRE(redis.pending() == 1);
  auto set = redis.oldest();
  redis.respond(FakeReply::status("OK"));
  return set;
}

// Two instances on one Redis, after A filled `path` there.
struct AfterFill {
  std::shared_ptr<const Settings> a = instance();
  std::shared_ptr<const Settings> b;
  FakeRedis redis;
  std::vector<std::string> set;  // A's SET

  explicit AfterFill(std::string_view path, const std::string& extraForB = "")
      : b(instance(extraForB)), set(fillFrom(*a, redis, path)) {}
};

std::string repliedField(const test::TestContext& ctx, std::string_view name) {
  for (const auto& [n, v] : ctx.repliedFields) {
    if (http::iequals(n, name)) return v;
  }
  return "";
}

}  // namespace

TEST_CASE("cache redis config: store and redis_max_entry_bytes, checked") {
  CHECK(instance("")->redisStore);
  CHECK(instance("")->redisMaxEntryBytes == 1 << 20);
  CHECK(instance(", redis_max_entry_bytes: 64KiB")->redisMaxEntryBytes == 64 * 1024);
  CHECK(instance("")->usesRedis());
  std::vector<plugin::ConfigError> errors;
  auto memory = std::static_pointer_cast<const Settings>(Factory().parse(YAML::Load("{}"), errors));
  CHECK_FALSE(memory->redisStore);
  CHECK_FALSE(memory->usesRedis());
  CHECK(test::configErrors(Factory(), "store: disk") ==
        std::vector<std::string>{"1:8: 'store': expected memory or redis, got 'disk'"});
  CHECK(test::configErrors(Factory(), "redis_max_entry_bytes: 0").size() == 1);
}

TEST_CASE("cache redis: a miss in both tiers goes upstream and fills Redis with SET ... PX") {
  auto a = instance();
  FakeRedis redis;
  redis.keys.prefix = "t:";
  Exchange x(*a, &redis, "/items/1");
  REQUIRE(x.first == Status::Stop);
  REQUIRE(redis.pending() == 1);
  CHECK(redis.oldest() == std::vector<std::string>{"GET", entryKey(redis, "/items/1")});
  redis.respond(FakeReply::nil());
  CHECK(x.ctx.resumes == 1);
  CHECK(x.redisCount(RedisResult::Miss) == 1);
  x.upstream(200, kFresh, "payload");
  REQUIRE(redis.pending() == 1);
  const auto set = redis.oldest();
  REQUIRE(set.size() == 5);
  CHECK(set[0] == "SET");
  CHECK(set[1] == entryKey(redis, "/items/1"));
  CHECK(set[1].starts_with("t:c:{"));
  CHECK(set[3] == "PX");
  CHECK(set[4] == "60000");
  CHECK(x.redisCount(RedisResult::Stored) == 1);
  // The memory tier has it: the next request on this instance asks Redis nothing.
  Exchange again(*a, &redis, "/items/1");
  CHECK(again.first == Status::Respond);
  CHECK(again.ctx.repliedBody == "payload");
  CHECK(redis.pending() == 1);  // only the SET, not answered yet
}

TEST_CASE("cache redis: a fill on one instance is a hit on another, with its age") {
  AfterFill shared("/shared");
  auto& [a, b, redis, set] = shared;
  Exchange x(*b, &redis, "/shared");
  REQUIRE(x.first == Status::Stop);
  CHECK(redis.oldest() == std::vector<std::string>{"GET", set[1]});
  redis.respond(FakeReply::string(set[2]));
  CHECK(x.ctx.resumes == 1);
  REQUIRE(x.ctx.repliedStatus);
  CHECK(*x.ctx.repliedStatus == 200);
  CHECK(x.ctx.repliedBody == "payload");
  CHECK(repliedField(x.ctx, "ETag") == "\"v1\"");
  CHECK(repliedField(x.ctx, "Age") == "0");
  CHECK(x.redisCount(RedisResult::Hit) == 1);
  // Now B's memory has it too.
  Exchange y(*b, &redis, "/shared");
  CHECK(y.first == Status::Respond);
  CHECK(redis.pending() == 0);
}

TEST_CASE("cache redis: a failed, refused, malformed or oversized answer is a miss") {
  AfterFill shared("/p", ", redis_max_entry_bytes: 200");
  auto& [a, b, redis, set] = shared;

  SUBCASE("timeout") {
    Exchange x(*b, &redis, "/p");
    redis.fail(redis::Failure::Timeout);
    CHECK(x.ctx.resumes == 1);
    CHECK_FALSE(x.ctx.repliedStatus);  // on upstream
    CHECK(x.redisCount(RedisResult::Error) == 1);
  }
  SUBCASE("error reply") {
    Exchange x(*b, &redis, "/p");
    redis.respond(FakeReply::error("WRONGTYPE"));
    CHECK(x.ctx.resumes == 1);
    CHECK_FALSE(x.ctx.repliedStatus);
    CHECK(x.redisCount(RedisResult::Error) == 1);
  }
  SUBCASE("breaker open: not even a wait") {
    redis.refuseWith = redis::Failure::Down;
    Exchange x(*b, &redis, "/p");
    CHECK(x.first == Status::Continue);
    CHECK(x.redisCount(RedisResult::Error) == 1);
  }
  SUBCASE("no redis connection on this worker") {
    Exchange x(*b, nullptr, "/p");
    CHECK(x.first == Status::Continue);
    CHECK(x.redisCount(RedisResult::Error) == 1);
  }
  SUBCASE("bad blob") {
    Exchange x(*b, &redis, "/p");
    redis.respond(FakeReply::string(set[2].substr(0, set[2].size() - 3)));
    CHECK(x.ctx.resumes == 1);
    CHECK_FALSE(x.ctx.repliedStatus);
    CHECK(x.redisCount(RedisResult::Error) == 1);
  }
  SUBCASE("a value of another URL under this key") {
    Exchange x(*b, &redis, "/q");
    redis.respond(FakeReply::string(set[2]));
    CHECK_FALSE(x.ctx.repliedStatus);
    CHECK(x.redisCount(RedisResult::Error) == 1);
  }
  SUBCASE("not a string") {
    Exchange x(*b, &redis, "/p");
    redis.respond(FakeReply::integer(7));
    CHECK_FALSE(x.ctx.repliedStatus);
    CHECK(x.redisCount(RedisResult::Error) == 1);
  }
  SUBCASE("over this instance's redis_max_entry_bytes") {
    Exchange x(*b, &redis, "/p");
    redis.respond(FakeReply::string(set[2] + std::string(200, 'x')));
    CHECK_FALSE(x.ctx.repliedStatus);
    CHECK(x.redisCount(RedisResult::Error) == 1);
  }
}

TEST_CASE("cache redis: an entry over redis_max_entry_bytes stays in memory only") {
  auto a = instance(", redis_max_entry_bytes: 100");
  FakeRedis redis;
  Exchange x(*a, &redis, "/big");
  redis.respond(FakeReply::nil());
  x.upstream(200, kFresh, std::string(200, 'b'));
  CHECK(redis.pending() == 0);
  CHECK(x.redisCount(RedisResult::TooLarge) == 1);
  CHECK(x.redisCount(RedisResult::Stored) == 0);
  Exchange again(*a, &redis, "/big");
  CHECK(again.first == Status::Respond);  // memory still has it
}

TEST_CASE("cache redis: a Redis hit larger than this instance's memory entries is still served") {
  auto a = instance();
  auto b = instance(", max_entry_bytes: 300");
  FakeRedis redis;
  const auto set = fillFrom(*a, redis, "/wide", kFresh, std::string(400, 'w'));
  Exchange x(*b, &redis, "/wide");
  redis.respond(FakeReply::string(set[2]));
  REQUIRE(x.ctx.repliedStatus);
  CHECK(x.ctx.repliedBody == std::string(400, 'w'));
  CHECK(x.redisCount(RedisResult::Hit) == 1);
  Exchange again(*b, &redis, "/wide");
  CHECK(again.first == Status::Stop);  // not kept in B's memory: Redis is asked again
}

TEST_CASE("cache redis: an entry with no freshness left is not sent") {
  auto a = instance();
  FakeRedis redis;
  Exchange x(*a, &redis, "/old");
  redis.respond(FakeReply::nil());
  // Stored for its validator (it may be revalidated), but stale at once: nothing for Redis.
  x.upstream(200, {{"Cache-Control", "max-age=0"}, {"ETag", "\"e\""}}, "old");
  CHECK(redis.pending() == 0);
  CHECK(x.redisCount(RedisResult::Stored) == 0);
}

TEST_CASE("cache redis: Vary variants go under their stub; each request finds its own") {
  auto a = instance();
  auto b = instance();
  FakeRedis redis;
  const Fields varying{{"Cache-Control", "max-age=60"}, {"Vary", "Accept-Language"}};
  Exchange fill(*a, &redis, "/v", {{"Accept-Language", "fr"}});
  redis.respond(FakeReply::nil());
  fill.upstream(200, varying, "bonjour");
  REQUIRE(redis.pending() == 2);
  const auto stubSet = redis.oldest();
  redis.respond(FakeReply::status("OK"));
  const auto variantSet = redis.oldest();
  redis.respond(FakeReply::status("OK"));
  CHECK(stubSet[1] == entryKey(redis, "/v"));
  CHECK(variantSet[1].starts_with(stubSet[1] + ":"));
  CHECK(variantSet[4] == "60000");

  // B, for French: the stub, then the variant it points to.
  Exchange french(*b, &redis, "/v", {{"Accept-Language", "fr"}});
  CHECK(redis.oldest() == std::vector<std::string>{"GET", stubSet[1]});
  redis.respond(FakeReply::string(stubSet[2]));
  REQUIRE(redis.pending() == 1);
  CHECK(redis.oldest() == std::vector<std::string>{"GET", variantSet[1]});
  CHECK(french.ctx.resumes == 0);
  redis.respond(FakeReply::string(variantSet[2]));
  CHECK(french.ctx.resumes == 1);
  CHECK(french.ctx.repliedBody == "bonjour");
  CHECK(french.redisCount(RedisResult::Hit) == 1);

  // B, for German: another variant key, not stored: a miss.
  Exchange german(*b, &redis, "/v", {{"Accept-Language", "de"}});
  CHECK(german.first == Status::Stop);  // B's memory has only the French variant
  redis.respond(FakeReply::string(stubSet[2]));
  REQUIRE(redis.pending() == 1);
  CHECK(redis.oldest()[1] != variantSet[1]);
  redis.respond(FakeReply::nil());
  CHECK(german.ctx.resumes == 1);
  CHECK_FALSE(german.ctx.repliedStatus);
  CHECK(german.redisCount(RedisResult::Miss) == 1);
  // Its fill keeps the stub it read (same generation), so the French variant stays reachable.
  german.upstream(200, varying, "guten Tag");
  REQUIRE(redis.pending() == 2);
  CHECK(redis.oldest() == stubSet);
  redis.respond(FakeReply::status("OK"));
  redis.respond(FakeReply::status("OK"));

  // A stub where the variant should be is refused, not followed again.
  Exchange loop(*b, &redis, "/v", {{"Accept-Language", "it"}});
  redis.respond(FakeReply::string(stubSet[2]));
  redis.respond(FakeReply::string(stubSet[2]));
  CHECK(redis.pending() == 0);
  CHECK(loop.ctx.resumes == 1);
  CHECK(loop.redisCount(RedisResult::Error) == 1);
}

TEST_CASE("cache redis: a successful unsafe request unlinks the URL's entry; variants go with it") {
  auto a = instance();
  FakeRedis redis;
  const Fields varying{{"Cache-Control", "max-age=60"}, {"Vary", "Accept-Language"}};
  std::vector<std::string> firstVariant;
  {
    Exchange fill(*a, &redis, "/doc", {{"Accept-Language", "fr"}});
    redis.respond(FakeReply::nil());
    fill.upstream(200, varying, "v1");
    redis.respond(FakeReply::status("OK"));
    firstVariant = redis.oldest();
    redis.respond(FakeReply::status("OK"));
  }
  {
    Exchange post(*a, &redis, "/doc", {}, "POST");
    REQUIRE(post.first == Status::Continue);
    post.ctx.status = 204;
    post.cache->onResponseHeaders(post.ctx);
    REQUIRE(redis.pending() == 1);
    CHECK(redis.oldest() == std::vector<std::string>{"UNLINK", entryKey(redis, "/doc")});
    redis.respond(FakeReply::integer(1));
  }
  // The next fill finds no stub and writes one of a new generation: the old variant's key is
  // not the new one, so it can never be served again, even while it has time left in Redis.
  Exchange refill(*a, &redis, "/doc", {{"Accept-Language", "fr"}});
  redis.respond(FakeReply::nil());
  refill.upstream(200, varying, "v2");
  REQUIRE(redis.pending() == 2);
  redis.respond(FakeReply::status("OK"));
  CHECK(redis.oldest()[1] != firstVariant[1]);
}

TEST_CASE("cache redis: an exchange torn down while its GET is pending ignores the reply") {
  AfterFill shared("/gone");
  auto& [a, b, redis, set] = shared;
  {
    Exchange x(*b, &redis, "/gone");
    REQUIRE(x.first == Status::Stop);
    REQUIRE(redis.pending() == 1);
  }                                          // onDestroy, then the plugin object is freed
  redis.respond(FakeReply::string(set[2]));  // ASan: nothing may touch the freed exchange
  CHECK(redis.answered() == 3);              // the fill's GET and SET, then ours
  // The reply was dropped: B's memory did not get the entry from it.
  Exchange after(*b, &redis, "/gone");
  CHECK(after.first == Status::Stop);
}
