#include "plugins/cache/http_date.h"

#include <array>
#include <cstdio>

#include "plugins/cache/fields.h"

namespace gw::plugins::cache {
namespace {

constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                   "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t daysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int daysInMonth(int64_t y, int m) {
  static constexpr std::array<int, 12> kLen = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kLen[static_cast<std::size_t>(m - 1)];
}

// A cursor that consumes the fixed shapes of the three forms; any mismatch poisons it.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool ok() const { return ok_; }
  bool atEnd() const { return pos_ == s_.size(); }

  void literal(std::string_view lit) {
    if (ok_ && s_.substr(pos_, lit.size()) == lit) {
      pos_ += lit.size();
    } else {
      ok_ = false;
    }
  }
  // Exactly `n` digits.
  int digits(std::size_t n) {
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!ok_ || pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') {
        ok_ = false;
        return 0;
      }
      v = v * 10 + (s_[pos_++] - '0');
    }
    return v;
  }
  // One of `names` (case-sensitive: the grammar's names are); returns its index.
  template <std::size_t N>
  int name(const std::array<std::string_view, N>& names) {
    for (std::size_t i = 0; ok_ && i < N; ++i) {
      if (s_.substr(pos_, names[i].size()) == names[i]) {
        pos_ += names[i].size();
        return static_cast<int>(i);
      }
    }
    ok_ = false;
    return 0;
  }
  bool peek(char c) const { return ok_ && pos_ < s_.size() && s_[pos_] == c; }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

std::optional<int64_t> toUnix(int64_t year, int month, int day, int hour, int minute, int second) {
  // Second 60 is a leap second, which the grammar allows; it lands on the next second.
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }
  return daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}

// "HH:MM:SS"
void timeOfDay(Scanner& in, int& h, int& m, int& s) {
  h = in.digits(2);
  in.literal(":");
  m = in.digits(2);
  in.literal(":");
  s = in.digits(2);
}

std::optional<int64_t> imfFixdate(std::string_view t) {
  Scanner in(t);
  in.name(kDays);
  in.literal(", ");
  int day = in.digits(2);
  in.literal(" ");
  int month = in.name(kMonths) + 1;
  in.literal(" ");
  int year = in.digits(4);
  in.literal(" ");
  int h, m, s;
  timeOfDay(in, h, m, s);
  in.literal(" GMT");
  if (!in.ok() || !in.atEnd()) return std::nullopt;
  return toUnix(year, month, day, h, m, s);
}

std::optional<int64_t> rfc850(std::string_view t, int64_t nowSec) {
  Scanner in(t);
  in.name(kLongDays);
  in.literal(", ");
  int day = in.digits(2);
  in.literal("-");
  int month = in.name(kMonths) + 1;
  in.literal("-");
  int yy = in.digits(2);
  in.literal(" ");
  int h, m, s;
  timeOfDay(in, h, m, s);
  in.literal(" GMT");
  if (!in.ok() || !in.atEnd()) return std::nullopt;
  // §5.6.7: a date that appears to be more than 50 years in the future is the most recent past
  // year with the same last two digits.
  int64_t nowYear = 1970 + nowSec / 31556952;  // mean Gregorian year; a day off does not matter
  int64_t year = nowYear - nowYear % 100 + yy;
  if (year > nowYear + 50) year -= 100;
  return toUnix(year, month, day, h, m, s);
}

std::optional<int64_t> asctime(std::string_view t) {
  Scanner in(t);
  in.name(kDays);
  in.literal(" ");
  int month = in.name(kMonths) + 1;
  in.literal(" ");
  int day = 0;
  if (in.peek(' ')) {  // ( 2DIGIT / ( SP DIGIT ) )
    in.literal(" ");
    day = in.digits(1);
  } else {
    day = in.digits(2);
  }
  in.literal(" ");
  int h, m, s;
  timeOfDay(in, h, m, s);
  in.literal(" ");
  int year = in.digits(4);
  if (!in.ok() || !in.atEnd()) return std::nullopt;
  return toUnix(year, month, day, h, m, s);
}

}  // namespace

std::optional<int64_t> parseHttpDate(std::string_view text, int64_t nowSec) {
  text = trimOws(text);
  if (text.size() < 4) return std::nullopt;
  if (text[3] == ',') return imfFixdate(text);
  if (text[3] == ' ') return asctime(text);
  return rfc850(text, nowSec);
}

std::string formatHttpDate(int64_t unixSec) {
  int64_t days = unixSec / 86400;
  int64_t secs = unixSec % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  // civil_from_days (H. Hinnant)
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int64_t year = yoe + era * 400 + (month <= 2);
  const int64_t weekday = ((days % 7) + 11) % 7;  // 1970-01-01 was a Thursday
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04lld %02d:%02d:%02d GMT",
                kDays[static_cast<std::size_t>(weekday)].data(), day,
                kMonths[static_cast<std::size_t>(month - 1)].data(),
                static_cast<long long>(year), static_cast<int>(secs / 3600),
                static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  return buf;
}

}  // namespace gw::plugins::cache
