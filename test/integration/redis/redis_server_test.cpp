// The test support's real Redis: what the Redis client's and plugins' tests rely on it to do.
#include "test/support/redis_server.h"

#include <doctest/doctest.h>

namespace gw::it {

TEST_CASE("the tests' redis-server answers, forgets everything on restart, and can be paused") {
  RedisServer redis;
  CHECK(redis.call({"PING"}) == "PONG");
  CHECK(redis.call({"SET", "k", "v"}) == "OK");
  CHECK(redis.call({"GET", "k"}) == "v");
  CHECK(redis.call({"INCRBY", "n", "41"}) == "41");
  CHECK(redis.call({"GET", "missing"}) == "(nil)");
  CHECK(redis.call({"NOPE"}).starts_with("ERR: "));
  CHECK(redis.call({"CONFIG", "GET", "save"}) == "save\n");

  redis.kill();
  CHECK(connectRefused(redis.port()));
  redis.restart();
  CHECK(redis.call({"GET", "k"}) == "(nil)");  // no persistence

  redis.pause();
  // A stopped server keeps its socket: connects complete (the kernel's backlog), nothing answers.
  CHECK_FALSE(connectRefused(redis.port()));
  redis.resume();
  CHECK(redis.call({"PING"}) == "PONG");
}

TEST_CASE("the tests' redis-server takes options such as a password") {
  RedisServer redis({"--requirepass", "s3cret"});
  CHECK(redis.call({"GET", "k"}).starts_with("ERR: NOAUTH"));
}

}  // namespace gw::it
