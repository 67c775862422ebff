#include "gateway/config/units.h"

#include <charconv>
#include <cstdint>
#include <limits>

namespace gw::config {
namespace {

struct Unit {
  std::string_view suffix;
  uint64_t factor;
};

constexpr Unit kDurationUnits[] = {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};

constexpr Unit kSizeUnits[] = {
    {"", 1},
    {"B", 1},
    {"KB", 1000},
    {"MB", 1000 * 1000},
    {"GB", 1000 * 1000 * 1000},
    {"KiB", uint64_t{1} << 10},
    {"MiB", uint64_t{1} << 20},
    {"GiB", uint64_t{1} << 30},
};

// Splits "<digits><unit>" and scales the number by the unit's factor, refusing anything that does
// not fit in `max`. `kind` and `unitList` only shape the error messages.
template <std::size_t N>
std::optional<uint64_t> parseScaled(std::string_view text, const Unit (&units)[N], uint64_t max,
                                    std::string_view kind, std::string_view unitList,
                                    std::string& error) {
  std::string subject(kind);  // "duration '5x'": what every message below is about
  subject.append(" '").append(text).append("'");
  const auto invalid = [&](std::string_view problem) {
    error.assign("invalid ").append(subject).append(": ").append(problem);
    return std::nullopt;
  };
  uint64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (end == text.data()) {
    return invalid("expected a whole number followed by " + std::string(unitList));
  }
  const std::string_view suffix(end, text.data() + text.size() - end);
  if (suffix.starts_with('.')) {
    return invalid("must be a whole number; use a smaller unit instead of a fraction");
  }
  const Unit* unit = nullptr;
  for (const Unit& candidate : units) {
    if (candidate.suffix == suffix) unit = &candidate;
  }
  if (unit == nullptr) return invalid("unit must be " + std::string(unitList));
  if (ec == std::errc::result_out_of_range || number > max / unit->factor) {
    error = subject + " is too large";
    return std::nullopt;
  }
  return number * unit->factor;
}

}  // namespace

std::optional<Duration> parseDuration(std::string_view text, std::string& error) {
  constexpr std::string_view kUnits = "ms, s, m or h";
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos) {
    error = "duration '" + std::string(text) + "' needs a unit (" + std::string(kUnits) +
            "), e.g. '" + std::string(text) + "s'";
    return std::nullopt;
  }
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<Duration::rep>::max());
  const auto millis = parseScaled(text, kDurationUnits, kMax, "duration", kUnits, error);
  if (!millis) return std::nullopt;
  return Duration(static_cast<Duration::rep>(*millis));
}

std::optional<std::size_t> parseSize(std::string_view text, std::string& error) {
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<std::size_t>::max());
  const auto bytes =
      parseScaled(text, kSizeUnits, kMax, "size", "B, KB, MB, GB, KiB, MiB or GiB", error);
  if (!bytes) return std::nullopt;
  return static_cast<std::size_t>(*bytes);
}

}  // namespace gw::config
