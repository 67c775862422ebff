#pragma once
// Text forms of durations ("250ms", "5s", "2m", "1h") and sizes ("512B", "64KiB", "10MB", or a
// bare byte count) used throughout the configuration.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/config/model.h"

namespace gw::config {

// A whole number followed by ms, s, m or h. A bare number is rejected: "30" could mean seconds
// or milliseconds, and guessing wrong is a silent outage. On failure `error` says why.
std::optional<Duration> parseDuration(std::string_view text, std::string& error);

// A whole number of bytes, optionally followed by B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB
// (powers of 1024). On failure `error` says why.
std::optional<std::size_t> parseSize(std::string_view text, std::string& error);

}  // namespace gw::config
