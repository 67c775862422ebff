#include "gateway/core/fast_random.h"

#include <sys/random.h>

#include <chrono>
#include <cstddef>

namespace gw::core {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

FastRandom::FastRandom() {
  uint64_t seed[4] = {};
  std::size_t got = 0;
  auto* bytes = reinterpret_cast<unsigned char*>(seed);
  while (got < sizeof(seed)) {
    const ssize_t n = getrandom(bytes + got, sizeof(seed) - got, 0);
    if (n <= 0) break;  // EINTR or no getrandom(): fall back below
    got += static_cast<std::size_t>(n);
  }
  if (got < sizeof(seed)) {
    uint64_t state = static_cast<uint64_t>(
                         std::chrono::high_resolution_clock::now().time_since_epoch().count()) ^
                     reinterpret_cast<uintptr_t>(this);
    for (auto& word : seed) word ^= splitmix64(state);
  }
  for (int i = 0; i < 4; ++i) s_[i] = seed[i];
  if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // the one state xoshiro cannot leave
}

FastRandom::FastRandom(uint64_t seed) {
  for (auto& word : s_) word = splitmix64(seed);
}

uint64_t FastRandom::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

}  // namespace gw::core
