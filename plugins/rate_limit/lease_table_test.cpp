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
  explicit Rig(std::size_t capacity) : table(worker, window, 8, capacity, memo) {
    worker.redisClient = &redis;
  }
  LeaseTable::Result take(uint64_t key, Waiter& w) {
    return table.take(redis, Digest{key, 0}, "k" + std::to_string(key), worker.now, w);
  }
};

}  // namespace

TEST_CASE("lease_table: keys beyond capacity evict an idle key, never a busy one") {
  Rig rig(2);
  Waiter a, b, c;
  CHECK(rig.take(1, a).outcome == LeaseTable::Outcome::Waiting);
  CHECK(rig.take(2, b).outcome == LeaseTable::Outcome::Waiting);
  // Both keys have a refill in flight and a waiter: a third key finds no room.
  const auto full = rig.take(3, c);
  CHECK(full.outcome == LeaseTable::Outcome::Failed);
  CHECK(full.failure == redis::Failure::Overloaded);
  rig.redis.respond(FakeReply::integers({4, 0, 900, 60'000, 0, 60'000}));
  CHECK(a.served == std::vector<bool>{true});
  // Key 1 holds tokens but waits for nothing: it gives way (its tokens are lost).
  CHECK(rig.take(3, c).outcome == LeaseTable::Outcome::Waiting);
  CHECK(rig.table.size() == 2);
  CHECK(rig.table.takeRefillCount() == 3);
  CHECK(rig.table.takeRefillCount() == 0);
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

}  // namespace gw::plugins::rate_limit
