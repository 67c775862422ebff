#include "gateway/observability/histogram.h"

#include <algorithm>
#include <charconv>

namespace gw::observability {

namespace {

// NAME_SUFFIX{LABELS} or NAME_SUFFIX{LABELS,EXTRA}, braces omitted when there is no label.
void appendSeriesName(std::string& out, std::string_view name, std::string_view suffix,
                      std::string_view labels, std::string_view extra) {
  out.append(name).append(suffix);
  if (labels.empty() && extra.empty()) return;
  out.push_back('{');
  out.append(labels);
  if (!labels.empty() && !extra.empty()) out.push_back(',');
  out.append(extra);
  out.push_back('}');
}

}  // namespace

void appendUnsigned(std::string& out, uint64_t value) {
  char digits[20];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}

void appendMicrosAsSeconds(std::string& out, uint64_t micros) {
  appendUnsigned(out, micros / 1'000'000);
  uint64_t fraction = micros % 1'000'000;
  if (fraction == 0) return;
  char digits[7] = {'.', '0', '0', '0', '0', '0', '0'};
  int last = 6;
  for (int i = 6; i >= 1; --i, fraction /= 10) digits[i] = static_cast<char>('0' + fraction % 10);
  while (digits[last] == '0') --last;
  out.append(digits, static_cast<std::size_t>(last) + 1);
}

void Histogram::observe(uint64_t micros) {
  // lower_bound: a value exactly on a bound belongs to that bucket (le means <=).
  const auto bound = std::lower_bound(kBoundsMicros.begin(), kBoundsMicros.end(), micros);
  ++buckets_[static_cast<std::size_t>(bound - kBoundsMicros.begin())];
  ++count_;
  sum_micros_ += micros;
}

void Histogram::merge(const Histogram& other) {
  for (std::size_t i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_micros_ += other.sum_micros_;
}

void Histogram::appendPrometheus(std::string& out, std::string_view name,
                                 std::string_view labels) const {
  std::string le;
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    cumulative += buckets_[i];
    le.assign("le=\"");
    if (i < kBoundsMicros.size()) {
      appendMicrosAsSeconds(le, kBoundsMicros[i]);
    } else {
      le.append("+Inf");
    }
    le.push_back('"');
    appendSeriesName(out, name, "_bucket", labels, le);
    out.push_back(' ');
    appendUnsigned(out, cumulative);
    out.push_back('\n');
  }
  appendSeriesName(out, name, "_sum", labels, {});
  out.push_back(' ');
  appendMicrosAsSeconds(out, sum_micros_);
  out.push_back('\n');
  appendSeriesName(out, name, "_count", labels, {});
  out.push_back(' ');
  appendUnsigned(out, count_);
  out.push_back('\n');
}

}  // namespace gw::observability
