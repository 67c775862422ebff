#include "gateway/config/units.h"

#include <doctest.h>

#include <limits>

namespace gw::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST_CASE("parseDuration accepts every unit") {
  std::string error;
  CHECK(parseDuration("250ms", error) == milliseconds(250));
  CHECK(parseDuration("5s", error) == seconds(5));
  CHECK(parseDuration("2m", error) == minutes(2));
  CHECK(parseDuration("1h", error) == hours(1));
  CHECK(parseDuration("0s", error) == milliseconds(0));
  CHECK(error.empty());
}

TEST_CASE("parseDuration rejects a bare number as ambiguous") {
  std::string error;
  CHECK_FALSE(parseDuration("30", error));
  CHECK(error == "duration '30' needs a unit (ms, s, m or h), e.g. '30s'");
}

TEST_CASE("parseDuration rejects garbage") {
  for (const char* text :
       {"", "s", "5", "5x", "5 s", " 5s", "-5s", "+5s", "5S", "5sec", "1.5s", "5s5s", "0x10s"}) {
    std::string error;
    CAPTURE(text);
    CHECK_FALSE(parseDuration(text, error));
    CHECK_FALSE(error.empty());
  }
  std::string error;
  parseDuration("1.5s", error);
  CHECK(error.find("whole number") != std::string::npos);
  parseDuration("5x", error);
  CHECK(error == "invalid duration '5x': unit must be ms, s, m or h");
}

TEST_CASE("parseDuration rejects overflow") {
  std::string error;
  CHECK_FALSE(parseDuration("99999999999999999999ms", error));
  CHECK(error == "duration '99999999999999999999ms' is too large");
  CHECK_FALSE(parseDuration("9223372036854775807h", error));
  CHECK(parseDuration("9223372036854775807ms", error) ==
        milliseconds(std::numeric_limits<milliseconds::rep>::max()));
}

TEST_CASE("parseSize accepts decimal and binary units and bare bytes") {
  std::string error;
  CHECK(parseSize("512", error) == 512u);
  CHECK(parseSize("512B", error) == 512u);
  CHECK(parseSize("10KB", error) == 10'000u);
  CHECK(parseSize("10MB", error) == 10'000'000u);
  CHECK(parseSize("2GB", error) == 2'000'000'000u);
  CHECK(parseSize("64KiB", error) == 64u * 1024);
  CHECK(parseSize("1MiB", error) == 1024u * 1024);
  CHECK(parseSize("3GiB", error) == 3ull * 1024 * 1024 * 1024);
  CHECK(parseSize("0", error) == 0u);
  CHECK(error.empty());
}

TEST_CASE("parseSize rejects garbage") {
  for (const char* text :
       {"", "KiB", "1kib", "1kb", "1K", "1 MiB", "-1", "1.5MiB", "1TiB", "1MiBs"}) {
    std::string error;
    CAPTURE(text);
    CHECK_FALSE(parseSize(text, error));
    CHECK_FALSE(error.empty());
  }
  std::string error;
  parseSize("1K", error);
  CHECK(error == "invalid size '1K': unit must be B, KB, MB, GB, KiB, MiB or GiB");
}

TEST_CASE("parseSize rejects overflow") {
  std::string error;
  CHECK_FALSE(parseSize("18446744073709551616", error));
  CHECK(error == "size '18446744073709551616' is too large");
  CHECK_FALSE(parseSize("17179869184GiB", error));
  CHECK(parseSize("18446744073709551615", error) == std::numeric_limits<std::size_t>::max());
}

}  // namespace
}  // namespace gw::config
