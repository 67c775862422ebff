#include "gateway/upstream/cluster.h"

#include <algorithm>
#include <cerrno>

namespace gw::upstream {

namespace {
// How long a backend that refused or timed out a connect is left out of the rotation.
constexpr int64_t kDownBackoffMs = 1000;
}  // namespace

Cluster::Cluster(const config::UpstreamConfig& config, std::vector<net::SocketAddress> addresses,
                 event_base* base, core::Graveyard& graveyard, core::TimeoutCache& timeouts,
                 const http::HeadLimits& responseLimits, core::BlockRecycler& blocks,
                 observability::UpstreamMetrics& metrics, HealthBoard& health, std::size_t index,
                 std::shared_ptr<const net::TlsClientContext> tls)
    : config_(&config),
      base_(base),
      graveyard_(graveyard),
      responseLimits_(responseLimits),
      blocks_(blocks),
      idleTimeout_(timeouts.get(config.pool.idle_timeout)),
      backends_(config.backends.size()),
      metrics_(&metrics),
      health_(&health),
      index_(index),
      tls_(std::move(tls)) {
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    Backend& b = backends_[i];
    b.config = &config.backends[i];
    b.address = addresses[i];
    b.authority = config::hostPort(b.config->host, b.config->port);
  }
}

Cluster::~Cluster() { closeAllIdle(); }

void Cluster::rebind(const config::UpstreamConfig& config, observability::UpstreamMetrics& metrics,
                     HealthBoard& health, std::size_t index,
                     std::shared_ptr<const net::TlsClientContext> tls) {
  tls_ = std::move(tls);
  config_ = &config;
  for (std::size_t i = 0; i < backends_.size(); ++i) backends_[i].config = &config.backends[i];
  metrics_ = &metrics;
  health_ = &health;
  index_ = index;
}

int64_t Cluster::nowMs() const {
  timeval now;
  event_base_gettimeofday_cached(base_, &now);
  return int64_t(now.tv_sec) * 1000 + now.tv_usec / 1000;
}

Backend* Cluster::pick(uint64_t tried) {
  int64_t now = nowMs();
  Backend* best = nullptr;
  Backend* leastRecentlyDown = nullptr;
  int64_t total = 0;
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    Backend& b = backends_[i];
    if (i < 64 && (tried & (uint64_t(1) << i))) continue;
    if (!health_->usable(index_, i, now)) continue;
    if (b.downUntilMs > now) {
      if (!leastRecentlyDown || b.downUntilMs < leastRecentlyDown->downUntilMs)
        leastRecentlyDown = &b;
      continue;
    }
    b.currentWeight += b.config->weight;
    total += b.config->weight;
    if (!best || b.currentWeight > best->currentWeight) best = &b;
  }
  if (!best) return leastRecentlyDown;
  best->currentWeight -= total;
  return best;
}

std::size_t Cluster::indexOf(const Backend& backend) const {
  return static_cast<std::size_t>(&backend - backends_.data());
}

std::unique_ptr<Connection> Cluster::takeIdle(Backend& backend) {
  if (backend.idle.empty()) return nullptr;
  std::unique_ptr<Connection> connection = std::move(backend.idle.back());
  backend.idle.pop_back();
  connection->markReused();
  ++leased_;
  ++backend.leased;
  ++metrics_->reuses;
  if (counting_) counting_->requestStarted(indexOf(backend));
  return connection;
}

std::unique_ptr<Connection> Cluster::connect(Backend& backend, int& err) {
  net::Fd fd = net::connectNonBlocking(backend.address, err);
  if (err != 0) {
    metrics_->countError(observability::UpstreamErrorKind::Connect);
    return nullptr;
  }
  ++leased_;
  ++backend.leased;
  ++metrics_->connects;
  if (counting_) {
    counting_->requestStarted(indexOf(backend));
    counting_->connectStarted(indexOf(backend));
  }
  return std::make_unique<Connection>(*this, backend, std::move(fd), base_, responseLimits_,
                                      blocks_, tls_);
}

void Cluster::connected(Connection& connection) {
  if (counting_) counting_->connectEnded(indexOf(connection.backend()));
}

void Cluster::release(std::unique_ptr<Connection> connection) {
  Backend& backend = connection->backend();
  --leased_;
  --backend.leased;
  if (counting_) counting_->requestEnded(indexOf(backend));
  // At the connection cap an idle connection here would keep another worker from connecting.
  if (connection->closed() || !connection->clean() ||
      backend.idle.size() >= config_->pool.max_idle_per_backend || atConnectionCap(backend)) {
    bury(std::move(connection));
    return;
  }
  connection->park();
  backend.idle.push_back(std::move(connection));
}

void Cluster::retire(std::unique_ptr<Connection> connection) {
  --leased_;
  --connection->backend().leased;
  if (counting_) counting_->requestEnded(indexOf(connection->backend()));
  bury(std::move(connection));
}

void Cluster::bury(std::unique_ptr<Connection> connection) {
  if (counting_) {
    const std::size_t backend = indexOf(connection->backend());
    if (connection->connecting()) counting_->connectEnded(backend);
    counting_->connectionClosed(backend);
  }
  connection->close();
  graveyard_.bury(std::move(connection));
}

void Cluster::dropIdle(Connection& connection) {
  auto& idle = connection.backend().idle;
  auto found =
      std::find_if(idle.begin(), idle.end(), [&](const auto& c) { return c.get() == &connection; });
  if (found == idle.end()) return;
  std::unique_ptr<Connection> owned = std::move(*found);
  idle.erase(found);
  bury(std::move(owned));
}

void Cluster::closeAllIdle() {
  for (Backend& backend : backends_) {
    while (!backend.idle.empty()) {
      std::unique_ptr<Connection> owned = std::move(backend.idle.back());
      backend.idle.pop_back();
      bury(std::move(owned));
    }
  }
}

std::size_t Cluster::idleConnections() const {
  std::size_t idle = 0;
  for (const Backend& backend : backends_) idle += backend.idle.size();
  return idle;
}

void Cluster::markDown(Backend& backend) { backend.downUntilMs = nowMs() + kDownBackoffMs; }

}  // namespace gw::upstream
