#pragma once
// The Prometheus exposition of the summed metric shards, through prometheus-cpp (core only).
//
// The request path never sees prometheus-cpp: workers count into their own WorkerMetrics shard
// (metrics.h). At scrape the admin thread sums the shards' copies and hands the total, with the
// process-wide GlobalMetrics and a ProcessSample, to a ScrapeCollectable, whose MetricFamily
// objects prometheus::TextSerializer writes as the text format 0.0.4.

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/observability/histogram.h"
#include "gateway/observability/metrics.h"
#include "gateway/observability/process_metrics.h"

namespace gw::observability {

// Process-wide values the admin thread fills at scrape; not per worker.
struct GlobalMetrics {
  std::string version;
  uint64_t config_reloads_success = 0;
  uint64_t config_reloads_failure = 0;
  uint64_t config_generation = 0;
  uint64_t log_lines_dropped = 0;
  uint64_t trace_spans_exported = 0;
  uint64_t trace_spans_dropped = 0;
  // [upstream][backend], indexed like the layout of the collected shard; a backend without an
  // entry gets no gatewayd_upstream_backend_healthy series (health unknown is not "healthy").
  std::vector<std::vector<bool>> backend_healthy;
  // With a `redis:` block: how many workers' connections are in each state, indexed like
  // kRedisStateNames (redis::State); without one, no gatewayd_redis_* family is exposed.
  std::optional<std::array<std::size_t, 4>> redis_workers;
};

// redis::State's names, in its order (the floor below Redis cannot include it).
inline constexpr std::array<std::string_view, 4> kRedisStateNames = {"connecting", "closed",
                                                                     "half_open", "open"};

// One scrape's values as metric families: # HELP and # TYPE for every family, every
// route/upstream series present from the start with 0, except http_requests_total whose
// (method, code) series appear once seen. Holds references: the inputs outlive it.
class ScrapeCollectable final : public prometheus::Collectable {
 public:
  ScrapeCollectable(const WorkerMetrics& total, const GlobalMetrics& global,
                    const ProcessSample& process)
      : total_(total), global_(global), process_(process) {}

  // The core's route families, the plugins' (MetricsLayout::routeCounters), then the rest.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const WorkerMetrics& total_;
  const GlobalMetrics& global_;
  const ProcessSample& process_;
};

// Our buckets as prometheus-cpp's: cumulative counts with upper bounds in seconds, +Inf last,
// the sum in seconds.
prometheus::ClientMetric::Histogram clientHistogram(const Histogram& histogram);

// The text exposition of `collectable`, by prometheus::TextSerializer.
std::string textExposition(const prometheus::Collectable& collectable);

}  // namespace gw::observability
