#include "gateway/runtime/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "gateway/core/log.h"
#include "gateway/proxy/connection.h"

namespace gw::runtime {

namespace log = core::log;

namespace {
// Accepts per readiness event, so one busy listener cannot starve the loop.
constexpr int kAcceptBatch = 64;

proxy::ServedConfig servedConfig(const Snapshot& snapshot) {
  return {snapshot.config,           *snapshot.router,
          snapshot.backendAddresses, snapshot.upstreamTls,
          snapshot.upstreamLoads,    snapshot.routeGates,
          snapshot.metricsLayout,    snapshot.accessLogFormat.get(),
          snapshot.unrouted};
}

// What a worker's generation keeps alive: the snapshot it serves and the health board its
// clusters report to.
struct Served {
  std::shared_ptr<const Snapshot> snapshot;
  std::shared_ptr<upstream::HealthBoard> health;
};
}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const Snapshot> snapshot,
               std::shared_ptr<upstream::HealthBoard> health, const proxy::SharedServices& services)
    : index_(index),
      snapshot_(std::move(snapshot)),
      redisStates_(services.redisStates),
      retiredRedisTimer_(evtimer_new(reactor_.base(), &Worker::onRetiredRedis, this)),
      redis_(snapshot_->config.redis ? newRedis(*snapshot_->config.redis) : nullptr),
      context_(index, reactor_.base(), dispatcher_, servedConfig(*snapshot_), *health,
               std::make_shared<Served>(Served{snapshot_, health}), snapshot_->generation, services,
               *this),
      acceptPause_(reactor_.base(), "proxy worker " + std::to_string(index)) {
  if (context_.accessLog() || context_.spans()) {
    // Lines and spans leave when a batch fills or, on a quiet worker, at the latest this late.
    logFlushTimer_.reset(event_new(base(), -1, EV_PERSIST, &Worker::onLogFlush, this));
    constexpr timeval kFlushEvery{0, observability::AccessLogBuffer::kMaxAgeMs * 1000};
    event_add(logFlushTimer_.get(), &kFlushEvery);
  }
}

Worker::~Worker() {
  reactor_.join();
  stopNow();
}

void Worker::watch(const std::vector<WatchedSocket>& sockets) {
  acceptPause_.cancel();  // it holds the events about to be freed
  acceptEvents_.clear();
  watched_ = sockets;
  if (draining_) watched_.clear();
  for (const WatchedSocket& socket : watched_) {
    acceptEvents_.emplace_back(
        event_new(base(), socket.fd, EV_READ | EV_PERSIST, &Worker::onAccept, this));
    if (!acceptsHeld_) event_add(acceptEvents_.back().get(), nullptr);
  }
  drainConnectionsOfRemovedListeners();
}

void Worker::drainConnectionsOfRemovedListeners() {
  // A socket no worker watches any longer is being removed (still open until every worker has
  // let go of it, so its number names no other socket yet). Its connections drain as at
  // shutdown: an idle one closes now, a busy one after its response.
  const auto watched = [&](int fd) {
    return std::any_of(watched_.begin(), watched_.end(),
                       [fd](const WatchedSocket& socket) { return socket.fd == fd; });
  };
  std::vector<proxy::Connection*> leaving;
  for (const auto& connection : connections_) {
    if (connection->acceptedOn >= 0 && !watched(connection->acceptedOn)) {
      leaving.push_back(connection.get());
    }
  }
  for (proxy::Connection* connection : leaving) connection->drain();
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

void Worker::serve(std::shared_ptr<const Snapshot> snapshot,
                   std::shared_ptr<upstream::HealthBoard> health) {
  snapshot_ = std::move(snapshot);
  connectRedis(snapshot_->config);  // before the generation: its plugins' states may use it
  context_.serve(servedConfig(*snapshot_), *health,
                 std::make_shared<Served>(Served{snapshot_, health}), snapshot_->generation);
}

void Worker::connectRedis(const config::Config& config) {
  if (redis_ && config.redis && redis_->config().sameConnection(*config.redis)) {
    redis_->renameKeys(*config.redis);
    return;
  }
  std::unique_ptr<redis::Connection> replaced = std::move(redis_);
  if (replaced) replaced->retire();
  if (config.redis) {
    redis_ = newRedis(*config.redis);
    // The plugins' states a reload keeps loaded their scripts on the old connection.
    if (replaced) redis_->useScriptsOf(*replaced);
  } else {
    dispatcher_.setRedis(nullptr);
    if (redisStates_) redisStates_->set(index_, redis::State::Connecting);
  }
  if (!replaced) return;
  // Twice command_timeout on, every command it has in flight got its reply or its Timeout.
  const auto wait =
      std::chrono::duration_cast<std::chrono::microseconds>(replaced->config().command_timeout * 2);
  const timeval delay{static_cast<time_t>(wait.count() / 1'000'000),
                      static_cast<suseconds_t>(wait.count() % 1'000'000)};
  retiredRedis_.push_back(std::move(replaced));
  evtimer_add(retiredRedisTimer_.get(), &delay);
}

std::unique_ptr<redis::Connection> Worker::newRedis(const config::RedisConfig& config) {
  auto connection = std::make_unique<redis::Connection>(
      base(), config, "gatewayd-w" + std::to_string(index_), redisMetrics_, redisStates_, index_);
  dispatcher_.setRedis(connection.get());
  return connection;
}

void Worker::onRetiredRedis(evutil_socket_t, short, void* arg) {
  // Freeing one that still has a command (a NOSCRIPT resend) answers it Disconnected.
  static_cast<Worker*>(arg)->retiredRedis_.clear();
}

observability::WorkerMetrics Worker::metricsSnapshot() const {
  observability::WorkerMetrics copy = context_.metricsTotal();
  copy.redis.merge(redisMetrics_);
  copy.downstream_connections = static_cast<int64_t>(connections_.size());
  const auto clusters = context_.current().clusters();
  for (std::size_t i = 0; i < clusters.size(); ++i) {
    copy.upstreams[i].active_connections = static_cast<int64_t>(clusters[i]->leasedConnections());
    copy.upstreams[i].idle_connections = static_cast<int64_t>(clusters[i]->idleConnections());
  }
  return copy;
}

void Worker::onLogFlush(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->context_.flushTelemetry(false);
}

void Worker::onAccept(evutil_socket_t fd, short, void* arg) {
  static_cast<Worker*>(arg)->acceptAll(fd);
}

void Worker::acceptAll(int listenFd) {
  const std::shared_ptr<const net::TlsContext>* tls = nullptr;
  for (const WatchedSocket& socket : watched_) {
    if (socket.fd == listenFd) tls = &snapshot_->listenerTls[socket.listener];
  }
  for (int i = 0; i < kAcceptBatch; ++i) {
    if (connections_.size() >= snapshot_->config.limits.max_connections_per_worker) {
      holdAccepting();
      return;
    }
    sockaddr_storage peer;
    socklen_t length = sizeof peer;
    int fd = ::accept4(listenFd, reinterpret_cast<sockaddr*>(&peer), &length,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors: pause. Otherwise none is waiting (EAGAIN), or one was aborted before
      // we took it: the next readiness tells.
      acceptPause_.pauseOn(errno, acceptEvents_);
      return;
    }
    acceptPause_.accepted();
    net::setNoDelay(fd);
    adopt(net::Fd(fd), reinterpret_cast<const sockaddr*>(&peer), tls ? *tls : nullptr, listenFd);
  }
}

void Worker::adopt(net::Fd fd, const sockaddr* peer, std::shared_ptr<const net::TlsContext> tls,
                   int acceptedOn) {
  ++context_.metrics().downstream_connections_accepted;
  auto connection =
      std::make_unique<proxy::Connection>(context_, std::move(fd), peer, std::move(tls));
  proxy::Connection& ref = *connection;
  ref.acceptedOn = acceptedOn;
  connections_.push_front(std::move(connection));
  ref.registration = connections_.begin();
  ref.start();
}

void Worker::connectionClosed(proxy::Connection& connection) {
  std::unique_ptr<proxy::Connection> owned = std::move(*connection.registration);
  connections_.erase(connection.registration);
  context_.graveyard().bury(std::move(owned));
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
  watched_.clear();
  std::vector<proxy::Connection*> open;
  for (auto& connection : connections_) open.push_back(connection.get());
  for (proxy::Connection* connection : open) connection->drain();
  for (const auto& cluster : context_.current().clusters()) cluster->closeAllIdle();
  checkDrained();
}

void Worker::checkDrained() {
  if (!connections_.empty() || !onDrained_) return;
  for (const auto& cluster : context_.current().clusters()) cluster->closeAllIdle();
  context_.flushTelemetry(true);
  logFlushTimer_.reset();
  auto done = std::move(onDrained_);
  onDrained_ = nullptr;
  reactor_.stop();
  done();
}

void Worker::stopNow() {
  acceptPause_.cancel();
  acceptEvents_.clear();
  watched_.clear();
  while (!connections_.empty()) connections_.front()->close();
  context_.shutDown();
}

}  // namespace gw::runtime
