#pragma once
// What the proxy floor needs of the worker it runs on: the loop, the configuration it serves, the
// worker's metric shard and telemetry batches, its upstream clusters, the plugins' per-worker
// state and the memory reused by every request. runtime::Worker builds one and owns it beside
// its thread, listeners and connection list; a connection and its exchanges reach the worker
// only through this (its thread only), so the proxy never includes the runtime above it.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/core/graveyard.h"
#include "gateway/core/io_buffer.h"
#include "gateway/core/out_queue.h"
#include "gateway/core/recycler.h"
#include "gateway/core/slot.h"
#include "gateway/core/timeouts.h"
#include "gateway/http/headers.h"
#include "gateway/http/parser.h"
#include "gateway/net/socket.h"
#include "gateway/observability/access_log.h"
#include "gateway/observability/metrics.h"
#include "gateway/observability/otlp_exporter.h"
#include "gateway/observability/trace_context.h"
#include "gateway/plugin/dispatcher.h"
#include "gateway/plugin/plugin.h"
#include "gateway/proxy/background_fetch.h"
#include "gateway/proxy/generation.h"
#include "gateway/proxy/plugin_exchange.h"
#include "gateway/redis/state_board.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/health.h"

namespace gw::proxy {

class Connection;
class Exchange;

// What the process shares with every worker for its whole life, each behind its own thread-safe
// interface.
struct SharedServices {
  observability::LogSink* accessLog = nullptr;   // null: the access log is off
  observability::OtlpExporter* spans = nullptr;  // null: spans are not exported
  redis::StateBoard* redisStates = nullptr;      // each worker's Redis connection state
};

// Where a connection reports that it closed: the worker that registered it.
class ConnectionHome {
 public:
  virtual void connectionClosed(Connection& connection) = 0;

 protected:
  ~ConnectionHome() = default;
};

class WorkerContext {
 public:
  // How many idle buffers / lists a worker keeps for reuse (at most 4 MiB of client blocks and
  // 4 MiB of upstream blocks).
  static constexpr std::size_t kRecycled = 256;

  // `index` tells this worker's request ids apart from the others'. Serves `served` as
  // generation `number` (see serve()).
  WorkerContext(unsigned index, event_base* base, plugin::Dispatcher& dispatcher,
                const ServedConfig& served, upstream::HealthBoard& health,
                std::shared_ptr<const void> keepAlive, uint64_t number,
                const SharedServices& services, ConnectionHome& home);
  ~WorkerContext();
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;

  event_base* base() const { return base_; }
  // This worker's place among the process's workers (0 to workers - 1).
  unsigned index() const { return index_; }
  // What plugins may use of this worker (post, timers, clock).
  plugin::Dispatcher& dispatcher() { return dispatcher_; }
  ConnectionHome& home() { return home_; }

  // New requests are served on this generation; see generation.h.
  Generation& current() { return *current_; }
  const Generation& current() const { return *current_; }
  // A reload: `served` becomes the current generation for new requests; the one it replaces
  // ends with its last exchange. `keepAlive` owns what `served` and `health` refer to.
  void serve(const ServedConfig& served, upstream::HealthBoard& health,
             std::shared_ptr<const void> keepAlive, uint64_t number);
  // Generations replaced by a reload that still have exchanges in flight.
  std::size_t replacedGenerations() const { return replaced_.size(); }
  // The current configuration, for what is decided per connection or before a request is routed.
  const config::Config& config() const { return current_->config(); }

  // This worker's metric shard (the current generation's): plain counters, this thread only.
  observability::WorkerMetrics& metrics() { return current_->metrics(); }
  // The counts of every generation still alive on this worker, for a scrape.
  observability::WorkerMetrics metricsTotal() const;
  // This worker's access log lines, batched for the shared sink; null when the log is off.
  observability::AccessLogBuffer* accessLog() { return accessLog_.get(); }
  // Trace and span ids for this worker's exchanges (not thread-safe, and need not be).
  observability::TraceIds& traceIds() { return traceIds_; }
  // Finished spans for export, handed over in batches; null when export is off.
  observability::SpanBatch* spans() { return spans_ ? &*spans_ : nullptr; }
  // Hands batched log lines and spans to the shared sinks (all of them when `force`).
  void flushTelemetry(bool force);

  core::Graveyard& graveyard() { return graveyard_; }
  core::TimeoutCache& timeouts() { return timeouts_; }
  // Client request heads, and backends' response heads: the current configuration's limits.
  const http::HeadLimits& headLimits() const { return headLimits_; }
  const http::HeadLimits& upstreamHeadLimits() const { return upstreamHeadLimits_; }
  core::BlockRecycler& upstreamBlocks() { return upstreamBlocks_; }
  const timeval* headerTimeout() const { return headerTimeout_; }
  const timeval* bodyTimeout() const { return bodyTimeout_; }
  const timeval* idleTimeout() const { return idleTimeout_; }
  // Milliseconds / microseconds on the loop's cached clock (refreshed each loop turn): the
  // plugins' Dispatcher clock, read here without a virtual call.
  int64_t nowMs() const { return nowUs() / 1000; }
  int64_t nowUs() const;
  uint64_t nextRequestSeq() { return ++requestSeq_; }
  // The gateway's id for request `seq`: 8 hex digits of a per-worker random prefix, 8 of seq.
  static constexpr std::size_t kRequestIdLength = 16;
  void formatRequestId(uint64_t seq, char (&out)[kRequestIdLength]) const;
  std::string formatRequestId(uint64_t seq) const;

  // Per-request scratch strings, reused so the hot path does not allocate.
  struct Scratch {
    std::string host;
    std::string path;
    std::string rewritten;
    std::vector<http::FieldName> fieldKinds;  // classification of the request head's fields
  };
  Scratch& scratch() { return scratch_; }
  core::BlockRecycler& blocks() { return blocks_; }
  http::FieldListRecycler& fieldLists() { return fieldLists_; }
  core::Recycler<std::string>& heads() { return heads_; }
  core::Recycler<std::unique_ptr<PluginExchange>>& pluginExchanges() { return pluginExchanges_; }
  // The output buffers of busy client connections (idle ones hold none).
  core::OutQueue::BufferPool& outBuffers() { return outBuffers_; }
  // Room for the exchange of each busy connection of this worker (idle ones hold none).
  core::SlotPool<Exchange>& exchangeSlots() { return exchangeSlots_; }
  // Upstream fetches plugins started with no client waiting (plugin::Context::fetchInBackground).
  BackgroundFetches& backgroundFetches() { return backgroundFetches_; }

  // Ends what does not belong to a connection: background fetches, idle upstream connections,
  // and the objects waiting to be freed. At shutdown, after the connections closed.
  void shutDown();

 private:
  friend class Generation;
  // A replaced generation's last hold went: its counts join the current shard, and it is freed
  // once the callbacks on the stack have unwound.
  void generationUnused(Generation& generation);
  void applyLimits(const config::Limits& limits);

  unsigned index_;
  event_base* base_;
  plugin::Dispatcher& dispatcher_;
  ConnectionHome& home_;
  // Before anything that returns objects to them on destruction.
  core::BlockRecycler blocks_{kRecycled};
  core::BlockRecycler upstreamBlocks_{kRecycled / 4};
  http::FieldListRecycler fieldLists_{kRecycled};
  core::Recycler<std::string> heads_{kRecycled};
  core::Recycler<std::unique_ptr<PluginExchange>> pluginExchanges_{kRecycled};
  core::SlotPool<Exchange> exchangeSlots_{kRecycled};
  core::OutQueue::BufferPool outBuffers_{kRecycled};
  core::Graveyard graveyard_;
  core::TimeoutCache timeouts_;
  std::unique_ptr<observability::AccessLogBuffer> accessLog_;
  std::optional<observability::SpanBatch> spans_;
  observability::TraceIds traceIds_;
  http::HeadLimits headLimits_;
  http::HeadLimits upstreamHeadLimits_;  // for backends' response heads
  const timeval* headerTimeout_;
  const timeval* bodyTimeout_;
  const timeval* idleTimeout_;
  std::unique_ptr<Generation> current_;
  std::vector<std::unique_ptr<Generation>> replaced_;  // still held by exchanges in flight
  BackgroundFetches backgroundFetches_{graveyard_};    // after the generations: fetches lease
  Scratch scratch_;
  uint64_t requestSeq_ = 0;
  uint32_t idPrefix_;
};

}  // namespace gw::proxy
