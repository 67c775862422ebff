#pragma once
// The process: starts the workers, owns the main loop (signals, drain timer, the admin listener,
// what systemd is told and the watchdog), and decides when the process exits. Workers are reached
// only through their post().

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/admin/admin_server.h"
#include "gateway/admin/endpoints.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/core/reactor.h"
#include "gateway/observability/metrics.h"
#include "gateway/runtime/listening_sockets.h"
#include "gateway/runtime/reload_plan.h"
#include "gateway/runtime/service_notifier.h"
#include "gateway/runtime/snapshot.h"
#include "gateway/runtime/successor.h"
#include "gateway/runtime/watchdog.h"
#include "gateway/runtime/worker.h"
#include "gateway/upstream/health.h"
#include "gateway/upstream/prober.h"

namespace gw::runtime {

class Server final : admin::Process, Watchdog::Workers {
 public:
  explicit Server(std::shared_ptr<const runtime::Snapshot> snapshot);
  ~Server();
  // Runs until SIGTERM/SIGINT and the drain that follows; returns the exit code.
  int run();
  // What SIGUSR2 starts anew (an in-place upgrade); without it SIGUSR2 is refused.
  void setExecutable(Executable executable) { executable_ = std::move(executable); }

  // admin::Process
  admin::ProcessState state() const override { return state_; }
  std::size_t workerCount() const override { return workers_.size(); }
  int64_t startedAtMs() const override { return startedAtMs_; }
  uint64_t configGeneration() const override { return snapshot_->generation; }
  void collectMetrics(std::function<void(std::string)> done) override;
  void reload(std::function<void(const admin::ReloadOutcome&)> done) override;
  const std::optional<admin::ReloadOutcome>& lastReload() const override { return lastReload_; }
  const redis::StateBoard* redisStates() const override { return redisStates_.get(); }

 private:
  // Runs `read` on the loop of every worker still running, then `each` with its answer and, once
  // all have answered, `done`, both on the main loop.
  template <typename T>
  void askWorkers(std::function<T(Worker&)> read, std::function<void(T)> each,
                  std::function<void()> done);
  std::string renderMetrics(const observability::WorkerMetrics& total) const;

  // Watchdog::Workers
  std::size_t count() const override { return workers_.size(); }
  bool running(std::size_t index) const override { return !workerGone_[index]; }
  void sendHeartbeat(std::size_t index, std::function<void()> answered) override;
  void startWatchdog();
  static void onWatchdogTick(evutil_socket_t, short, void* arg);
  // "serving: 3 routes, 2 upstreams, 2 workers, generation 1", for `systemctl status`.
  std::string servingStatus() const;
  static void onDrainProgress(evutil_socket_t, short, void* arg);

  void handleSignals();
  static void onSignal(evutil_socket_t signal, short what, void* arg);
  static void onReloadSignal(evutil_socket_t signal, short what, void* arg);
  // Reload, in three steps: the file is read and the next snapshot built on a thread of its own
  // (so the admin listener and the watchdog go on), then it is handed to every worker, then the
  // outcome is told to whoever asked, the log, the metrics and systemd.
  void startReload();
  void snapshotBuilt(std::shared_ptr<const runtime::Snapshot> next, ReloadPlan plan,
                     std::vector<std::string> errors);
  void reloadDone(admin::ReloadOutcome outcome);
  // A reload asked while another ran, or before every worker ran.
  void startAskedReload();
  void startProber();
  static void onReopenLogs(evutil_socket_t signal, short what, void* arg);
  static void onIgnoredSignal(evutil_socket_t signal, short what, void* arg);
  static void onLogFlush(evutil_socket_t, short, void* arg);
  static void onDrainTimeout(evutil_socket_t, short, void* arg);
  void beginShutdown();
  // The listening sockets: passed ones (systemd, a previous gatewayd) or opened; the admin
  // listener too. run() gives each worker its share. False when start-up must stop.
  bool openListeners();
  // The workers stop watching the listening sockets, which close once all have.
  void stopAccepting();
  // SIGUSR2: start the binary anew with our sockets; hand over once it serves.
  static void onUpgradeSignal(evutil_socket_t signal, short what, void* arg);
  void startUpgrade();
  void successorServing(pid_t pid, const std::string& status);
  void workerDrained(std::size_t index, const observability::WorkerMetrics& last);
  void workerStarted();

  std::shared_ptr<const runtime::Snapshot> snapshot_;
  // Before the workers, which use them (members are destroyed in reverse order). The live
  // configuration's; a worker's older generations keep the board they were built with.
  std::shared_ptr<upstream::HealthBoard> health_;
  admin::Endpoints endpoints_;
  std::unique_ptr<observability::LogSink> accessLog_;
  std::unique_ptr<observability::OtlpExporter> spanExporter_;
  core::Reactor main_;
  std::unique_ptr<redis::StateBoard> redisStates_;  // one entry per worker
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<core::EventPtr> signalEvents_;
  core::EventPtr drainTimer_;
  core::EventPtr logFlushTimer_;
  ServiceNotifier notifier_;
  std::unique_ptr<Watchdog> watchdog_;  // when systemd asks for one (WatchdogSec=)
  core::EventPtr watchdogTimer_;
  core::EventPtr drainProgressTimer_;  // STATUS=draining: N connections left, every second
  unsigned drained_ = 0;
  unsigned started_ = 0;
  bool shuttingDown_ = false;
  admin::ProcessState state_ = admin::ProcessState::Starting;
  int64_t startedAtMs_ = 0;       // wall clock
  std::vector<bool> workerGone_;  // drained: its loop no longer runs posted work
  // The counters of workers that have finished, so totals never go backwards during a drain.
  observability::WorkerMetrics finishedWorkers_;
  std::unique_ptr<upstream::Prober> prober_;  // when an upstream has an active check
  std::unique_ptr<admin::AdminServer> admin_;
  // Reload: one at a time; asking again meanwhile runs one more once it ends (the file may have
  // changed after the running one read it), answering every caller then.
  std::thread reloadThread_;
  bool reloading_ = false;
  bool reloadAgain_ = false;
  int64_t reloadStartedUs_ = 0;  // monotonic
  std::vector<std::function<void(const admin::ReloadOutcome&)>> reloadWaiting_;
  std::vector<std::function<void(const admin::ReloadOutcome&)>> reloadNext_;
  std::optional<admin::ReloadOutcome> lastReload_;
  uint64_t reloadsApplied_ = 0;
  uint64_t reloadsRefused_ = 0;
  std::unique_ptr<ListeningSockets> listening_;
  unsigned stoppedWatching_ = 0;  // workers that no longer watch listening_
  Executable executable_;
  std::unique_ptr<Successor> successor_;  // the last upgrade started
  bool handedOver_ = false;  // an upgrade's successor serves: systemd hears from it, not us
  // Set when this process is an upgrade's successor: told once it serves.
  net::Fd predecessor_ = takePredecessorLink();
};

}  // namespace gw::runtime
