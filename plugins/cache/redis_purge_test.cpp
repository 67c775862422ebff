#include "plugins/cache/redis_purge.h"

#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "plugins/cache/cache_config.h"
#include "plugins/cache/purge_query.h"
#include "plugins/cache/redis_tier.h"
#include "test/support/fake_dispatcher.h"
#include "test/support/fake_redis.h"

namespace gw::plugins::cache {
namespace {

using test::FakeReply;

test::FakeReply scanReply(std::string cursor, std::vector<std::string> keys) {
  std::vector<FakeReply> found;
  for (const std::string& key : keys) found.push_back(FakeReply::string(key));
  return FakeReply::array({FakeReply::string(cursor), FakeReply::array(std::move(found))});
}

struct Worker {
  test::FakeRedis redis;
  test::FakeDispatcher loop;
  Worker() { loop.redisClient = &redis; }
};

TEST_CASE("redis purge: SCAN MATCH in batches, each batch's matches removed by one EVAL") {
  RedisPurges purges;
  Worker worker;
  worker.redis.keys.prefix = "p*:";
  RedisPurgeRunner runner(purges, worker.loop);
  REQUIRE(purges.enqueue({"h.test", "/items/", true}));
  CHECK(worker.redis.pending() == 0);  // nothing on the admin thread: the worker starts it
  worker.loop.runPosted();
  REQUIRE(worker.redis.pending() == 1);
  CHECK(worker.redis.oldest() ==
        std::vector<std::string>{"SCAN", "0", "MATCH", "p\\*:c:{*", "COUNT", "256"});
  worker.redis.respond(scanReply("17", {"p*:c:{a}", "p*:c:{b}:c"}));
  REQUIRE(worker.redis.pending() == 1);
  CHECK(worker.redis.oldest() == std::vector<std::string>{"EVAL", std::string(kPurgeScript), "2",
                                                          "p*:c:{a}", "p*:c:{b}:c", "h.test",
                                                          "/items/", "1"});
  worker.redis.respond(FakeReply::integer(1));
  REQUIRE(worker.redis.pending() == 1);
  CHECK(worker.redis.oldest()[1] == "17");   // on with SCAN's cursor
  worker.redis.respond(scanReply("9", {}));  // an empty batch: straight on
  CHECK(worker.redis.oldest()[1] == "9");
  worker.redis.respond(scanReply("0", {"p*:c:{c}"}));
  CHECK(worker.redis.oldest()[0] == "EVAL");
  worker.redis.respond(FakeReply::integer(0));
  CHECK(worker.redis.pending() == 0);  // cursor 0: done
  CHECK(purges.queued() == 0);
}

TEST_CASE("redis purge: a failure ends that purge and the next one starts") {
  RedisPurges purges;
  Worker worker;
  RedisPurgeRunner runner(purges, worker.loop);
  purges.enqueue({"", "/a", false});
  purges.enqueue({"", "/b", false});
  worker.loop.runPosted();
  worker.redis.fail(redis::Failure::Disconnected);
  REQUIRE(worker.redis.pending() == 1);
  CHECK(worker.redis.oldest()[1] == "0");       // the second purge's first SCAN
  worker.redis.respond(FakeReply::integer(3));  // not a SCAN reply: refused, purge ends
  CHECK(worker.redis.pending() == 0);
  CHECK(purges.queued() == 0);

  // Redis refusing at once (breaker open) ends it too, without a wait.
  worker.redis.refuseWith = redis::Failure::Down;
  purges.enqueue({"", "/c", false});
  worker.loop.runPosted();
  CHECK(worker.redis.pending() == 0);
  CHECK(purges.queued() == 0);
}

TEST_CASE("redis purge: a runner going away hands its purge to another worker") {
  RedisPurges purges;
  Worker first;
  Worker second;
  auto leaving = std::make_unique<RedisPurgeRunner>(purges, first.loop);
  RedisPurgeRunner staying(purges, second.loop);
  purges.enqueue({"", "/x", false});
  CHECK(first.loop.runPosted() == 1);  // the first attached runner is woken
  CHECK(second.loop.runPosted() == 0);
  REQUIRE(first.redis.pending() == 1);
  leaving.reset();                                    // its SCAN is in flight
  first.redis.respond(scanReply("0", {"gw:c:{a}"}));  // dropped: the waiter was cancelled
  CHECK(purges.queued() == 1);
  second.loop.runPosted();
  REQUIRE(second.redis.pending() == 1);
  CHECK(second.redis.oldest()[0] == "SCAN");
}

TEST_CASE("redis purge: the queue is bounded; the admin endpoint says so with 503") {
  std::vector<plugin::ConfigError> errors;
  auto parsed = Factory().parse(YAML::Load("{store: redis}"), errors);
  REQUIRE(parsed);
  const plugin::BoundRoute routes[] = {{"r", {parsed.get()}}};
  // No worker attached: purges wait.
  auto first = purge("path=/a", routes);
  REQUIRE(first);
  CHECK(*first == "{\"purged\":0,\"redis_purges_queued\":1}\n");
  for (std::size_t i = 1; i < RedisPurges::kMaxQueued; ++i) REQUIRE(purge("path=/a", routes));
  auto refused = purge("path=/a", routes);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == kPurgeBusy);

  // The queued ones start when a worker attaches.
  const auto& settings = static_cast<const Settings&>(*parsed);
  Worker worker;
  RedisPurgeRunner runner(settings.shared->redisPurges, worker.loop);
  worker.loop.runPosted();
  CHECK(worker.redis.pending() == 1);
  CHECK(settings.shared->redisPurges.queued() == RedisPurges::kMaxQueued - 1);
}

}  // namespace
}  // namespace gw::plugins::cache
