#pragma once
// HTTP-date (RFC 9110 §5.6.7): the three forms a recipient must accept, to unix seconds, and the
// IMF-fixdate form every sender must generate.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gw::plugins::cache {

// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37
// GMT") or asctime ("Sun Nov  6 08:49:37 1994"); surrounding whitespace allowed. nullopt for
// anything else, including out-of-range fields ("Feb 30", hour 24). A two-digit RFC 850 year
// is placed within 50 years of `nowSec` as §5.6.7 requires.
std::optional<int64_t> parseHttpDate(std::string_view text, int64_t nowSec);

// IMF-fixdate for a unix time (years 1970..9999).
std::string formatHttpDate(int64_t unixSec);

}  // namespace gw::plugins::cache
