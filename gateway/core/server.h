#pragma once
// The process: starts the workers, owns the main loop (signals, drain timer, the admin listener),
// and decides when the process exits. Workers are reached only through their post().

#include <cstdint>
#include <memory>
#include <vector>

#include "gateway/admin/admin_server.h"

#include "gateway/core/libevent_ptr.h"
#include "gateway/core/reactor.h"
#include "gateway/core/worker.h"
#include "gateway/observability/metrics.h"
#include "gateway/runtime/snapshot.h"
#include "gateway/upstream/health.h"
#include "gateway/upstream/prober.h"

namespace gw::core {

class Server final : public admin::Service {
 public:
  explicit Server(std::shared_ptr<const runtime::Snapshot> snapshot);
  ~Server();
  // Runs until SIGTERM/SIGINT and the drain that follows; returns the exit code.
  int run();

  // admin::Service: GET/HEAD /health, /ready, /status, /metrics; DELETE /cache (purge).
  void handle(const admin::Request& request, std::function<void(admin::Response)> done) override;

 private:
  enum class State : uint8_t { Starting, Serving, Draining };
  struct Scrape;
  void collectMetrics(std::function<void(admin::Response)> done);
  void finishScrape(Scrape& scrape);
  admin::Response readiness() const;
  admin::Response status() const;
  // Runs the purge here, on the admin thread: the caches' stores are thread-safe.
  // An admin endpoint a plugin type offers, over the live configuration's routes.
  admin::Response pluginEndpoint(const plugin::Factory& factory,
                                 const plugin::AdminEndpoint& endpoint,
                                 std::string_view query) const;

  void handleSignals();
  static void onSignal(evutil_socket_t signal, short what, void* arg);
  static void onReopenLogs(evutil_socket_t signal, short what, void* arg);
  static void onIgnoredSignal(evutil_socket_t signal, short what, void* arg);
  static void onLogFlush(evutil_socket_t, short, void* arg);
  static void onDrainTimeout(evutil_socket_t, short, void* arg);
  void beginShutdown();
  void workerDrained(std::size_t index, const observability::WorkerMetrics& last);
  void workerStarted();

  std::shared_ptr<const runtime::Snapshot> snapshot_;
  // Before the workers, which use them (members are destroyed in reverse order).
  upstream::HealthBoard health_;
  std::unique_ptr<observability::LogSink> accessLog_;
  std::unique_ptr<observability::OtlpExporter> spanExporter_;
  Reactor main_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<EventPtr> signalEvents_;
  EventPtr drainTimer_;
  EventPtr logFlushTimer_;
  unsigned drained_ = 0;
  unsigned started_ = 0;
  bool shuttingDown_ = false;
  State state_ = State::Starting;
  int64_t startedAtMs_ = 0;  // wall clock
  std::vector<bool> workerGone_;  // drained: its loop no longer runs posted work
  // The counters of workers that have finished, so totals never go backwards during a drain.
  observability::WorkerMetrics finishedWorkers_;
  std::unique_ptr<upstream::Prober> prober_;  // when an upstream has an active check
  std::unique_ptr<admin::AdminServer> admin_;
};

}  // namespace gw::core
