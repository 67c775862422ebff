#include "plugins/rate_limit/window_table.h"

#include <doctest.h>
#include <malloc.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "test/support/sanitizers.h"

namespace gw::plugins::rate_limit {
namespace {

constexpr int64_t kT0 = 1'000'000;  // a multiple of every window below: window starts line up

Decision admitKey(WindowTable& table, std::string_view key, int64_t now) {
  const KeyPart parts[] = {{1, key}};
  return table.admit(parts, now);
}

// How many of `tries` requests at `now` are admitted.
int admitted(WindowTable& table, std::string_view key, int64_t now, int tries) {
  int n = 0;
  for (int i = 0; i < tries; ++i) n += admitKey(table, key, now).allowed ? 1 : 0;
  return n;
}

TEST_CASE("window_table: a fresh key gets exactly the limit, counting down") {
  WindowTable table({{10, 1000}}, 100);
  for (int i = 0; i < 10; ++i) {
    const Decision d = admitKey(table, "k", kT0 + i);
    CHECK(d.allowed);
    CHECK(d.remaining == 9 - i);
    CHECK(d.retryAfterMs == 0);
  }
  const Decision refused = admitKey(table, "k", kT0 + 10);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.remaining == 0);
  CHECK(admitted(table, "k", kT0 + 999, 5) == 0);  // last ms of the window: still full
}

TEST_CASE("window_table: the previous window weighs linearly across the boundary") {
  WindowTable table({{10, 1000}}, 100);
  CHECK(admitted(table, "k", kT0, 10) == 10);
  // First ms of the next window: prev weighs 999/1000, so 10 * 0.999 + 1 > 10.
  const Decision first = admitKey(table, "k", kT0 + 1000);
  CHECK_FALSE(first.allowed);
  CHECK(first.retryAfterMs == 99);  // at elapsed 100 ms: 10 * 0.9 + 1 = 10
  CHECK(first.resetMs == 999);      // prev weighs 0 from the window's last ms
  CHECK(admitted(table, "k", kT0 + 1098, 3) == 0);
  CHECK(admitted(table, "k", kT0 + 1099, 3) == 1);
  // Halfway: 10 * 0.5 + curr(1) leaves room for 4 more.
  CHECK(admitted(table, "k", kT0 + 1499, 10) == 4);
  // Last ms: prev weighs nothing, the window's own count (5) is all that is left.
  CHECK(admitted(table, "k", kT0 + 1999, 10) == 5);
}

TEST_CASE("window_table: a partly used previous window leaves the rest") {
  WindowTable table({{10, 1000}}, 100);
  CHECK(admitted(table, "k", kT0 + 100, 4) == 4);
  CHECK(admitted(table, "k", kT0 + 1499, 20) == 8);  // 4 * 0.5 + 8 = 10
}

TEST_CASE("window_table: steady overload admits exactly the limit per aligned window") {
  WindowTable table({{10, 1000}}, 100);
  for (int window = 0; window < 5; ++window) {
    int inWindow = 0;
    for (int ms = 0; ms < 1000; ++ms) inWindow += admitted(table, "k", kT0 + window * 1000 + ms, 1);
    CHECK(inWindow == 10);
  }
}

TEST_CASE("window_table: the worst case is 2 x limit - 1 in a sliding window") {
  WindowTable table({{10, 1000}}, 100);
  CHECK(admitted(table, "k", kT0 + 999, 10) == 10);  // a burst in the last ms of a window
  int next = 0;
  for (int ms = 0; ms < 998; ++ms) next += admitted(table, "k", kT0 + 1000 + ms, 1);
  CHECK(next == 9);  // 19 admitted within the 1000 ms (kT0 + 997, kT0 + 1997]
}

TEST_CASE("window_table: Retry-After and reset when the count itself is in the way") {
  WindowTable table({{1, 1000}}, 100);
  const Decision first = admitKey(table, "k", kT0);
  CHECK(first.allowed);
  CHECK(first.resetMs == 1999);  // the estimate is 0 from the last ms of the next window
  const Decision refused = admitKey(table, "k", kT0 + 500);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retryAfterMs == 1499);
  CHECK_FALSE(admitKey(table, "k", kT0 + 500 + 1498).allowed);
  CHECK(admitKey(table, "k", kT0 + 500 + 1499).allowed);
}

TEST_CASE("window_table: reset and Retry-After when only the previous window weighs") {
  WindowTable table({{4, 1000}}, 100);
  for (const char* key : {"a", "b", "c"}) CHECK(admitted(table, key, kT0 + 10, 4) == 4);
  // At ms 200 of the next window nothing is counted in it yet; prev weighs 4 * 799 / 1000.
  const Decision refused = admitKey(table, "a", kT0 + 1200);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.remaining == 0);
  CHECK(refused.resetMs == 799);  // prev weighs 0 from the window's last ms
  // 4 * (1000 - e) / 1000 + 1 <= 4 from e = 250, i.e. ms 249 of the window.
  CHECK(refused.retryAfterMs == 49);
  CHECK_FALSE(admitKey(table, "a", kT0 + 1200 + 48).allowed);
  CHECK(admitKey(table, "a", kT0 + 1200 + 49).allowed);
  // When resetMs has passed the quota is whole: a request then leaves 3 of 4, one ms earlier 2.
  CHECK(admitKey(table, "b", kT0 + 1200 + 798).remaining == 2);
  CHECK(admitKey(table, "c", kT0 + 1200 + 799).remaining == 3);
}

TEST_CASE("window_table: after two idle windows the quota is whole again") {
  WindowTable table({{3, 1000}}, 100);
  CHECK(admitted(table, "k", kT0 + 999, 3) == 3);
  CHECK(admitted(table, "k", kT0 + 2000, 5) == 3);
}

TEST_CASE("window_table: a worker whose cached clock lags does not reset the counters") {
  WindowTable table({{3, 1000}}, 100);
  CHECK(admitted(table, "k", kT0 + 1000, 3) == 3);
  CHECK(admitted(table, "k", kT0 + 999, 3) == 0);  // an older 'now' from another worker
}

TEST_CASE("window_table: several limits; refused requests count toward none") {
  WindowTable table({{3, 1000}, {5, 10000}}, 100);
  CHECK(admitted(table, "k", kT0, 3) == 3);
  const Decision burst = admitKey(table, "k", kT0 + 1);
  CHECK_FALSE(burst.allowed);
  CHECK(burst.limit == 0);
  CHECK(admitted(table, "k", kT0 + 2, 50) == 0);  // 50 refusals, none counted by the 10 s limit
  const Decision d = admitKey(table, "k", kT0 + 2000);
  CHECK(d.allowed);
  CHECK(d.limit == 1);  // 1 left of 5/10s, 2 left of 3/1s
  CHECK(d.remaining == 1);
  CHECK(admitted(table, "k", kT0 + 2001, 5) == 1);
  const Decision slow = admitKey(table, "k", kT0 + 2002);
  CHECK_FALSE(slow.allowed);
  CHECK(slow.limit == 1);
  CHECK(slow.remaining == 0);
  // The 10 s limit holds the client back until its window rolls and the weight drops.
  CHECK(slow.retryAfterMs >= 10000 - 2002);
}

TEST_CASE("window_table: keys are told apart by kind and by the split of their parts") {
  WindowTable table({{1, 1000}}, 100);
  const KeyPart ip[] = {{1, "192.0.2.1"}};
  const KeyPart header[] = {{2, "192.0.2.1"}};
  const KeyPart split1[] = {{2, "ab"}, {2, "c"}};
  const KeyPart split2[] = {{2, "a"}, {2, "bc"}};
  CHECK(table.admit(ip, kT0).allowed);
  CHECK(table.admit(header, kT0).allowed);
  CHECK(table.admit(split1, kT0).allowed);
  CHECK(table.admit(split2, kT0).allowed);
  CHECK_FALSE(table.admit(ip, kT0).allowed);
  CHECK_FALSE(table.admit(split2, kT0).allowed);
  CHECK(table.size() == 4);
}

TEST_CASE("window_table: a full table evicts its least recently used key") {
  WindowTable table({{1, 60000}}, 2, 1);
  CHECK(admitKey(table, "a", kT0).allowed);
  CHECK(admitKey(table, "b", kT0 + 1).allowed);
  CHECK_FALSE(admitKey(table, "a", kT0 + 2).allowed);  // a is now more recent than b
  CHECK(admitKey(table, "c", kT0 + 3).allowed);        // evicts b
  CHECK(table.size() == 2);
  CHECK(table.evictions() == 1);
  CHECK_FALSE(admitKey(table, "a", kT0 + 4).allowed);  // a kept its count
  CHECK(admitKey(table, "b", kT0 + 5).allowed);        // b starts afresh (evicts c)
  CHECK(table.evictions() == 2);
}

TEST_CASE("window_table: max_keys caps the table across shards") {
  WindowTable table({{1, 60000}}, 64 * 64 * 2);
  for (int i = 0; i < 20000; ++i) admitKey(table, "key-" + std::to_string(i), kT0);
  CHECK(table.size() == 64 * 64 * 2);  // every shard full: the caps add up to max_keys
  CHECK(table.evictions() == 20000 - 64 * 64 * 2);
}

// glibc's allocator statistics; AddressSanitizer's allocator does not keep them.
constexpr bool kNoHeapStatistics = test::kAddressSanitizer;

// Heap bytes the table grows by per key, for 20,000 distinct keys of `keyBytes` bytes each.
std::size_t heapPerKey(std::size_t limits, std::size_t keyBytes) {
  constexpr int kKeys = 20000;
  WindowTable table(std::vector<Limit>(limits, {1, 60000}), kKeys);
  std::string key(keyBytes, 'k');
  const std::size_t before = mallinfo2().uordblks;
  for (int i = 0; i < kKeys; ++i) {
    const std::string id = std::to_string(i);
    key.replace(0, id.size(), id);
    admitKey(table, key, kT0);
  }
  return (mallinfo2().uordblks - before) / kKeys;
}

TEST_CASE("window_table: memory per key does not depend on the key's length" *
          doctest::skip(kNoHeapStatistics)) {
  const std::size_t small = heapPerKey(1, 8);
  MESSAGE("heap per key: " << small << " bytes with 1 limit, " << heapPerKey(2, 8) << " with 2, "
                           << heapPerKey(16, 8) << " with 16");
  CHECK(small <= 192);
  CHECK(heapPerKey(1, 30 * 1024) <= small + 16);  // allocator noise, not 30 KB
  CHECK(heapPerKey(16, 8) <= small + 15 * 32);
}

TEST_CASE("window_table: idle keys are dropped lazily after two windows of the longest limit") {
  WindowTable table({{5, 1000}, {50, 3000}}, 10, 1);
  CHECK(admitKey(table, "a", kT0).allowed);
  CHECK(admitKey(table, "b", kT0 + 5000).allowed);
  CHECK(table.size() == 2);  // 5 s idle < 2 x 3 s
  CHECK(admitKey(table, "c", kT0 + 6000).allowed);
  CHECK(table.size() == 2);  // a went: idle for 6 s
  CHECK(table.evictions() == 0);
}

TEST_CASE("window_table: many threads on one key admit exactly the limit") {
  constexpr int kLimit = 1000;
  constexpr int kThreads = 8;
  constexpr int kTries = 5000;
  WindowTable table({{kLimit, 60000}}, 1000);
  std::atomic<int> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int mine = 0;
      for (int i = 0; i < kTries; ++i) mine += admitKey(table, "shared", kT0 + t).allowed ? 1 : 0;
      total += mine;
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(total == kLimit);
}

}  // namespace
}  // namespace gw::plugins::rate_limit
