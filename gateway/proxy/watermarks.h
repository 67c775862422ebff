#pragma once
// Backpressure between the two sides of an exchange: while one side's pending output is above the
// high watermark, the other side is not read; reading resumes below the low one.

#include <cstddef>

namespace gw::proxy {

inline constexpr std::size_t kHighWatermark = 256 * 1024;
inline constexpr std::size_t kLowWatermark = 64 * 1024;

}  // namespace gw::proxy
