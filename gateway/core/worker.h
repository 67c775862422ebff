#pragma once
// A worker thread: one event loop and everything reached from it — its listening sockets
// (SO_REUSEPORT, one per listener), client connections, upstream clusters with their pools, and
// scratch space reused by every request. Other threads talk to it only through post().

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "gateway/core/accept_pause.h"
#include "gateway/core/graveyard.h"
#include "gateway/core/io_buffer.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/core/reactor.h"
#include "gateway/core/recycler.h"
#include "gateway/core/timeouts.h"
#include "gateway/core/worker_dispatcher.h"
#include "gateway/http/headers.h"
#include "gateway/http/parser.h"
#include "gateway/net/socket.h"
#include "gateway/observability/access_log.h"
#include "gateway/observability/metrics.h"
#include "gateway/observability/otlp_exporter.h"
#include "gateway/observability/trace_context.h"
#include "gateway/plugin/plugin.h"
#include "gateway/proxy/background_fetch.h"
#include "gateway/proxy/plugin_exchange.h"
#include "gateway/runtime/snapshot.h"
#include "gateway/upstream/cluster.h"

namespace gw::proxy {
class Connection;
class Router;
}  // namespace gw::proxy

namespace gw::core {

// What the process shares with every worker, each behind its own thread-safe interface.
struct WorkerServices {
  upstream::HealthBoard& health;
  observability::LogSink* accessLog = nullptr;  // null: the access log is off
  observability::OtlpExporter* spans = nullptr;  // null: spans are not exported
};

class Worker {
 public:
  // How many idle buffers / lists a worker keeps for reuse (at most 4 MiB of client blocks and
  // 4 MiB of upstream blocks).
  static constexpr std::size_t kRecycled = 256;

  // Opens the worker's listening sockets (errors reported, nothing started). The health board
  // is the process's, shared with the other workers and the prober.
  Worker(unsigned index, std::shared_ptr<const runtime::Snapshot> snapshot,
         const WorkerServices& services);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  bool listening(std::string& error) const;
  void start();
  void join() { reactor_.join(); }
  // From any thread: stop accepting, close idle connections, finish the rest, then stop.
  void drainAsync(std::function<void()> onDone);
  // From any thread: close everything now and stop.
  void stopAsync();
  // From any thread: runs fn on this worker's loop (control traffic only, e.g. a scrape).
  void post(std::function<void()> fn) { reactor_.post(std::move(fn)); }

  // This worker's metric shard: plain counters, this thread only.
  observability::WorkerMetrics& metrics() { return metrics_; }
  // A copy of the shard with the gauges filled in, for a scrape (this thread only).
  observability::WorkerMetrics metricsSnapshot() const;
  const runtime::Snapshot& snapshot() const { return *snapshot_; }
  // This worker's access log lines, batched for the shared sink; null when the log is off.
  observability::AccessLogBuffer* accessLog() { return accessLog_.get(); }
  // Trace and span ids for this worker's exchanges (not thread-safe, and need not be).
  observability::TraceIds& traceIds() { return traceIds_; }
  // Finished spans for export, handed over in batches; null when export is off.
  observability::SpanBatch* spans() { return spans_ ? &*spans_ : nullptr; }

  // What plugins may use of this worker (post, timers, clock).
  plugin::Dispatcher& dispatcher() { return dispatcher_; }
  // For the connections of this worker (its thread only).
  event_base* base() const { return reactor_.base(); }
  Graveyard& graveyard() { return graveyard_; }
  TimeoutCache& timeouts() { return timeouts_; }
  const config::Config& config() const { return snapshot_->config; }
  const proxy::Router& router() const { return *snapshot_->router; }
  upstream::Cluster& cluster(std::size_t upstreamIndex) { return *clusters_[upstreamIndex]; }
  const upstream::Timeouts& routeTimeouts(std::size_t routeIndex) const { return routeTimeouts_[routeIndex]; }
  const http::HeadLimits& headLimits() const { return headLimits_; }
  // This worker's state of each plugin binding of a route (null where a plugin keeps none).
  std::span<plugin::WorkerState* const> pluginStates(std::size_t routeIndex) const {
    return pluginStateViews_[routeIndex];
  }
  const timeval* headerTimeout() const { return headerTimeout_; }
  const timeval* bodyTimeout() const { return bodyTimeout_; }
  const timeval* idleTimeout() const { return idleTimeout_; }
  int64_t nowMs() const { return dispatcher_.nowMs(); }
  // Microseconds on the loop's cached clock (refreshed each loop turn), for durations.
  int64_t nowUs() const;
  uint64_t nextRequestSeq() { return ++requestSeq_; }
  // The gateway's id for request `seq`: 8 hex digits of a per-worker random prefix, 8 of seq.
  static constexpr std::size_t kRequestIdLength = 16;
  void formatRequestId(uint64_t seq, char (&out)[kRequestIdLength]) const;
  std::string formatRequestId(uint64_t seq) const;
  // A client socket accepted (by this worker's listeners, or handed over by a test harness):
  // the connection is registered and starts reading. This thread only.
  void adopt(net::Fd fd, const sockaddr* peer);
  void connectionClosed(proxy::Connection& connection);

  // Per-request scratch strings, reused so the hot path does not allocate.
  struct Scratch {
    std::string host;
    std::string path;
    std::string rewritten;
    std::vector<http::FieldName> fieldKinds;  // classification of the request head's fields
  };
  Scratch& scratch() { return scratch_; }
  BlockRecycler& blocks() { return blocks_; }
  BlockRecycler& upstreamBlocks() { return upstreamBlocks_; }
  http::FieldListRecycler& fieldLists() { return fieldLists_; }
  Recycler<std::string>& heads() { return heads_; }
  Recycler<std::unique_ptr<proxy::PluginExchange>>& pluginExchanges() { return pluginExchanges_; }
  // Upstream fetches plugins started with no client waiting (plugin::Context::fetchInBackground).
  proxy::BackgroundFetches& backgroundFetches() { return backgroundFetches_; }

 private:
  static void onAccept(evutil_socket_t fd, short what, void* arg);
  static void onLogFlush(evutil_socket_t fd, short what, void* arg);
  void flushTelemetry(bool force);
  void acceptAll(int listenFd);
  // At the connection limit: the listeners stop being watched until a connection closes.
  void holdAccepting();
  void beginDrain();
  void checkDrained();
  void stopNow();

  unsigned index_;
  std::shared_ptr<const runtime::Snapshot> snapshot_;
  Reactor reactor_;
  WorkerDispatcher dispatcher_{reactor_};
  // Before anything that returns objects to them on destruction.
  BlockRecycler blocks_{kRecycled};
  BlockRecycler upstreamBlocks_{kRecycled / 4};
  http::FieldListRecycler fieldLists_{kRecycled};
  Recycler<std::string> heads_{kRecycled};
  Recycler<std::unique_ptr<proxy::PluginExchange>> pluginExchanges_{kRecycled};
  Graveyard graveyard_;
  TimeoutCache timeouts_;
  AcceptPause acceptPause_;
  observability::WorkerMetrics metrics_;  // before the clusters, which count into it
  std::unique_ptr<observability::AccessLogBuffer> accessLog_;
  std::optional<observability::SpanBatch> spans_;
  observability::TraceIds traceIds_;
  EventPtr logFlushTimer_;  // hands over access log lines and spans on a quiet worker
  http::HeadLimits headLimits_;
  http::HeadLimits upstreamHeadLimits_;  // for backends' response heads
  const timeval* headerTimeout_;
  const timeval* bodyTimeout_;
  const timeval* idleTimeout_;
  std::vector<net::Fd> listenFds_;
  std::vector<EventPtr> acceptEvents_;
  std::string listenError_;
  std::vector<std::unique_ptr<upstream::Cluster>> clusters_;
  proxy::BackgroundFetches backgroundFetches_{graveyard_};  // after clusters_: they lease
  std::vector<upstream::Timeouts> routeTimeouts_;
  std::vector<std::unique_ptr<plugin::WorkerState>> pluginStates_;
  std::vector<std::vector<plugin::WorkerState*>> pluginStateViews_;
  std::list<std::unique_ptr<proxy::Connection>> connections_;
  Scratch scratch_;
  uint64_t requestSeq_ = 0;
  uint32_t idPrefix_;
  bool draining_ = false;
  bool acceptsHeld_ = false;  // at limits.max_connections_per_worker: not accepting
  std::function<void()> onDrained_;
};

}  // namespace gw::core
