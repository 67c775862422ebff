#pragma once
// A worker's memory of recent Redis refusals (store: redis|hybrid): while a refused key's retry
// time has not come, its next requests are refused here without asking Redis, so a flood from a
// limited client costs Redis nothing. It never admits more than Redis would: without new counts
// the estimate only falls, and counts from other instances only push admission later. It can
// refuse a little longer than Redis would when the estimate falls faster than the refusal said
// (never past the Retry-After the client was already given).
//
// Bounded: at most `capacity` keys, least recently refused dropped first (dropping only means
// the next request asks Redis).

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>

#include "plugins/rate_limit/window_table.h"

namespace gw::plugins::rate_limit {

class RefusalMemo {
 public:
  explicit RefusalMemo(std::size_t capacity) : capacity_(capacity) {}

  // Remembers a refusal (`refusal.allowed` false) decided at `nowMs`.
  void remember(const Digest& digest, const Decision& refusal, int64_t nowMs);
  // The remembered refusal aged to `nowMs`, while its retry time has not come; forgets it after.
  std::optional<Decision> refusal(const Digest& digest, int64_t nowMs);
  std::size_t size() const { return index_.size(); }

 private:
  struct Entry {
    Digest digest;
    Decision refusal;
    int64_t atMs = 0;
  };
  void forget(
      std::unordered_map<Digest, std::list<Entry>::iterator, SaltedDigestHash>::iterator it);

  std::size_t capacity_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<Digest, std::list<Entry>::iterator, SaltedDigestHash> index_;
};

}  // namespace gw::plugins::rate_limit
