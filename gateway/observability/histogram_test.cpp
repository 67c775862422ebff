#include "gateway/observability/histogram.h"

#include <doctest.h>

#include <string>

using gw::observability::appendMicrosAsSeconds;
using gw::observability::Histogram;

namespace {

std::string seconds(uint64_t micros) {
  std::string out;
  appendMicrosAsSeconds(out, micros);
  return out;
}

}  // namespace

TEST_CASE("appendMicrosAsSeconds is exact and drops trailing zeros") {
  CHECK(seconds(0) == "0");
  CHECK(seconds(1) == "0.000001");
  CHECK(seconds(500) == "0.0005");
  CHECK(seconds(2'500) == "0.0025");
  CHECK(seconds(1'000'000) == "1");
  CHECK(seconds(2'500'000) == "2.5");
  CHECK(seconds(10'000'000) == "10");
  CHECK(seconds(123'456'789) == "123.456789");
  CHECK(seconds(UINT64_MAX) == "18446744073709.551615");
}

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

TEST_CASE("Histogram renders cumulative buckets, sum in seconds and count") {
  Histogram h;
  h.observe(400);
  h.observe(1'000);
  h.observe(20'000'000);
  std::string out;
  h.appendPrometheus(out, "x_seconds", "route=\"a\"");
  CHECK(out ==
        "x_seconds_bucket{route=\"a\",le=\"0.0005\"} 1\n"
        "x_seconds_bucket{route=\"a\",le=\"0.001\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"0.0025\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"0.005\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"0.01\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"0.025\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"0.05\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"0.1\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"0.25\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"0.5\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"1\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"2.5\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"5\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"10\"} 2\n"
        "x_seconds_bucket{route=\"a\",le=\"+Inf\"} 3\n"
        "x_seconds_sum{route=\"a\"} 20.0014\n"
        "x_seconds_count{route=\"a\"} 3\n");

  std::string bare;
  Histogram().appendPrometheus(bare, "y", "");
  CHECK(bare.starts_with("y_bucket{le=\"0.0005\"} 0\n"));
  CHECK(bare.ends_with("y_bucket{le=\"+Inf\"} 0\ny_sum 0\ny_count 0\n"));
}
