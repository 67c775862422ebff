#include "gateway/runtime/server.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <utility>

#include "gateway/config/loader.h"
#include "gateway/core/clock.h"
#include "gateway/core/json.h"
#include "gateway/core/log.h"
#include "gateway/observability/exposition.h"
#include "gateway/observability/process_metrics.h"
#include "gateway/plugin/plugin.h"
#include "gateway/plugin/registry.h"
#include "gateway/runtime/load_environment.h"
#include "gateway/runtime/passed_sockets.h"

namespace gw::runtime {

namespace log = core::log;

namespace {

int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "SIGUSR2", "SIGRTMIN+3".
std::string signalName(int signal) {
  if (signal >= SIGRTMIN && signal <= SIGRTMAX) {
    return signal == SIGRTMIN ? "SIGRTMIN" : "SIGRTMIN+" + std::to_string(signal - SIGRTMIN);
  }
  const char* abbreviation = sigabbrev_np(signal);
  return abbreviation ? std::string("SIG") + abbreviation : "signal " + std::to_string(signal);
}

// "1 route", "3 routes".
std::string counted(std::size_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

timeval toTimeval(std::chrono::microseconds us) {
  return {static_cast<time_t>(us.count() / 1'000'000),
          static_cast<suseconds_t>(us.count() % 1'000'000)};
}

std::vector<upstream::UpstreamHealthSpec> healthSpecs(const runtime::Snapshot& snapshot) {
  std::vector<upstream::UpstreamHealthSpec> specs;
  const auto& upstreams = snapshot.config.upstreams;
  for (std::size_t u = 0; u < upstreams.size(); ++u) {
    const config::UpstreamConfig& config = upstreams[u];
    upstream::UpstreamHealthSpec& spec = specs.emplace_back();
    spec.name = config.name;
    spec.backends = snapshot.metricsLayout->upstreams[u].backends;
    spec.passive.consecutiveFailures = config.passive_check.consecutive_failures;
    spec.passive.baseEjectionMs = config.passive_check.base_ejection.count();
    spec.passive.maxEjectionMs = config.passive_check.max_ejection.count();
    spec.passive.maxEjectionPercent = config.passive_check.max_ejection_percent;
    if (const auto& active = config.active_check) {
      upstream::ActiveCheck& check = spec.active.emplace();
      check.path = active->path;
      check.host = active->host;
      check.intervalMs = active->interval.count();
      check.timeoutMs = active->timeout.count();
      check.healthyThreshold = static_cast<int>(active->healthy_threshold);
      check.unhealthyThreshold = static_cast<int>(active->unhealthy_threshold);
      check.expectedStatuses = active->expected_statuses;
    }
  }
  return specs;
}

}  // namespace

Server::Server(std::shared_ptr<const runtime::Snapshot> snapshot)
    : snapshot_(std::move(snapshot)),
      health_(std::make_shared<upstream::HealthBoard>(healthSpecs(*snapshot_))),
      endpoints_(snapshot_->config, *snapshot_->plugins, *health_, *this),
      finishedWorkers_(snapshot_->metricsLayout) {}

Server::~Server() {
  if (reloadThread_.joinable()) reloadThread_.join();
  for (auto& worker : workers_) worker->join();
}

int Server::run() {
  const config::Config& config = snapshot_->config;
  startedAtMs_ = wallClockMs();
  if (config.access_log.enabled) {
    const config::AccessLogConfig& log = config.access_log;
    if (log.path == "stdout") {
      accessLog_ = observability::LogSink::toStdout(log.max_queued_bytes);
    } else {
      auto sink = observability::LogSink::toFile(log.path, log.max_queued_bytes);
      if (!sink.ok()) {
        log::error("cannot open the access log",
                   {{"path", log.path}, {"error", sink.error().message}});
        return 1;
      }
      accessLog_ = std::move(sink.value());
    }
  }
  if (const auto& otlp = config.tracing.otlp) {
    observability::OtlpExporterOptions options;
    options.endpoint = *observability::parseOtlpEndpoint(otlp->endpoint);  // checked at load
    options.service_name = otlp->service_name;
    options.batch_size = otlp->batch_size;
    options.flush_interval = otlp->flush_interval;
    options.queue_capacity = otlp->max_queued_spans;
    spanExporter_ = std::make_unique<observability::OtlpExporter>(std::move(options));
    spanExporter_->start();
  }
  // Signals and the admin listener come before the workers' listening sockets: once a proxy port
  // accepts connections, a SIGTERM is a drain (not the default death) and /ready can be asked.
  handleSignals();
  // Held-back log lines are counted; the count is written within a second or two.
  logFlushTimer_.reset(event_new(main_.base(), -1, EV_PERSIST, &Server::onLogFlush, this));
  constexpr timeval kEverySecond{1, 0};
  event_add(logFlushTimer_.get(), &kEverySecond);
  if (!openListeners()) return 1;
  redisStates_ = std::make_unique<redis::StateBoard>(config.workers);
  const proxy::SharedServices services{accessLog_.get(), spanExporter_.get(), redisStates_.get()};
  for (unsigned i = 0; i < config.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, snapshot_, health_, services));
    workers_.back()->watch(listening_->forWorker(i));
  }
  workerGone_.assign(workers_.size(), false);
  startProber();
  for (auto& worker : workers_) {
    worker->start();
    // Ready once every loop runs: the first work each one does is to say so.
    worker->post([this] { main_.post([this] { workerStarted(); }); });
  }
  startWatchdog();
  std::string listeners;
  for (const auto& listener : config.listeners) {
    if (!listeners.empty()) listeners += ",";
    listeners += listener.address + ":" + std::to_string(listener.port);
  }
  log::info(
      "gatewayd started",
      {{"version", GATEWAYD_VERSION},
       {"workers", std::to_string(config.workers)},
       {"listeners", listeners},
       {"admin", admin_ ? config.admin.address + ":" + std::to_string(admin_->port()) : "off"},
       {"config", config.source}});
  main_.run();
  admin_.reset();
  if (reloadThread_.joinable()) reloadThread_.join();
  if (prober_) prober_->stop();
  for (auto& worker : workers_) worker->join();
  if (accessLog_) accessLog_->stop();
  if (spanExporter_) spanExporter_->stop();
  log::flushSuppressed();
  log::info("gatewayd stopped");
  return 0;
}

// Every signal a supervisor, a terminal or a stray `kill` may send is decided here, so none ends
// the process by its default action unless that is the point: see docs/operations.md, "Signals".
// Left to their default (end with a core dump): the faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
// SIGABRT, SIGSYS, SIGTRAP), SIGQUIT (a core dump on request) and SIGXCPU (the CPU limit set for
// this process was reached). SIGKILL and SIGSTOP cannot be caught.
void Server::handleSignals() {
  // A peer that vanishes mid-write must not end the process: the write fails with EPIPE instead
  // (socket writes use MSG_NOSIGNAL too). A terminal's job control must never stop a server: a
  // background write or read proceeds (and is not restarted in a loop, as with a handler).
  for (int signal : {SIGPIPE, SIGTTIN, SIGTTOU}) std::signal(signal, SIG_IGN);
  const auto handle = [&](int signal, event_callback_fn callback) {
    signalEvents_.emplace_back(evsignal_new(main_.base(), signal, callback, this));
    event_add(signalEvents_.back().get(), nullptr);
  };
  for (int signal : {SIGTERM, SIGINT}) handle(signal, &Server::onSignal);
  // logrotate's postrotate: `kill -USR1`, then the next lines go to a fresh file at the path.
  handle(SIGUSR1, &Server::onReopenLogs);
  // `systemctl reload` (ExecReload=kill -HUP $MAINPID), as nginx and HAProxy do.
  handle(SIGHUP, &Server::onReloadSignal);
  handle(SIGUSR2, &Server::onUpgradeSignal);
  // The rest end a process by default although nothing here asked for them (timers, profilers,
  // I/O and power notices, Ctrl-Z): each is logged and ignored.
  for (int signal : {SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT, SIGTSTP, SIGXFSZ}) {
    handle(signal, &Server::onIgnoredSignal);
  }
  for (int signal = SIGRTMIN; signal <= SIGRTMAX; ++signal) {
    handle(signal, &Server::onIgnoredSignal);
  }
}

void Server::onIgnoredSignal(evutil_socket_t signal, short, void*) {
  log::warn("signal ignored", {{"signal", signalName(static_cast<int>(signal))}});
}

void Server::onLogFlush(evutil_socket_t, short, void*) { log::flushSuppressed(); }

void Server::startProber() {
  const auto& upstreams = snapshot_->config.upstreams;
  const bool anyActiveCheck = std::any_of(upstreams.begin(), upstreams.end(),
                                          [](const auto& u) { return u.active_check.has_value(); });
  if (!anyActiveCheck) return;
  upstream::HealthBoard& health = *health_;
  prober_ = std::make_unique<upstream::Prober>(
      health, snapshot_->backendAddresses,
      [&health](std::size_t u, std::size_t b, bool healthy) {
        const auto& spec = health.spec(u);
        log::write(
            healthy ? log::Level::Info : log::Level::Warn,
            healthy ? "backend passes its health check again" : "backend failed its health check",
            {{"upstream", spec.name}, {"backend", spec.backends[b]}});
      },
      snapshot_->upstreamTls);
  prober_->start();
}

void Server::onReloadSignal(evutil_socket_t, short, void* arg) {
  log::info("reloading the configuration", {{"signal", "SIGHUP"}});
  static_cast<Server*>(arg)->reload(nullptr);
}

void Server::reload(std::function<void(const admin::ReloadOutcome&)> done) {
  if (shuttingDown_) {
    admin::ReloadOutcome outcome;
    outcome.generation = snapshot_->generation;
    outcome.atMs = wallClockMs();
    outcome.shuttingDown = true;
    outcome.errors.push_back("the gateway is draining: nothing to reload");
    log::warn("reload refused", {{"reason", outcome.errors.front()}});
    if (done) done(outcome);
    return;
  }
  // Asked before every worker runs: it runs once they all do.
  if (reloading_ || state_ == admin::ProcessState::Starting) {
    reloadAgain_ = true;
    if (done) reloadNext_.push_back(std::move(done));
    return;
  }
  if (done) reloadWaiting_.push_back(std::move(done));
  startReload();
}

void Server::startReload() {
  reloading_ = true;
  reloadStartedUs_ = core::monotonicUs();
  notifier_.reloading("reloading: reading " + snapshot_->config.source);
  if (reloadThread_.joinable()) reloadThread_.join();
  // The thread reads only the live snapshot, which nothing changes while it runs.
  reloadThread_ = std::thread([this, live = snapshot_] {
    const plugin::Registry& plugins = *live->plugins;
    config::LoadResult loaded = config::loadFile(live->config.source, loadEnvironment(plugins));
    std::vector<std::string> errors;
    std::shared_ptr<const runtime::Snapshot> next;
    ReloadPlan plan;
    for (const auto& warning : loaded.warnings) {
      log::warn("configuration warning", {{"warning", warning.format()}});
    }
    if (loaded.config) {
      plan = planReload(*loaded.config, live->config);
      std::vector<config::Diagnostic> problems;
      next = buildSnapshot(std::move(*loaded.config), plugins, problems, live.get());
      for (const auto& problem : problems) errors.push_back(problem.format());
    } else {
      for (const auto& error : loaded.errors) errors.push_back(error.format());
    }
    main_.post([this, next = std::move(next), plan = std::move(plan),
                errors = std::move(errors)]() mutable {
      snapshotBuilt(std::move(next), std::move(plan), std::move(errors));
    });
  });
}

void Server::snapshotBuilt(std::shared_ptr<const runtime::Snapshot> next, ReloadPlan plan,
                           std::vector<std::string> errors) {
  admin::ReloadOutcome outcome;
  if (shuttingDown_) {
    outcome.generation = snapshot_->generation;
    outcome.errors.push_back("the gateway began draining during the reload");
    return reloadDone(std::move(outcome));
  }
  if (!next) {
    outcome.generation = snapshot_->generation;
    outcome.errors = std::move(errors);
    return reloadDone(std::move(outcome));
  }
  // Listeners that stay keep their sockets (no connection is refused); added ones open now, so
  // an address that cannot be had refuses the whole reload.
  std::string listenError;
  auto removedSockets = listening_->update(next->listenerAddresses, listenError);
  if (!removedSockets) {
    outcome.generation = snapshot_->generation;
    outcome.errors.push_back(next->config.source + ": cannot listen: " + listenError);
    return reloadDone(std::move(outcome));
  }
  outcome.applied = true;
  outcome.generation = next->generation;
  outcome.needsRestart = std::move(plan.needsRestart);
  for (const std::string& key : outcome.needsRestart) {
    log::warn(
        "this setting changed but takes effect only at the next restart; its running value "
        "is kept",
        {{"key", key}});
  }
  // The board of the next configuration starts from what this one knows of each backend.
  auto health = std::make_shared<upstream::HealthBoard>(healthSpecs(*next), *health_);
  if (prober_) prober_->stop();
  prober_.reset();
  snapshot_ = next;
  health_ = health;
  endpoints_.serve(snapshot_->config, *health_);
  startProber();
  log::info("configuration loaded, switching the workers",
            {{"generation", std::to_string(outcome.generation)},
             {"plugin_entries_kept", std::to_string(plan.pluginEntriesKept)},
             {"upstreams_kept", std::to_string(plan.upstreamsKept)}});
  auto switched = std::make_shared<admin::ReloadOutcome>(std::move(outcome));
  auto removed = std::make_shared<std::vector<net::Fd>>(std::move(*removedSockets));
  std::vector<std::vector<WatchedSocket>> watched;
  for (unsigned i = 0; i < workers_.size(); ++i) watched.push_back(listening_->forWorker(i));
  askWorkers<bool>(
      [next, health, watched = std::move(watched)](Worker& worker) {
        worker.serve(next, health);
        worker.watch(watched[worker.index()]);
        return true;
      },
      [](bool) {},
      [this, switched, removed] {
        removed->clear();  // no worker watches them any longer: connections queued there end
        reloadDone(std::move(*switched));
      });
}

void Server::reloadDone(admin::ReloadOutcome outcome) {
  outcome.atMs = wallClockMs();
  const int64_t tookUs = core::monotonicUs() - reloadStartedUs_;
  if (outcome.applied) {
    ++reloadsApplied_;
    log::info("configuration reloaded: every worker serves it",
              {{"generation", std::to_string(outcome.generation)},
               {"duration_ms", std::to_string(tookUs / 1000.0)}});
  } else {
    ++reloadsRefused_;
    for (const std::string& error : outcome.errors) {
      log::error("reload refused, the running configuration keeps serving", {{"error", error}});
    }
  }
  lastReload_ = outcome;
  reloading_ = false;
  if (!shuttingDown_) notifier_.ready(servingStatus());
  for (auto& done : std::exchange(reloadWaiting_, {})) done(outcome);
  startAskedReload();
}

void Server::startAskedReload() {
  if (!std::exchange(reloadAgain_, false)) return;
  auto asked = std::exchange(reloadNext_, {});
  if (shuttingDown_) {
    for (auto& done : asked) reload(std::move(done));  // each told why not
    return;
  }
  reloadWaiting_ = std::move(asked);
  startReload();
}

void Server::workerStarted() {
  if (++started_ == workers_.size() && state_ == admin::ProcessState::Starting) {
    state_ = admin::ProcessState::Serving;
    if (predecessor_.valid()) {
      // An upgrade: systemd hears from the old process, which names us its main process
      // (NotifyAccess=main would drop our READY=1 until then).
      tellPredecessorServing(predecessor_, servingStatus());
    } else {
      notifier_.ready(servingStatus());
    }
    startAskedReload();
  }
}

std::string Server::servingStatus() const {
  const config::Config& config = snapshot_->config;
  std::string status = "serving: " + counted(config.routes.size(), "route") + ", " +
                       counted(config.upstreams.size(), "upstream") + ", " +
                       counted(workers_.size(), "worker") + ", generation " +
                       std::to_string(snapshot_->generation);
  if (lastReload_ && !lastReload_->applied && !lastReload_->errors.empty()) {
    status += ", last reload failed: " + lastReload_->errors.front();
  }
  return status;
}

void Server::startWatchdog() {
  const auto interval = serviceWatchdogInterval();
  if (!interval) return;
  Watchdog::Workers& workers = *this;  // a private base: convertible here only
  watchdog_ = std::make_unique<Watchdog>(workers, *interval, &core::monotonicUs,
                                         [this] { notifier_.watchdog(); });
  watchdogTimer_.reset(event_new(main_.base(), -1, EV_PERSIST, &Server::onWatchdogTick, this));
  const timeval every = toTimeval(watchdog_->tickInterval());
  event_add(watchdogTimer_.get(), &every);
  log::info("systemd watchdog on: pinging while every worker answers its heartbeat",
            {{"interval_ms", std::to_string(interval->count() / 1000)}});
}

void Server::onWatchdogTick(evutil_socket_t, short, void* arg) {
  static_cast<Server*>(arg)->watchdog_->tick();
}

void Server::sendHeartbeat(std::size_t index, std::function<void()> answered) {
  workers_[index]->post(
      [this, answered = std::move(answered)]() mutable { main_.post(std::move(answered)); });
}

void Server::onSignal(evutil_socket_t signal, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  if (self->shuttingDown_) {
    log::warn("second shutdown signal: stopping now");
    for (auto& worker : self->workers_) worker->stopAsync();
    self->main_.stop();
    return;
  }
  log::info("shutdown signal received, draining",
            {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
  self->beginShutdown();
}

void Server::onReopenLogs(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  if (self->accessLog_) self->accessLog_->reopen();
  log::info("reopening the access log (SIGUSR1)");
}

void Server::beginShutdown() {
  shuttingDown_ = true;
  state_ = admin::ProcessState::Draining;
  // Stopping in the middle of an upgrade: the new process must not take over a stopping service
  // (its destructor stops it).
  if (!handedOver_) successor_.reset();
  stopAccepting();
  // Handed over, the service is our successor's, which is not stopping.
  if (!handedOver_) {
    notifier_.stopping("draining: finishing open connections (at most " +
                       std::to_string(snapshot_->config.drain_timeout.count()) + " ms)");
    drainProgressTimer_.reset(
        event_new(main_.base(), -1, EV_PERSIST, &Server::onDrainProgress, this));
    constexpr timeval kEverySecond{1, 0};
    event_add(drainProgressTimer_.get(), &kEverySecond);
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    Worker* worker = workers_[i].get();
    // Runs on the worker's thread as its loop ends: its last counters travel with the news.
    worker->drainAsync([this, worker, i] {
      auto last = std::make_shared<observability::WorkerMetrics>(worker->metricsSnapshot());
      main_.post([this, i, last] { workerDrained(i, *last); });
    });
  }
  drainTimer_.reset(evtimer_new(main_.base(), &Server::onDrainTimeout, this));
  auto ms = snapshot_->config.drain_timeout.count();
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  evtimer_add(drainTimer_.get(), &tv);
}

bool Server::openListeners() {
  const config::Config& config = snapshot_->config;
  std::string error;
  auto passed = takePassedSockets(error);
  if (!passed) {
    log::error("cannot use the sockets passed to gatewayd", {{"error", error}});
    return false;
  }
  const std::size_t passedCount = passed->size();
  if (config.admin.enabled) {
    admin_ = std::make_unique<admin::AdminServer>(main_.base(), endpoints_, config.admin);
    if (net::Fd adminSocket = takeSocketBoundTo(*passed, snapshot_->adminAddress);
        adminSocket.valid()) {
      admin_->serveOn(std::move(adminSocket));
    } else if (!admin_->listen(snapshot_->adminAddress, error)) {
      log::error("cannot listen on the admin address",
                 {{"address", config.admin.address + ":" + std::to_string(config.admin.port)},
                  {"error", error}});
      return false;
    }
  }
  listening_ = std::make_unique<ListeningSockets>(config.workers, std::move(*passed));
  if (!listening_->open(snapshot_->listenerAddresses, error)) {
    log::error("cannot listen", {{"error", error}});
    return false;
  }
  if (passedCount > 0) {
    log::info("using the listening sockets passed to gatewayd (LISTEN_FDS)",
              {{"sockets", std::to_string(passedCount)}});
  }
  return true;
}

void Server::stopAccepting() {
  for (auto& worker : workers_) {
    worker->post([this, worker = worker.get()] {
      worker->watch({});
      main_.post([this] {
        // Closed only now: a socket closed while a loop still watches it is an fd that loop
        // might see reused.
        if (++stoppedWatching_ == workers_.size()) listening_->close();
      });
    });
  }
}

void Server::onUpgradeSignal(evutil_socket_t, short, void* arg) {
  static_cast<Server*>(arg)->startUpgrade();
}

void Server::startUpgrade() {
  if (shuttingDown_ || state_ != admin::ProcessState::Serving) {
    log::warn(
        "SIGUSR2 refused: an upgrade starts only while serving, not while starting or draining");
    return;
  }
  if (successor_ && !successor_->finished()) {
    log::warn("SIGUSR2 refused: an upgrade is in progress",
              {{"new_pid", std::to_string(successor_->pid())}});
    return;
  }
  std::vector<HandedSocket> sockets;
  for (const WatchedSocket& socket : listening_->all()) {
    sockets.push_back({socket.fd, "listener"});
  }
  if (admin_) sockets.push_back({admin_->listeningFd(), "admin"});
  successor_ = std::make_unique<Successor>(
      main_.base(),
      Successor::Events{
          [this](pid_t pid, const std::string& status) { successorServing(pid, status); },
          [this](const std::string& why) {
            log::error("upgrade failed: still serving with this process",
                       {{"new_pid", std::to_string(successor_->pid())}, {"reason", why}});
          }},
      Successor::kReadyTimeout);
  std::string error;
  if (!successor_->start(executable_, sockets, error)) {
    log::error("upgrade failed: cannot start the new gatewayd; still serving with this process",
               {{"binary", executable_.path}, {"error", error}});
    successor_.reset();
    return;
  }
  log::info("upgrade: started the new gatewayd; serving until it does",
            {{"binary", executable_.path}, {"new_pid", std::to_string(successor_->pid())}});
}

void Server::successorServing(pid_t pid, const std::string& status) {
  log::info("upgrade: the new gatewayd serves; this one stops accepting and drains",
            {{"new_pid", std::to_string(pid)}, {"status", status}});
  notifier_.handOver(pid, status);
  handedOver_ = true;
  watchdogTimer_.reset();  // the successor pings systemd's watchdog now
  beginShutdown();
}

void Server::workerDrained(std::size_t index, const observability::WorkerMetrics& last) {
  workerGone_[index] = true;
  finishedWorkers_.merge(last);
  if (++drained_ == workers_.size()) main_.stop();
}

void Server::onDrainProgress(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  auto left = std::make_shared<std::size_t>(0);
  self->askWorkers<std::size_t>(
      [](Worker& worker) { return worker.openConnections(); },
      [left](std::size_t open) { *left += open; },
      [self, left] {
        self->notifier_.status("draining: " + counted(*left, "connection") + " left");
      });
}

void Server::onDrainTimeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  log::warn("drain timeout reached: closing remaining connections");
  for (auto& worker : self->workers_) worker->stopAsync();
  self->main_.stop();
}

template <typename T>
void Server::askWorkers(std::function<T(Worker&)> read, std::function<void(T)> each,
                        std::function<void()> done) {
  struct Asking {
    std::function<T(Worker&)> read;
    std::function<void(T)> each;
    std::function<void()> done;
    std::size_t waiting = 0;
  };
  auto asking = std::make_shared<Asking>(Asking{std::move(read), std::move(each), std::move(done)});
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (workerGone_[i]) continue;
    ++asking->waiting;
    Worker* worker = workers_[i].get();
    worker->post([this, worker, asking] {
      auto answer = std::make_shared<T>(asking->read(*worker));
      main_.post([asking, answer] {
        asking->each(std::move(*answer));
        if (--asking->waiting == 0) asking->done();
      });
    });
  }
  if (asking->waiting == 0) asking->done();
}

void Server::collectMetrics(std::function<void(std::string)> done) {
  // The workers that have finished count from now on; those still running answer below.
  auto total = std::make_shared<observability::WorkerMetrics>(snapshot_->metricsLayout);
  total->merge(finishedWorkers_);
  askWorkers<observability::WorkerMetrics>(
      [](Worker& worker) { return worker.metricsSnapshot(); },
      [total](observability::WorkerMetrics shard) { total->merge(shard); },
      [this, total, done = std::move(done)] { done(renderMetrics(*total)); });
}

std::string Server::renderMetrics(const observability::WorkerMetrics& total) const {
  observability::GlobalMetrics global;
  global.version = GATEWAYD_VERSION;
  global.config_generation = snapshot_->generation;
  global.config_reloads_success = reloadsApplied_;
  global.config_reloads_failure = reloadsRefused_;
  if (accessLog_) global.log_lines_dropped = accessLog_->droppedLines();
  if (spanExporter_) {
    global.trace_spans_exported = spanExporter_->exported();
    global.trace_spans_dropped = spanExporter_->dropped();
  }
  const int64_t now = wallClockMs();
  for (std::size_t u = 0; u < health_->upstreamCount(); ++u) {
    auto& healthy = global.backend_healthy.emplace_back();
    for (std::size_t b = 0; b < health_->spec(u).backends.size(); ++b) {
      healthy.push_back(health_->usable(u, b, now));
    }
  }
  if (snapshot_->config.redis && redisStates_) {
    const auto counts = redisStates_->count();
    global.redis_workers.emplace();
    std::copy(counts.begin(), counts.end(), global.redis_workers->begin());
  }
  return observability::textExposition(
      observability::ScrapeCollectable(total, global, observability::sampleProcess()));
}

}  // namespace gw::runtime
