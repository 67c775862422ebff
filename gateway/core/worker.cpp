#include "gateway/core/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "gateway/core/log.h"
#include "gateway/proxy/connection.h"
#include "gateway/proxy/router.h"

namespace gw::core {

namespace {
// Accepts per readiness event, so one busy listener cannot starve the loop.
constexpr int kAcceptBatch = 64;
}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const runtime::Snapshot> snapshot,
               const WorkerServices& services)
    : index_(index),
      snapshot_(std::move(snapshot)),
      graveyard_(reactor_.base()),
      timeouts_(reactor_.base()),
      acceptPause_(reactor_.base(), "proxy worker " + std::to_string(index)),
      metrics_(snapshot_->metricsLayout) {
  const config::Limits& limits = snapshot_->config.limits;
  headLimits_ = {limits.request_line_bytes, limits.header_bytes, limits.header_count};
  upstreamHeadLimits_ = {limits.request_line_bytes, limits.upstream_header_bytes,
                         limits.upstream_header_count};
  headerTimeout_ = timeouts_.get(limits.client_header_timeout);
  bodyTimeout_ = timeouts_.get(limits.client_body_timeout);
  idleTimeout_ = timeouts_.get(limits.idle_timeout);

  // The first worker claims each address, so a second gatewayd on it fails to start instead of
  // splitting the traffic (net::PortSharing); the others join the claimed port.
  const net::PortSharing sharing =
      index_ == 0 ? net::PortSharing::Claim : net::PortSharing::ReusePort;
  for (const auto& address : snapshot_->listenerAddresses) {
    auto fd = net::listenOn(address, sharing, listenError_);
    if (!fd) break;
    acceptEvents_.emplace_back(
        event_new(base(), fd->get(), EV_READ | EV_PERSIST, &Worker::onAccept, this));
    event_add(acceptEvents_.back().get(), nullptr);
    listenFds_.push_back(std::move(*fd));
  }
  const auto& upstreams = snapshot_->config.upstreams;
  for (std::size_t i = 0; i < upstreams.size(); ++i) {
    clusters_.push_back(std::make_unique<upstream::Cluster>(upstreams[i], snapshot_->backendAddresses[i],
                                                            base(), graveyard_, timeouts_, upstreamHeadLimits_, upstreamBlocks_,
                                                            metrics_.upstreams[i], services.health, i));
  }
  auto addRoute = [&](const config::RouteConfig& route) {
    routeTimeouts_.push_back({timeouts_.get(route.timeouts.connect), timeouts_.get(route.timeouts.read),
                              timeouts_.get(route.timeouts.send)});
    auto& views = pluginStateViews_.emplace_back();
    for (const auto& binding : route.plugins) {
      pluginStates_.push_back(
          plugin::factoryOf(binding).makeWorkerState(plugin::settingsOf(binding), dispatcher_));
      views.push_back(pluginStates_.back().get());
    }
  };
  for (const auto& route : snapshot_->config.routes) addRoute(route);
  addRoute(snapshot_->unrouted);  // at unroutedIndex()
  if (services.spans) spans_.emplace(*services.spans);
  if (services.accessLog) {
    accessLog_ = std::make_unique<observability::AccessLogBuffer>(*services.accessLog);
  }
  if (accessLog_ || spans_) {
    // Lines and spans leave when a batch fills or, on a quiet worker, at the latest this late.
    logFlushTimer_.reset(event_new(base(), -1, EV_PERSIST, &Worker::onLogFlush, this));
    constexpr timeval kFlushEvery{0, observability::AccessLogBuffer::kMaxAgeMs * 1000};
    event_add(logFlushTimer_.get(), &kFlushEvery);
  }
  std::random_device random;
  idPrefix_ = (random() & 0xffffff00u) | (index_ & 0xffu);
}

Worker::~Worker() {
  reactor_.join();
  stopNow();
}

bool Worker::listening(std::string& error) const {
  error = listenError_;
  return listenError_.empty();
}

void Worker::start() { reactor_.start(); }

void Worker::drainAsync(std::function<void()> onDone) {
  reactor_.post([this, onDone = std::move(onDone)]() mutable {
    onDrained_ = std::move(onDone);
    beginDrain();
  });
}

void Worker::stopAsync() {
  reactor_.post([this] {
    stopNow();
    reactor_.stop();
  });
}

int64_t Worker::nowUs() const {
  timeval now;
  event_base_gettimeofday_cached(base(), &now);
  return int64_t(now.tv_sec) * 1'000'000 + now.tv_usec;
}

observability::WorkerMetrics Worker::metricsSnapshot() const {
  observability::WorkerMetrics copy = metrics_;
  copy.downstream_connections = static_cast<int64_t>(connections_.size());
  for (std::size_t i = 0; i < clusters_.size(); ++i) {
    copy.upstreams[i].active_connections = static_cast<int64_t>(clusters_[i]->leasedConnections());
    copy.upstreams[i].idle_connections = static_cast<int64_t>(clusters_[i]->idleConnections());
  }
  return copy;
}

void Worker::formatRequestId(uint64_t seq, char (&out)[kRequestIdLength]) const {
  // By hand: snprintf costs more than the rest of the access log line's ids together.
  constexpr char kHex[] = "0123456789abcdef";
  uint32_t prefix = idPrefix_;
  for (int i = 7; i >= 0; --i, prefix >>= 4) out[i] = kHex[prefix & 0xf];
  for (int i = 15; i >= 8; --i, seq >>= 4) out[i] = kHex[seq & 0xf];
}

std::string Worker::formatRequestId(uint64_t seq) const {
  char text[kRequestIdLength];
  formatRequestId(seq, text);
  return {text, sizeof text};
}

void Worker::onLogFlush(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->flushTelemetry(false);
}

void Worker::flushTelemetry(bool force) {
  if (accessLog_ && (force || accessLog_->due(nowMs()))) accessLog_->flush();
  if (spans_) spans_->flush();
}

void Worker::onAccept(evutil_socket_t fd, short, void* arg) { static_cast<Worker*>(arg)->acceptAll(fd); }

void Worker::acceptAll(int listenFd) {
  for (int i = 0; i < kAcceptBatch; ++i) {
    if (connections_.size() >= snapshot_->config.limits.max_connections_per_worker) {
      holdAccepting();
      return;
    }
    sockaddr_storage peer;
    socklen_t length = sizeof peer;
    int fd = ::accept4(listenFd, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors: pause. Otherwise none is waiting (EAGAIN), or one was aborted before
      // we took it: the next readiness tells.
      acceptPause_.pauseOn(errno, acceptEvents_);
      return;
    }
    acceptPause_.accepted();
    net::setNoDelay(fd);
    adopt(net::Fd(fd), reinterpret_cast<const sockaddr*>(&peer));
  }
}

void Worker::adopt(net::Fd fd, const sockaddr* peer) {
  ++metrics_.downstream_connections_accepted;
  auto connection = std::make_unique<proxy::Connection>(*this, std::move(fd), peer);
  proxy::Connection& ref = *connection;
  connections_.push_front(std::move(connection));
  ref.registration = connections_.begin();
  ref.start();
}

void Worker::connectionClosed(proxy::Connection& connection) {
  std::unique_ptr<proxy::Connection> owned = std::move(*connection.registration);
  connections_.erase(connection.registration);
  graveyard_.bury(std::move(owned));
  if (draining_) {
    checkDrained();
  } else if (acceptsHeld_) {
    acceptsHeld_ = false;  // a place is free: the next waiting connection may come in
    for (const auto& event : acceptEvents_) event_add(event.get(), nullptr);
  }
}

void Worker::holdAccepting() {
  if (acceptsHeld_) return;
  acceptsHeld_ = true;
  for (const auto& event : acceptEvents_) event_del(event.get());
  log::warn("connection limit reached: new connections wait until one closes",
            {{"worker", std::to_string(index_)},
             {"max_connections_per_worker",
              std::to_string(snapshot_->config.limits.max_connections_per_worker)}});
}

void Worker::beginDrain() {
  draining_ = true;
  acceptPause_.cancel();
  acceptEvents_.clear();
  listenFds_.clear();
  std::vector<proxy::Connection*> open;
  for (auto& connection : connections_) open.push_back(connection.get());
  for (proxy::Connection* connection : open) connection->drain();
  for (auto& cluster : clusters_) cluster->closeAllIdle();
  checkDrained();
}

void Worker::checkDrained() {
  if (!connections_.empty() || !onDrained_) return;
  for (auto& cluster : clusters_) cluster->closeAllIdle();
  flushTelemetry(true);
  logFlushTimer_.reset();
  auto done = std::move(onDrained_);
  onDrained_ = nullptr;
  reactor_.stop();
  done();
}

void Worker::stopNow() {
  acceptPause_.cancel();
  acceptEvents_.clear();
  listenFds_.clear();
  while (!connections_.empty()) connections_.front()->close();
  flushTelemetry(true);  // the exchanges just cut are logged too
  backgroundFetches_.abortAll();
  for (auto& cluster : clusters_) cluster->closeAllIdle();
  graveyard_.reap();
}

}  // namespace gw::core
