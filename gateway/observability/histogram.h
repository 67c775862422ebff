#pragma once
// A fixed-bucket latency histogram for per-worker metric shards: plain integers touched by one
// thread, so observe() is a bucket search and three increments, with no floating point.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gw::observability {

// Exposition number formatting, shared with metrics.cpp.
void appendUnsigned(std::string& out, uint64_t value);
// Appends `micros` as decimal seconds, exactly and without trailing zeros ("0.0005", "2.5", "10").
// Integer arithmetic keeps _sum and le values exact, where printing a double would not be.
void appendMicrosAsSeconds(std::string& out, uint64_t micros);

class Histogram {
 public:
  // Upper bounds (inclusive, Prometheus "le") in microseconds: 0.5 ms .. 10 s.
  static constexpr std::array<uint64_t, 14> kBoundsMicros = {
      500,     1'000,   2'500,   5'000,     10'000,    25'000,    50'000,
      100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000};
  static constexpr std::size_t kBucketCount = kBoundsMicros.size() + 1;  // the last one is +Inf

  void observe(uint64_t micros);
  void merge(const Histogram& other);

  // Non-cumulative count of bucket `index` (kBucketCount - 1 is the +Inf overflow bucket).
  uint64_t bucket(std::size_t index) const { return buckets_[index]; }
  uint64_t count() const { return count_; }
  uint64_t sumMicros() const { return sum_micros_; }

  // Appends the cumulative series NAME_bucket{LABELS,le=".."} .. le="+Inf", NAME_sum (seconds)
  // and NAME_count. `labels` is already-escaped label text without braces (may be empty).
  void appendPrometheus(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  std::array<uint64_t, kBucketCount> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_micros_ = 0;
};

}  // namespace gw::observability
