#pragma once
// A fixed-bucket latency histogram for per-worker metric shards: plain integers touched by one
// thread, so observe() is a bucket search and three increments, with no floating point.

#include <array>
#include <cstddef>
#include <cstdint>

namespace gw::observability {

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

 private:
  std::array<uint64_t, kBucketCount> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_micros_ = 0;
};

}  // namespace gw::observability
