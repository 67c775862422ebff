#include "gateway/observability/histogram.h"

#include <doctest.h>

using gw::observability::Histogram;

TEST_CASE("Histogram puts a value exactly on a bound into that bucket (le is <=)") {
  Histogram h;
  h.observe(0);           // bucket 0 (<= 0.5 ms)
  h.observe(500);         // bucket 0, exactly on the bound
  h.observe(501);         // bucket 1 (<= 1 ms)
  h.observe(1'000);       // bucket 1
  h.observe(10'000'000);  // last finite bucket (<= 10 s)
  h.observe(10'000'001);  // +Inf
  CHECK(h.bucket(0) == 2);
  CHECK(h.bucket(1) == 2);
  CHECK(h.bucket(Histogram::kBoundsMicros.size() - 1) == 1);
  CHECK(h.bucket(Histogram::kBucketCount - 1) == 1);
  CHECK(h.count() == 6);
  CHECK(h.sumMicros() == 0 + 500 + 501 + 1'000 + 10'000'000 + 10'000'001);
  for (std::size_t i = 0; i < Histogram::kBoundsMicros.size(); ++i) {
    Histogram one;
    one.observe(Histogram::kBoundsMicros[i]);
    CHECK(one.bucket(i) == 1);
    one.observe(Histogram::kBoundsMicros[i] + 1);
    CHECK(one.bucket(i + 1) == 1);
  }
}

TEST_CASE("Histogram merge adds buckets, count and sum") {
  Histogram a;
  Histogram b;
  a.observe(700);
  b.observe(700);
  b.observe(3'000'000);
  a.merge(b);
  CHECK(a.bucket(1) == 2);
  CHECK(a.bucket(12) == 1);  // <= 5 s
  CHECK(a.count() == 3);
  CHECK(a.sumMicros() == 3'001'400);
}
