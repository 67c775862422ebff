#pragma once
// Two clocks, for two jobs. Timestamps (the access log's time, a span's start) come from the
// event loop's cached wall clock: one read per loop turn, millisecond-honest. Durations come from
// here: CLOCK_MONOTONIC read each time (a vDSO call, ~20 ns), so a sub-millisecond exchange
// measures as what it took, not 0, and a wall-clock step cannot make one negative.

#include <time.h>

#include <cstdint>

namespace gw::core {

inline int64_t monotonicUs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t(now.tv_sec) * 1'000'000 + now.tv_nsec / 1000;
}

}  // namespace gw::core
