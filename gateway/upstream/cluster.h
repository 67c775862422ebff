#pragma once
// One upstream as one worker sees it: its backends, their idle keep-alive connections and the
// load balancer's state. Owned by one worker thread; nothing here is shared or locked.

#include <event2/event.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/core/graveyard.h"
#include "gateway/core/timeouts.h"
#include "gateway/http/parser.h"
#include "gateway/net/socket.h"
#include "gateway/upstream/connection.h"

namespace gw::upstream {

struct Backend {
  const config::BackendConfig* config = nullptr;
  net::SocketAddress address;
  std::string authority;  // "host:port", the Host sent when a route does not preserve it
  int64_t currentWeight = 0;
  int64_t downUntilMs = 0;  // skipped by the balancer until then
  std::vector<std::unique_ptr<Connection>> idle;  // most recently used last
};

class Cluster {
 public:
  Cluster(const config::UpstreamConfig& config, std::vector<net::SocketAddress> addresses,
          event_base* base, core::Graveyard& graveyard, core::TimeoutCache& timeouts,
          const http::HeadLimits& responseLimits, core::BlockRecycler& blocks);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const config::UpstreamConfig& config() const { return config_; }
  std::size_t backendCount() const { return backends_.size(); }

  // Smooth weighted round-robin (as nginx): over backends not marked down and not in `tried`
  // (bit i = backend i). When every candidate is down, the one down longest is tried anyway.
  Backend* pick(uint64_t tried);
  std::size_t indexOf(const Backend& backend) const;

  // An idle pooled connection to this backend, or nullptr.
  std::unique_ptr<Connection> takeIdle(Backend& backend);
  // A new connection whose connect is in progress; nullptr with err set on immediate failure.
  std::unique_ptr<Connection> connect(Backend& backend, int& err);
  // A connection whose exchange finished cleanly: pooled if there is room, closed otherwise.
  void release(std::unique_ptr<Connection> connection);
  // Closes a connection (error, or not reusable). Memory is freed after the callbacks unwind.
  void retire(std::unique_ptr<Connection> connection);
  // An idle connection expired or the backend closed it.
  void dropIdle(Connection& connection);
  void closeAllIdle();

  void markDown(Backend& backend);
  void markUp(Backend& backend) { backend.downUntilMs = 0; }

  const timeval* idleTimeout() const { return idleTimeout_; }

 private:
  int64_t nowMs() const;

  const config::UpstreamConfig& config_;
  event_base* base_;
  core::Graveyard& graveyard_;
  const http::HeadLimits& responseLimits_;
  core::BlockRecycler& blocks_;
  const timeval* idleTimeout_;
  std::vector<Backend> backends_;
};

}  // namespace gw::upstream
