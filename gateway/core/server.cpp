#include "gateway/core/server.h"

#include <csignal>
#include <string>

#include "gateway/core/log.h"

namespace gw::core {

Server::Server(std::shared_ptr<const config::Snapshot> snapshot) : snapshot_(std::move(snapshot)) {}

Server::~Server() {
  for (auto& worker : workers_) worker->join();
}

int Server::run() {
  const config::Config& config = snapshot_->config;
  for (unsigned i = 0; i < config.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, snapshot_));
    std::string error;
    if (!workers_.back()->listening(error)) {
      log::error("cannot listen", {{"error", error}});
      return 1;
    }
  }
  // A client that vanishes mid-write must not kill the process; writes use MSG_NOSIGNAL too.
  std::signal(SIGPIPE, SIG_IGN);
  for (int signal : {SIGTERM, SIGINT}) {
    signalEvents_.emplace_back(evsignal_new(main_.base(), signal, &Server::onSignal, this));
    event_add(signalEvents_.back().get(), nullptr);
  }
  for (auto& worker : workers_) worker->start();
  std::string listeners;
  for (const auto& listener : config.listeners) {
    if (!listeners.empty()) listeners += ",";
    listeners += listener.address + ":" + std::to_string(listener.port);
  }
  log::info("gatewayd started", {{"version", GATEWAYD_VERSION},
                                 {"workers", std::to_string(config.workers)},
                                 {"listeners", listeners},
                                 {"config", config.source}});
  main_.run();
  for (auto& worker : workers_) worker->join();
  log::info("gatewayd stopped");
  return 0;
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

void Server::beginShutdown() {
  shuttingDown_ = true;
  for (auto& worker : workers_) {
    worker->drainAsync([this] { main_.post([this] { workerDrained(); }); });
  }
  drainTimer_.reset(evtimer_new(main_.base(), &Server::onDrainTimeout, this));
  auto ms = snapshot_->config.drain_timeout.count();
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  evtimer_add(drainTimer_.get(), &tv);
}

void Server::workerDrained() {
  if (++drained_ == workers_.size()) main_.stop();
}

void Server::onDrainTimeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  log::warn("drain timeout reached: closing remaining connections");
  for (auto& worker : self->workers_) worker->stopAsync();
  self->main_.stop();
}

}  // namespace gw::core
