#include "plugins/rate_limit/window_table.h"

#include <endian.h>

#include <algorithm>
#include <cstring>

namespace gw::plugins::rate_limit {
namespace {

int64_t windowStart(int64_t nowMs, int64_t windowMs) { return nowMs - nowMs % windowMs; }

// Moves the slot to the window holding `nowMs` (never backwards: admit() clamps time).
void roll(int64_t nowMs, int64_t windowMs, WindowTable::Slot& slot) {
  const int64_t current = windowStart(nowMs, windowMs);
  if (current == slot.start) return;
  slot.prev = current == slot.start + windowMs ? slot.curr : 0;
  slot.curr = 0;
  slot.start = current;
}

// All in integers scaled by W: estimate * W = prev * (W - elapsed) + curr * W, elapsed in 1..W.
// requests <= 1e9 and W <= 24h keep every product below 2^63.
int64_t usedScaled(const WindowTable::Slot& slot, int64_t w, int64_t elapsed) {
  return slot.prev * (w - elapsed) + slot.curr * w;
}

bool admits(const Limit& limit, const WindowTable::Slot& slot, int64_t elapsed) {
  const int64_t w = limit.windowMs;
  return usedScaled(slot, w, elapsed) + w <= limit.requests * w;
}

// For a refused request: the wait until one would be admitted if nothing else is counted.
int64_t retryAfter(const Limit& limit, const WindowTable::Slot& slot, int64_t elapsed) {
  const int64_t w = limit.windowMs;
  // Earliest elapsed' with prev * (W - elapsed') + (curr + 1) * W <= requests * W: later in this
  // window if curr + 1 fits at all and prev is what is in the way ...
  if (slot.curr + 1 <= limit.requests && slot.prev > 0) {
    const int64_t needed = w - (limit.requests - slot.curr - 1) * w / slot.prev;
    if (needed <= w) return needed - elapsed;
  }
  // ... else in the next window, where this window's count weighs as prev (curr >= 1 here: with
  // curr == 0 only prev can be in the way, handled above).
  const int64_t needed = std::max<int64_t>(1, w - (limit.requests - 1) * w / slot.curr);
  return (w - elapsed) + needed;
}

// What the slot has left after this request was (or was not) counted.
void standing(const Limit& limit, const WindowTable::Slot& slot, int64_t elapsed,
              int64_t& remaining, int64_t& resetMs) {
  const int64_t w = limit.windowMs;
  remaining = std::max<int64_t>(0, (limit.requests * w - usedScaled(slot, w, elapsed)) / w);
  // The estimate is 0 from the last ms of the window after the last non-empty one.
  resetMs = slot.curr > 0 ? 2 * w - elapsed : slot.prev > 0 ? w - elapsed : 0;
}

}  // namespace

WindowTable::WindowTable(std::vector<Limit> limits, std::size_t maxKeys, std::size_t shards)
    : limits_(std::move(limits)) {
  for (const Limit& limit : limits_) idleMs_ = std::max(idleMs_, 2 * limit.windowMs);
  // Each shard holds at least kMinPerShard keys: with a handful per shard, keys that happen to
  // hash together would evict each other long before the table is full.
  shardCount_ =
      std::clamp<std::size_t>(maxKeys / kMinPerShard, 1, std::max<std::size_t>(1, shards));
  shards_ = std::make_unique<Shard[]>(shardCount_);
  for (std::size_t i = 0; i < shardCount_; ++i) {
    shards_[i].capacity = maxKeys / shardCount_ + (i < maxKeys % shardCount_ ? 1 : 0);
  }
}

WindowTable::~WindowTable() = default;

Digest digestOf(const SipKey& sipKey, std::span<const KeyPart> key) {
  SipHasher hasher(sipKey);
  for (const KeyPart& part : key) {
    // Texts are far shorter than 2^56 bytes.
    const uint64_t head = htole64(static_cast<uint64_t>(part.kind) << 56 | part.text.size());
    char headBytes[sizeof head];
    std::memcpy(headBytes, &head, sizeof head);
    hasher.update({headBytes, sizeof headBytes});
    hasher.update(part.text);
  }
  return hasher.finish();
}

void WindowTable::dropBack(Shard& shard) {
  shard.index.erase(shard.lru.back().digest);
  shard.lru.pop_back();
}

void WindowTable::insert(Shard& shard, const Digest& digest, int64_t nowMs) {
  if (shard.lru.size() >= shard.capacity) {
    dropBack(shard);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  Entry& entry = shard.lru.emplace_front();
  entry.digest = digest;
  entry.lastSeen = nowMs;
  entry.slots = std::make_unique<Slot[]>(limits_.size());
  for (std::size_t i = 0; i < limits_.size(); ++i) {
    entry.slots[i].start = windowStart(nowMs, limits_[i].windowMs);
  }
  shard.index.emplace(digest, shard.lru.begin());
}

Decision WindowTable::admit(std::span<const KeyPart> key, int64_t nowMs) {
  const Digest digest = digestOf(sipKey_, key);
  Shard& shard = shards_[digest.hi % shardCount_];
  std::lock_guard lock(shard.mu);

  while (!shard.lru.empty() && shard.lru.back().lastSeen + idleMs_ <= nowMs) dropBack(shard);

  const auto found = shard.index.find(digest);
  if (found == shard.index.end()) {
    insert(shard, digest, nowMs);
  } else {
    shard.lru.splice(shard.lru.begin(), shard.lru, found->second);
  }
  Entry& entry = shard.lru.front();
  nowMs = std::max(nowMs, entry.lastSeen);
  entry.lastSeen = nowMs;

  int64_t elapsed[kMaxLimits];  // per limit: ms of its current window passed, this one included
  bool allowed = true;
  for (std::size_t i = 0; i < limits_.size(); ++i) {
    Slot& slot = entry.slots[i];
    roll(nowMs, limits_[i].windowMs, slot);
    elapsed[i] = nowMs - slot.start + 1;
    allowed = allowed && admits(limits_[i], slot, elapsed[i]);
  }

  Decision d;
  d.allowed = allowed;
  if (allowed) {
    for (std::size_t i = 0; i < limits_.size(); ++i) ++entry.slots[i].curr;
  } else {
    // Binding: the refusing limit that holds the client back longest.
    for (std::size_t i = 0; i < limits_.size(); ++i) {
      if (admits(limits_[i], entry.slots[i], elapsed[i])) continue;
      const int64_t wait = retryAfter(limits_[i], entry.slots[i], elapsed[i]);
      if (wait > d.retryAfterMs) {
        d.retryAfterMs = wait;
        d.limit = i;
      }
    }
  }
  for (std::size_t i = 0; i < limits_.size(); ++i) {
    int64_t remaining = 0;
    int64_t resetMs = 0;
    standing(limits_[i], entry.slots[i], elapsed[i], remaining, resetMs);
    // Admitted: binding is the limit with the fewest left (the first on a tie).
    const bool binding = allowed ? i == 0 || remaining < d.remaining : i == d.limit;
    if (binding) {
      d.limit = i;
      d.remaining = remaining;
      d.resetMs = resetMs;
    }
  }
  return d;
}

std::size_t WindowTable::size() const {
  std::size_t total = 0;
  for (std::size_t i = 0; i < shardCount_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    total += shards_[i].lru.size();
  }
  return total;
}

}  // namespace gw::plugins::rate_limit
