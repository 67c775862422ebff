#pragma once
// The counters behind one rate_limit plugin instance, shared by every worker of the process, so
// N workers admit one limit, not N times it. All of a key's limits live in one entry and are
// checked and counted under one lock, so "admitted only if every limit admits" is atomic.
//
// Sliding-window counter: time is cut into fixed windows of W ms aligned on the clock; a key keeps
// the count of its previous and current window and estimates the last W ms as
//   estimate = prev * (1 - elapsed / W) + curr
// where elapsed counts the current millisecond too (time is in whole ms: at ms e of the window,
// e + 1 ms of it have passed, so the last ms of a window gives prev no weight). A request is
// admitted when estimate + 1 <= requests.
//
// Error bound. The estimate assumes the previous window's requests were spread evenly over it.
// - Never more than `requests` are admitted within one aligned window (estimate >= curr).
// - In an arbitrary interval of W ms at most 2 * requests - 1 can be admitted: a burst of
//   `requests` in the last ms of window k-1 is weighted down linearly during window k although
//   it is all still inside the true sliding window, so window k admits up to requests * elapsed/W
//   more (the fixed-window limiter's worst case, 2 * requests, is the same order; the counter wins
//   on typical traffic, not in the adversarial case).
// - Conversely a burst at the very start of window k-1 keeps weighing on window k although it has
//   left the true sliding window: a request can be refused while the true count of the last W ms
//   is 0; over window k the key still gets `requests` in total.
// - Under steady overload exactly `requests` are admitted per aligned window.
// Cloudflare measured this estimator on 400 million requests: 0.003% wrongly allowed or limited,
// average gap between estimated and real rate 6% ("How we built rate limiting capable of scaling
// to millions of domains", 2017).
//
// Memory is bounded in count and in bytes. An entry holds a 128-bit keyed digest of the key
// (key_digest.h), never the key itself, so a key of 30 KB costs what one of 3 bytes does: about
// 160 bytes with one limit, 24 more per further limit (measured by window_table_test). At most
// max_keys entries, split evenly over up to 64 shards of at least 64 entries each. A full shard
// evicts its least recently used entry (recency = last request, admitted or not), which restarts
// that key's quota. Entries idle for 2 x the longest window are dropped lazily (on the shard's
// next request); that loses nothing: after 2 windows both counts weigh 0.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "plugins/rate_limit/key_digest.h"

namespace gw::plugins::rate_limit {

struct Limit {
  int64_t requests = 0;  // >= 1
  int64_t windowMs = 0;  // >= 1
};

// One piece of a key. `kind` separates pieces that could hold the same text (an API key whose
// value is an IP address must not share the counter of that IP).
struct KeyPart {
  uint8_t kind = 0;
  std::string_view text;
};

// The digest of a whole key under `sipKey`: each part as one word of kind and length, then its
// text, so ("ab","c") and ("a","bc") hash apart.
Digest digestOf(const SipKey& sipKey, std::span<const KeyPart> key);

struct Decision {
  bool allowed = false;
  std::size_t limit = 0;     // the binding limit: the refusing one, else the one with least left
  int64_t remaining = 0;     // requests the binding limit would still admit now
  int64_t resetMs = 0;       // until the binding limit's quota is whole again, if nothing comes
  int64_t retryAfterMs = 0;  // refused: until a request would be admitted; 0 when allowed
};

class WindowTable {
 public:
  static constexpr std::size_t kDefaultShards = 64;
  static constexpr std::size_t kMaxLimits = 16;
  static constexpr std::size_t kMinPerShard = 64;

  // One key's counters for one limit.
  struct Slot {
    int64_t start = 0;  // first ms of the current window
    int64_t prev = 0;
    int64_t curr = 0;
  };

  // 1 to kMaxLimits limits, `maxKeys` >= 1; fewer shards when maxKeys is small
  // (see kMinPerShard).
  WindowTable(std::vector<Limit> limits, std::size_t maxKeys, std::size_t shards = kDefaultShards);
  ~WindowTable();
  WindowTable(const WindowTable&) = delete;
  WindowTable& operator=(const WindowTable&) = delete;

  // Thread-safe. Counts the request toward every limit if all admit it, toward none otherwise.
  // Allocates only when the key is new. `nowMs` from a monotonic clock; a caller whose clock
  // lags the key's last request is treated as arriving then (workers cache time per loop turn).
  Decision admit(std::span<const KeyPart> key, int64_t nowMs);

  std::size_t size() const;
  // Entries dropped to make room (idle drops are not counted: they lose nothing).
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  std::span<const Limit> limits() const { return limits_; }

 private:
  struct Entry {
    Digest digest;
    int64_t lastSeen = 0;
    std::unique_ptr<Slot[]> slots;  // one per limit
  };
  // The digest's low word is the bucket hash (DigestHash), its high word picks the shard.
  struct alignas(64) Shard {
    std::mutex mu;
    std::list<Entry> lru;  // most recent first
    std::unordered_map<Digest, std::list<Entry>::iterator, DigestHash> index;
    std::size_t capacity = 0;
  };

  void insert(Shard& shard, const Digest& digest, int64_t nowMs);
  void dropBack(Shard& shard);

  std::vector<Limit> limits_;
  SipKey sipKey_ = SipKey::random();
  int64_t idleMs_ = 0;
  std::unique_ptr<Shard[]> shards_;
  std::size_t shardCount_ = 0;
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace gw::plugins::rate_limit
