#include "plugins/rate_limit/lease_table.h"

#include <doctest.h>

#include <functional>
#include <vector>

#include "test/support/fake_dispatcher.h"
#include "test/support/fake_redis.h"

namespace gw::plugins::rate_limit {
namespace {

using test::FakeReply;

struct Waiter final : LeaseWaiter {
  std::vector<bool> served;  // admitted or not, per onLease
  std::function<void()> also;
  void onLease(const Decision* decision, redis::Failure) override {
    served.push_back(decision && decision->allowed);
    if (also) also();
  }
};

struct Rig {
  test::FakeRedis redis;
  test::FakeDispatcher worker;
  RedisWindow window{std::vector<Limit>{{1000, 60'000}}, "t"};
  RefusalMemo memo{16};
  LeaseTable table;
  explicit Rig(std::size_t capacity, Grants grants = Grants::Lease)
      : table(worker, window, grants, 8, 64, capacity, memo) {
    worker.redisClient = &redis;
  }
  LeaseTable::Result take(uint64_t key, Waiter& w) {
    return table.take(redis, Digest{key, 0}, worker.now, w);
  }
};

}  // namespace

TEST_CASE("lease_table: keys beyond capacity evict an idle key, never a busy one") {
  Rig rig(2);
  Waiter a, b, c, d;
  CHECK(rig.take(1, a).outcome == LeaseTable::Outcome::Waiting);
  CHECK(rig.take(2, b).outcome == LeaseTable::Outcome::Waiting);
  // Both keys have a call in flight: a third key goes over the capacity rather than failing
  // (busy keys are bounded by the calls in flight, the Redis connection's max_pending).
  CHECK(rig.take(3, c).outcome == LeaseTable::Outcome::Waiting);
  CHECK(rig.table.size() == 3);
  rig.redis.respond(FakeReply::integers({4, 0, 900, 60'000, 0, 60'000}));
  CHECK(a.served == std::vector<bool>{true});
  // Key 1 holds tokens but waits for nothing: it gives way (its tokens are lost).
  CHECK(rig.take(4, d).outcome == LeaseTable::Outcome::Waiting);
  CHECK(rig.table.size() == 3);
  CHECK(rig.table.takeCallCount() == 4);
  CHECK(rig.table.takeCallCount() == 0);
  Waiter again;
  CHECK(rig.take(1, again).outcome == LeaseTable::Outcome::Waiting);  // asks afresh
}

TEST_CASE("lease_table: a waiter leaving during another's hand-out is skipped") {
  Rig rig(4);
  Waiter a, b, c;
  rig.take(1, a);
  rig.take(1, b);
  rig.take(1, c);
  a.also = [&] { b.leave(); };  // b's exchange ends while a resumes
  rig.redis.respond(FakeReply::integers({8, 0, 900, 60'000, 0, 60'000}));
  CHECK(a.served == std::vector<bool>{true});
  CHECK(b.served.empty());
  CHECK(c.served == std::vector<bool>{true});
  CHECK_FALSE(b.waitingForLease());
}

TEST_CASE("lease_table: a request taking a token inside a hand-out leaves the waiters' order") {
  Rig rig(4);
  Waiter a, b, late;
  rig.take(1, a);
  rig.take(1, b);
  // a's resumed exchange is followed at once by another request of the key.
  a.also = [&] { CHECK(rig.take(1, late).outcome == LeaseTable::Outcome::Admitted); };
  rig.redis.respond(FakeReply::integers({2, 0, 900, 60'000, 0, 60'000}));
  CHECK(a.served == std::vector<bool>{true});
  CHECK(b.served.empty());  // the late request took the second token; b waits for a refill
  CHECK(b.waitingForLease());
  REQUIRE(rig.redis.pending() == 1);
  rig.redis.respond(FakeReply::integers({2, 0, 898, 60'000, 0, 60'000}));
  CHECK(b.served == std::vector<bool>{true});
}

TEST_CASE("lease_table: a key held across a change of key prefix is asked for by its new name") {
  Rig rig(4, Grants::Exact);
  Waiter a, b;
  CHECK(rig.take(1, a).outcome == LeaseTable::Outcome::Waiting);
  rig.worker.advance(0);  // the turn's end sends the call
  REQUIRE(rig.redis.pending() == 1);
  CHECK(rig.redis.oldest()[3].starts_with("gw:rl:{t:"));
  rig.redis.respond(FakeReply::integers({1, 0, 998, 60'000, 0, 60'000}));
  CHECK(a.served == std::vector<bool>{true});
  // A reload kept the connection and changed only key_prefix (redis::Connection::renameKeys).
  rig.redis.keys.prefix = "other:";
  CHECK(rig.take(1, b).outcome == LeaseTable::Outcome::Waiting);
  rig.worker.advance(0);
  REQUIRE(rig.redis.pending() == 1);
  CHECK(rig.redis.oldest()[3].starts_with("other:rl:{t:"));
  CHECK(rig.table.size() == 1);
}

}  // namespace gw::plugins::rate_limit
