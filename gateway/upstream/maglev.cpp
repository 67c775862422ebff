#include "gateway/upstream/maglev.h"

#include <algorithm>
#include <tuple>

namespace gw::upstream {

namespace {

uint64_t splitmix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr uint32_t kEmpty = UINT32_MAX;

}  // namespace

uint64_t balanceHash(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return splitmix(hash);
}

uint64_t rehash(uint64_t hash) { return splitmix(hash + 0x9e3779b97f4a7c15ULL); }

MaglevTable::MaglevTable(const std::vector<std::string>& names,
                         const std::vector<uint32_t>& weights, uint32_t size)
    : table_(size, kEmpty) {
  struct Entry {
    uint64_t offset;
    uint64_t skip;
    uint64_t next = 0;
    uint64_t target = 0;  // the weight this entry has earned a fill for
  };
  std::vector<Entry> entries;
  entries.reserve(names.size());
  for (const std::string& name : names) {
    const uint64_t hash = balanceHash(name);
    entries.push_back({hash % size, rehash(hash) % (size - 1) + 1});
  }
  // Filled in the order of the names, not of the list: reordering the backends in the YAML
  // (or another instance listing them differently) moves no key.
  std::vector<std::size_t> order(names.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(names[a], a) < std::tie(names[b], b);
  });
  const uint32_t maxWeight = *std::max_element(weights.begin(), weights.end());
  // Each round every backend of the highest weight fills one entry, and a backend of a third of
  // that weight one round in three (Envoy's weighted Maglev), each at the next free slot of its
  // own permutation (offset + skip x next).
  std::size_t filled = 0;
  for (uint64_t round = 1; filled < size; ++round) {
    for (std::size_t k = 0; k < order.size() && filled < size; ++k) {
      const std::size_t i = order[k];
      Entry& entry = entries[i];
      if (round * weights[i] < entry.target) continue;
      entry.target += maxWeight;
      std::size_t slot;
      do {
        slot = static_cast<std::size_t>((entry.offset + entry.skip * entry.next++) % size);
      } while (table_[slot] != kEmpty);
      table_[slot] = static_cast<uint32_t>(i);
      ++filled;
    }
  }
}

}  // namespace gw::upstream
