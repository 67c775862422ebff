#pragma once
// Consistent hashing for `load_balancing: {policy: hash}`: Maglev (Eisenbud et al., NSDI 2016),
// as Envoy's MAGLEV. Chosen over a ring with virtual nodes because a lookup is one array index
// (no binary search), the table spreads keys within a fraction of a percent of the weights with
// no tuning of a virtual-node count, and a backend's keys are the table entries it owns, so
// taking one backend out moves only its keys. The table is built once per cluster (config load
// or reload); a backend that is out is skipped by the caller probing again (Cluster::pick), so
// health changes never rebuild it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gw::upstream {

// A stable 64-bit hash (FNV-1a, then the splitmix64 finaliser to spread the bits): the same key
// picks the same backend in every worker and every gatewayd instance.
uint64_t balanceHash(std::string_view bytes);
// The next hash in a key's own sequence, for probing past a backend that is out.
uint64_t rehash(uint64_t hash);

class MaglevTable {
 public:
  // A prime (so every backend's permutation covers the table) well above 100 x the backends an
  // upstream plausibly has, as Envoy's default.
  static constexpr uint32_t kDefaultSize = 65537;

  // `names` identify the backends (their "host:port"), so a backend keeps its entries whatever
  // its position in the list; `weights` give each a share of the entries proportional to it.
  MaglevTable(const std::vector<std::string>& names, const std::vector<uint32_t>& weights,
              uint32_t size = kDefaultSize);

  // The index of the backend that owns `hash`.
  uint32_t backendFor(uint64_t hash) const {
    return table_[static_cast<std::size_t>(hash % table_.size())];
  }
  std::size_t size() const { return table_.size(); }

 private:
  std::vector<uint32_t> table_;
};

}  // namespace gw::upstream
