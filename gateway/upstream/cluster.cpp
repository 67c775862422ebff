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
      tls_(std::move(tls)),
      policy_(config.load_balancing.policy) {
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    Backend& b = backends_[i];
    b.config = &config.backends[i];
    b.address = addresses[i];
    b.authority = config::hostPort(b.config->host, b.config->port);
  }
  if (policy_ == config::BalancingPolicy::LeastRequest) candidates_.reserve(backends_.size());
  if (policy_ == config::BalancingPolicy::Hash && !backends_.empty()) {
    std::vector<std::string> names;
    std::vector<uint32_t> weights;
    for (const Backend& b : backends_) {
      names.push_back(b.authority);
      weights.push_back(b.config->weight);
    }
    maglev_.emplace(names, weights);
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

bool Cluster::ready(std::size_t i, uint64_t tried, int64_t now, Backend*& leastRecentlyDown) {
  if (i < 64 && (tried & (uint64_t(1) << i))) return false;
  if (!health_->usable(index_, i, now)) return false;
  Backend& b = backends_[i];
  if (b.downUntilMs <= now) return true;
  if (!leastRecentlyDown || b.downUntilMs < leastRecentlyDown->downUntilMs) leastRecentlyDown = &b;
  return false;
}

Backend* Cluster::pick(uint64_t tried, std::optional<uint64_t> hashKey) {
  const int64_t now = nowMs();
  switch (policy_) {
    case config::BalancingPolicy::RoundRobin:
      break;
    case config::BalancingPolicy::LeastRequest:
      return pickLeastRequest(tried, now);
    case config::BalancingPolicy::Hash:
      if (hashKey && maglev_) return pickHashed(tried, *hashKey, now);
      break;
  }
  return pickRoundRobin(tried, now);
}

Backend* Cluster::pickRoundRobin(uint64_t tried, int64_t now) {
  Backend* best = nullptr;
  Backend* leastRecentlyDown = nullptr;
  int64_t total = 0;
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    if (!ready(i, tried, now, leastRecentlyDown)) continue;
    Backend& b = backends_[i];
    b.currentWeight += b.config->weight;
    total += b.config->weight;
    if (!best || b.currentWeight > best->currentWeight) best = &b;
  }
  if (!best) return leastRecentlyDown;
  best->currentWeight -= total;
  return best;
}

Backend* Cluster::pickLeastRequest(uint64_t tried, int64_t now) {
  candidates_.clear();
  Backend* leastRecentlyDown = nullptr;
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    if (ready(i, tried, now, leastRecentlyDown)) candidates_.push_back(static_cast<uint32_t>(i));
  }
  const std::size_t n = candidates_.size();
  if (n == 0) return leastRecentlyDown;
  if (n == 1) return &backends_[candidates_[0]];
  // Two distinct candidates at random; the second index skips over the first.
  const std::size_t first = random_.next() % n;
  std::size_t second = random_.next() % (n - 1);
  if (second >= first) ++second;
  Backend& a = backends_[candidates_[first]];
  Backend& b = backends_[candidates_[second]];
  // Outstanding requests per unit of weight, compared without division: (leased + 1) / weight,
  // so among idle backends the heavier one wins.
  return (a.leased + 1) * b.config->weight <= (b.leased + 1) * a.config->weight ? &a : &b;
}

Backend* Cluster::pickHashed(uint64_t tried, uint64_t key, int64_t now) {
  // With half the table's owners out, 32 probes all miss once in 4 billion keys.
  constexpr int kProbes = 32;
  Backend* down = nullptr;  // round robin below finds the one down longest itself
  for (int probe = 0; probe < kProbes; ++probe, key = rehash(key)) {
    const uint32_t i = maglev_->backendFor(key);
    if (ready(i, tried, now, down)) return &backends_[i];
  }
  return pickRoundRobin(tried, now);
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
