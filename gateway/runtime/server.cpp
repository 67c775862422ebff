#include "gateway/runtime/server.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <utility>

#include "gateway/core/clock.h"
#include "gateway/core/json.h"
#include "gateway/core/log.h"
#include "gateway/observability/exposition.h"
#include "gateway/observability/process_metrics.h"
#include "gateway/plugin/plugin.h"
#include "gateway/plugin/registry.h"

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
      health_(healthSpecs(*snapshot_)),
      endpoints_(snapshot_->config, *snapshot_->plugins, health_, *this),
      finishedWorkers_(snapshot_->metricsLayout) {}

Server::~Server() {
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
        log::error("cannot open the access log", {{"path", log.path}, {"error", sink.error().message}});
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
  if (config.admin.enabled) {
    admin_ = std::make_unique<admin::AdminServer>(main_.base(), endpoints_, config.admin);
    std::string error;
    if (!admin_->listen(snapshot_->adminAddress, error)) {
      log::error("cannot listen on the admin address",
                 {{"address", config.admin.address + ":" + std::to_string(config.admin.port)},
                  {"error", error}});
      return 1;
    }
  }
  const proxy::SharedServices services{health_, accessLog_.get(), spanExporter_.get()};
  for (unsigned i = 0; i < config.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, snapshot_, services));
    std::string error;
    if (!workers_.back()->listening(error)) {
      log::error("cannot listen", {{"error", error}});
      return 1;
    }
  }
  workerGone_.assign(workers_.size(), false);
  const bool anyActiveCheck = std::any_of(config.upstreams.begin(), config.upstreams.end(),
                                          [](const auto& u) { return u.active_check.has_value(); });
  if (anyActiveCheck) {
    prober_ = std::make_unique<upstream::Prober>(
        health_, snapshot_->backendAddresses, [this](std::size_t u, std::size_t b, bool healthy) {
          const auto& spec = health_.spec(u);
          log::write(healthy ? log::Level::Info : log::Level::Warn,
                     healthy ? "backend passes its health check again" : "backend failed its health check",
                     {{"upstream", spec.name}, {"backend", spec.backends[b]}});
        },
        snapshot_->upstreamTls);
    prober_->start();
  }
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
  log::info("gatewayd started",
            {{"version", GATEWAYD_VERSION},
             {"workers", std::to_string(config.workers)},
             {"listeners", listeners},
             {"admin", admin_ ? config.admin.address + ":" + std::to_string(admin_->port()) : "off"},
             {"config", config.source}});
  main_.run();
  admin_.reset();
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
  // Reserved: SIGHUP will reload the configuration, SIGUSR2 may start an upgrade. The rest end a
  // process by default although nothing here asked for them (timers, profilers, I/O and power
  // notices, Ctrl-Z): each is logged and ignored.
  for (int signal :
       {SIGHUP, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT, SIGTSTP, SIGXFSZ}) {
    handle(signal, &Server::onIgnoredSignal);
  }
  for (int signal = SIGRTMIN; signal <= SIGRTMAX; ++signal) {
    handle(signal, &Server::onIgnoredSignal);
  }
}

void Server::onIgnoredSignal(evutil_socket_t signal, short, void*) {
  const std::string name = signalName(static_cast<int>(signal));
  if (signal == SIGHUP) {
    log::warn(
        "SIGHUP: reloading the configuration is not supported yet; still serving the "
        "running one (restart to apply a new one)",
        {{"signal", name}});
  } else {
    log::warn("signal ignored", {{"signal", name}});
  }
}

void Server::onLogFlush(evutil_socket_t, short, void*) { log::flushSuppressed(); }

void Server::workerStarted() {
  if (++started_ == workers_.size() && state_ == admin::ProcessState::Starting) {
    state_ = admin::ProcessState::Serving;
    notifier_.ready(servingStatus());
  }
}

std::string Server::servingStatus() const {
  const config::Config& config = snapshot_->config;
  return "serving: " + counted(config.routes.size(), "route") + ", " +
         counted(config.upstreams.size(), "upstream") + ", " + counted(workers_.size(), "worker") +
         ", generation " + std::to_string(snapshot_->generation);
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
  log::info("shutdown signal received, draining", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
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
  notifier_.stopping("draining: finishing open connections (at most " +
                     std::to_string(snapshot_->config.drain_timeout.count()) + " ms)");
  drainProgressTimer_.reset(
      event_new(main_.base(), -1, EV_PERSIST, &Server::onDrainProgress, this));
  constexpr timeval kEverySecond{1, 0};
  event_add(drainProgressTimer_.get(), &kEverySecond);
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
  if (accessLog_) global.log_lines_dropped = accessLog_->droppedLines();
  if (spanExporter_) {
    global.trace_spans_exported = spanExporter_->exported();
    global.trace_spans_dropped = spanExporter_->dropped();
  }
  const int64_t now = wallClockMs();
  for (std::size_t u = 0; u < health_.upstreamCount(); ++u) {
    auto& healthy = global.backend_healthy.emplace_back();
    for (std::size_t b = 0; b < health_.spec(u).backends.size(); ++b) {
      healthy.push_back(health_.usable(u, b, now));
    }
  }
  return observability::textExposition(
      observability::ScrapeCollectable(total, global, observability::sampleProcess()));
}

}  // namespace gw::runtime
