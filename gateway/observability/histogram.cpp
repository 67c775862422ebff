#include "gateway/observability/histogram.h"

#include <algorithm>

namespace gw::observability {

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

}  // namespace gw::observability
