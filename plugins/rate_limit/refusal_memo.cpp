#include "plugins/rate_limit/refusal_memo.h"

#include <algorithm>

namespace gw::plugins::rate_limit {

void RefusalMemo::remember(const Digest& digest, const Decision& refusal, int64_t nowMs) {
  if (capacity_ == 0) return;
  if (const auto found = index_.find(digest); found != index_.end()) forget(found);
  if (lru_.size() >= capacity_) forget(index_.find(lru_.back().digest));
  lru_.push_front({digest, refusal, nowMs});
  index_.emplace(digest, lru_.begin());
}

std::optional<Decision> RefusalMemo::refusal(const Digest& digest, int64_t nowMs) {
  const auto found = index_.find(digest);
  if (found == index_.end()) return std::nullopt;
  const Entry& entry = *found->second;
  const int64_t aged = std::max<int64_t>(0, nowMs - entry.atMs);
  if (aged >= entry.refusal.retryAfterMs) {
    forget(found);
    return std::nullopt;
  }
  Decision d = entry.refusal;
  d.retryAfterMs -= aged;
  d.resetMs = std::max<int64_t>(0, d.resetMs - aged);
  return d;
}

void RefusalMemo::forget(
    std::unordered_map<Digest, std::list<Entry>::iterator, DigestHash>::iterator it) {
  lru_.erase(it->second);
  index_.erase(it);
}

}  // namespace gw::plugins::rate_limit
