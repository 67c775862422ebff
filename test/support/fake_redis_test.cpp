// The fake's contract, which plugin tests rely on: replies in order, cancelled waiters skipped.
#include "test/support/fake_redis.h"

#include <doctest/doctest.h>

namespace gw::test {

namespace {
struct Recorder : redis::Waiter {
  std::vector<long long> integers;
  std::vector<redis::Failure> failures;
  void onReply(const redisReply* reply, redis::Failure failure) override {
    failures.push_back(failure);
    if (reply && reply->type == REDIS_REPLY_ARRAY)
      for (std::size_t i = 0; i < reply->elements; ++i)
        integers.push_back(reply->element[i]->integer);
  }
};
}  // namespace

TEST_CASE("the fake Redis answers in order, skips cancelled waiters, and refuses when told") {
  FakeRedis redis;
  redis::Script script("s", "return 1");
  Recorder first, second;
  const std::string_view keys[] = {"k"};
  const std::string_view args[] = {"1", "2"};
  CHECK(redis.eval(script, keys, args, first) == redis::Failure::None);
  CHECK(redis.eval(script, keys, args, second) == redis::Failure::None);
  CHECK(redis.oldest() == std::vector<std::string>{"EVALSHA", script.sha1(), "1", "k", "1", "2"});
  CHECK(first.waiting());

  redis.respond(FakeReply::integers({1, 0, 9}));
  CHECK(first.integers == std::vector<long long>{1, 0, 9});
  CHECK_FALSE(first.waiting());

  second.cancel();
  redis.fail(redis::Failure::Timeout);
  CHECK(second.failures.empty());
  CHECK(redis.answered() == 2);

  redis.refuseWith = redis::Failure::Down;
  CHECK(redis.eval(script, keys, args, first) == redis::Failure::Down);
  CHECK(redis.pending() == 0);

  redis.refuseWith = redis::Failure::None;
  CHECK(redis.eval(script, keys, args, first) == redis::Failure::None);
  redis.respond(FakeReply::error("NOSCRIPT No matching script"));
  CHECK(first.failures.back() == redis::Failure::ServerError);
}

}  // namespace gw::test
