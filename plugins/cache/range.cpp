#include "plugins/cache/range.h"

#include <algorithm>
#include <vector>

#include "gateway/http/headers.h"
#include "plugins/cache/conditional.h"
#include "plugins/cache/http_date.h"

namespace gw::plugins::cache {
namespace {

// 1*DIGIT, saturating (a first-pos past any body is simply unsatisfiable).
std::optional<uint64_t> parseDigits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

bool ifRangeMatches(std::string_view ifRange, const StoredMeta& meta) {
  ifRange = trimOws(ifRange);
  if (ifRange.starts_with("W/") || ifRange.starts_with("\"")) {
    return strongEtagMatch(ifRange, meta.etag);
  }
  auto date = parseHttpDate(ifRange, meta.responseTime);
  const bool strongLastModified =
      meta.lastModified && *meta.lastModified + 1 <= meta.date.value_or(meta.responseTime);
  return date && strongLastModified && *date == *meta.lastModified;
}

}  // namespace

RangeAnswer answerRange(std::string_view method, std::optional<std::string_view> range,
                        std::optional<std::string_view> ifRange, uint64_t bodyLength,
                        const StoredMeta& meta) {
  RangeAnswer full;
  if (!range || method != "GET" || meta.status != 200) return full;
  std::string_view spec = trimOws(*range);
  std::size_t eq = spec.find('=');
  if (eq == std::string_view::npos || !http::iequals(trimOws(spec.substr(0, eq)), "bytes")) {
    return full;
  }
  std::vector<std::string_view> ranges;
  forEachListElement(spec.substr(eq + 1), [&](std::string_view r) {
    ranges.push_back(r);
    return ranges.size() <= 1;
  });
  if (ranges.size() != 1) return full;  // none, or several: the whole body (see range.h)
  std::string_view r = ranges.front();
  std::size_t dash = r.find('-');
  if (dash == std::string_view::npos) return full;
  auto first = parseDigits(r.substr(0, dash));
  auto last = parseDigits(r.substr(dash + 1));
  bool syntaxOk = true;
  if (!first && !last) syntaxOk = false;
  if (first && !last && dash + 1 != r.size()) syntaxOk = false;
  if (!first && dash != 0) syntaxOk = false;
  if (first && last && *last < *first) syntaxOk = false;  // §14.1.1: invalid, not unsatisfiable
  if (!syntaxOk) return full;
  // §13.1.5: If-Range that does not match means the whole representation.
  if (ifRange && !ifRangeMatches(*ifRange, meta)) return full;

  RangeAnswer answer;
  uint64_t begin = 0, end = 0;  // [begin, end]
  if (first) {
    if (*first >= bodyLength) {
      answer.kind = RangeAnswer::Kind::Unsatisfiable;
    } else {
      begin = *first;
      end = last ? std::min(*last, bodyLength - 1) : bodyLength - 1;
    }
  } else if (*last == 0 || bodyLength == 0) {  // suffix-range of 0 bytes
    answer.kind = RangeAnswer::Kind::Unsatisfiable;
  } else {
    begin = *last >= bodyLength ? 0 : bodyLength - *last;
    end = bodyLength - 1;
  }
  if (answer.kind == RangeAnswer::Kind::Unsatisfiable) {
    answer.contentRange = "bytes */" + std::to_string(bodyLength);
    return answer;
  }
  answer.kind = RangeAnswer::Kind::Partial;
  answer.first = begin;
  answer.length = end - begin + 1;
  answer.contentRange = "bytes " + std::to_string(begin) + "-" + std::to_string(end) + "/" +
                        std::to_string(bodyLength);
  return answer;
}

}  // namespace gw::plugins::cache
