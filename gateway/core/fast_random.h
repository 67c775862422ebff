#pragma once
// A fast non-cryptographic generator (xoshiro256**) for ids that must be unique, not secret:
// request ids, trace and span ids. One instance per thread; nothing here locks or makes a
// syscall after seeding.

#include <cstdint>

namespace gw::core {

class FastRandom {
 public:
  // Seeded from getrandom(); falls back to the clock and the object's address without it, so
  // ids stay distinct across workers and restarts.
  FastRandom();
  // Deterministic, for tests.
  explicit FastRandom(uint64_t seed);

  uint64_t next();

 private:
  uint64_t s_[4];
};

}  // namespace gw::core
