#pragma once
// The process: starts the workers, owns the main loop (signals, drain timer), and decides when
// the process exits. Workers are reached only through their post().

#include <memory>
#include <vector>

#include "gateway/config/snapshot.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/core/reactor.h"
#include "gateway/core/worker.h"

namespace gw::core {

class Server {
 public:
  explicit Server(std::shared_ptr<const config::Snapshot> snapshot);
  ~Server();
  // Runs until SIGTERM/SIGINT and the drain that follows; returns the exit code.
  int run();

 private:
  static void onSignal(evutil_socket_t signal, short what, void* arg);
  static void onDrainTimeout(evutil_socket_t, short, void* arg);
  void beginShutdown();
  void workerDrained();

  std::shared_ptr<const config::Snapshot> snapshot_;
  Reactor main_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<EventPtr> signalEvents_;
  EventPtr drainTimer_;
  unsigned drained_ = 0;
  bool shuttingDown_ = false;
};

}  // namespace gw::core
