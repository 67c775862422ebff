#include "gateway/core/clock.h"

#include <doctest.h>

#include <algorithm>
#include <cstdint>

namespace gw::core {

TEST_CASE("monotonicUs never goes back and resolves well under a millisecond") {
  int64_t previous = monotonicUs();
  int64_t smallestStep = INT64_MAX;
  // Busy reads until the clock has moved a few times: the steps seen are its resolution.
  for (int moves = 0, reads = 0; moves < 20 && reads < 10'000'000; ++reads) {
    const int64_t now = monotonicUs();
    REQUIRE(now >= previous);
    if (now > previous) {
      smallestStep = std::min(smallestStep, now - previous);
      ++moves;
    }
    previous = now;
  }
  CHECK(smallestStep < 100);
}

}  // namespace gw::core
