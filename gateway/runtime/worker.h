#pragma once
// A worker thread: one event loop and everything reached from it — the listening sockets it
// watches (the process's ListeningSockets own them), client connections, upstream clusters with
// their pools, and scratch space reused by every request. Other threads talk to it only through
// post().

#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "gateway/core/accept_pause.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/core/reactor.h"
#include "gateway/net/socket.h"
#include "gateway/observability/metrics.h"
#include "gateway/proxy/worker_context.h"
#include "gateway/redis/connection.h"
#include "gateway/runtime/listening_sockets.h"
#include "gateway/runtime/snapshot.h"
#include "gateway/runtime/worker_dispatcher.h"

namespace gw::runtime {

class Worker final : proxy::ConnectionHome {
 public:
  // Watches no listening socket until watch(). The health board is the process's, shared with
  // the other workers and the prober.
  Worker(unsigned index, std::shared_ptr<const Snapshot> snapshot,
         std::shared_ptr<upstream::HealthBoard> health, const proxy::SharedServices& services);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Accepts on `sockets` from now on, instead of those watched so far (borrowed: the owner keeps
  // them open while they are watched). Before start(), or on this worker's thread.
  void watch(const std::vector<WatchedSocket>& sockets);
  unsigned index() const { return index_; }
  void start();
  void join() { reactor_.join(); }
  // From any thread: stop accepting, close idle connections, finish the rest, then stop.
  void drainAsync(std::function<void()> onDone);
  // From any thread: close everything now and stop.
  void stopAsync();
  // From any thread: runs fn on this worker's loop (control traffic only, e.g. a scrape).
  void post(std::function<void()> fn) { reactor_.post(std::move(fn)); }
  // This thread only (post it): new requests are served by `snapshot`, with `health` as its
  // board; exchanges in flight finish on the configuration they began on.
  void serve(std::shared_ptr<const Snapshot> snapshot,
             std::shared_ptr<upstream::HealthBoard> health);

  // Client connections open on this worker (this thread only).
  std::size_t openConnections() const { return connections_.size(); }
  // A copy of the metric shard with the gauges filled in, for a scrape (this thread only).
  observability::WorkerMetrics metricsSnapshot() const;
  // What the connections of this worker use of it (its thread only).
  proxy::WorkerContext& context() { return context_; }
  event_base* base() const { return reactor_.base(); }
  // A client socket accepted (by this worker's listeners, or handed over by a test harness):
  // the connection is registered and starts reading. This thread only.
  // `tls`: the listener's TLS server side, null for a plain listener; `acceptedOn`: its
  // listening socket.
  void adopt(net::Fd fd, const sockaddr* peer, std::shared_ptr<const net::TlsContext> tls = nullptr,
             int acceptedOn = -1);

 private:
  static void onAccept(evutil_socket_t fd, short what, void* arg);
  static void onLogFlush(evutil_socket_t fd, short what, void* arg);
  void connectionClosed(proxy::Connection& connection) override;
  void acceptAll(int listenFd);
  // At the connection limit: the listeners stop being watched until a connection closes.
  void holdAccepting();
  // After watch(): connections accepted on a socket no longer watched drain.
  void drainConnectionsOfRemovedListeners();
  void beginDrain();
  void checkDrained();
  void stopNow();
  // Connects to the `redis:` block of `config` (none: no connection), keeping the connection
  // when the block would make the same one; a replaced connection finishes its commands in flight
  // and is freed after command_timeout.
  void connectRedis(const config::Config& config);
  // A connection for `config`, which the dispatcher hands to plugins from now on.
  std::unique_ptr<redis::Connection> newRedis(const config::RedisConfig& config);
  static void onRetiredRedis(evutil_socket_t fd, short what, void* arg);

  unsigned index_;
  std::shared_ptr<const Snapshot> snapshot_;
  core::Reactor reactor_;
  WorkerDispatcher dispatcher_{reactor_};
  // Before the context: the plugins' worker states (made with the context's generations) load
  // their scripts on it, and the exchanges cancel their waiters before it goes.
  redis::StateBoard* redisStates_;
  observability::RedisMetrics redisMetrics_;  // shared by the connection and those it replaced
  core::EventPtr retiredRedisTimer_;
  std::vector<std::unique_ptr<redis::Connection>> retiredRedis_;  // replaced by a reload
  std::unique_ptr<redis::Connection> redis_;
  proxy::WorkerContext context_;
  core::AcceptPause acceptPause_;
  core::EventPtr logFlushTimer_;  // hands over access log lines and spans on a quiet worker
  std::vector<WatchedSocket> watched_;
  std::vector<core::EventPtr> acceptEvents_;  // parallel to watched_
  std::list<std::unique_ptr<proxy::Connection>> connections_;
  bool draining_ = false;
  bool acceptsHeld_ = false;  // at limits.max_connections_per_worker: not accepting
  std::function<void()> onDrained_;
};

}  // namespace gw::runtime
