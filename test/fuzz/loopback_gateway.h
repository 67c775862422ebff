#pragma once
// gatewayd in the fuzzer's process, for the targets that play a peer: a real runtime::Worker
// (never started: the fuzz thread runs its event loop), a client on a socketpair that the worker
// adopts as it adopts an accepted socket — so every byte goes through proxy::Connection, Exchange,
// the upstream pool and connections as in production — and a backend behind a real listening
// socket on 127.0.0.1 (port 0) that the worker's cluster connects to, pools and reuses. Nothing
// leaves the loopback interface, and no input waits for a timer.

#include <netinet/in.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/runtime/worker.h"
#include "gateway/runtime/snapshot.h"
#include "gateway/upstream/health.h"
#include "test/fuzz/http_reader.h"

namespace gw::fuzz {

// One connection the worker opened to the backend, as the backend sees it.
struct BackendConnection {
  explicit BackendConnection(int socket) : fd(socket) {}
  int fd;
  std::string received;
  Reader requests{HTTP_REQUEST};  // what `received` reads as
  llhttp_errno_t error = HPE_OK;  // the first error reading it
  bool ended = false;             // the worker closed (or reset) it
  std::size_t answered = 0;       // requests the target answered on it
  std::string unsent;             // answer bytes its socket did not take yet
};

class LoopbackGateway {
 public:
  // `yaml` names the backend's address as ${BACKEND}; a configuration error is the harness's bug.
  explicit LoopbackGateway(std::string_view yaml);
  LoopbackGateway(const LoopbackGateway&) = delete;
  LoopbackGateway& operator=(const LoopbackGateway&) = delete;

  runtime::Worker& worker() { return *worker_; }
  const runtime::Snapshot& snapshot() const { return *snapshot_; }
  int listener() const { return listener_; }
  // "127.0.0.1:PORT": the Host a backend gets when the route does not preserve the client's.
  const std::string& backendAuthority() const { return backendAuthority_; }

 private:
  int listener_ = -1;
  std::string backendAuthority_;
  std::shared_ptr<const runtime::Snapshot> snapshot_;
  std::shared_ptr<upstream::HealthBoard> health_;
  std::unique_ptr<runtime::Worker> worker_;
};

// One input's worth of traffic: one client connection and the backend connections it causes.
// The destructor closes both peers and requires the worker to let go of everything it held.
class Session {
 public:
  // `clientIp`: the peer address the worker is told (an IPv4 literal).
  Session(LoopbackGateway& gateway, const char* clientIp);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs the worker's loop and serves both peers until nothing moves any more.
  void pump();

  // The client: sends all of `bytes` (pumping while its socket is full); false when the worker
  // closed the connection or stopped reading it for good first.
  bool send(std::string_view bytes);
  // Whether the client reads what the worker writes (false: a client that does not read).
  void clientReads(bool on) { clientReads_ = on; }
  const std::string& clientReceived() const { return clientReceived_; }
  // The worker closed its side of the client connection (EOF or reset).
  bool clientEnded() const { return clientEnded_; }

  // The backend: whether it reads what the worker sends (false: a backend that does not read);
  // `onRequestBytes` runs after new bytes arrived on a connection, to answer them.
  void backendReads(bool on) { backendReads_ = on; }
  std::function<void(BackendConnection&)> onRequestBytes;
  std::vector<std::unique_ptr<BackendConnection>>& backends() { return backends_; }
  // Sends `bytes` on a backend connection as its answer; what its socket does not take now
  // goes when pump() finds room.
  void answer(BackendConnection& connection, std::string_view bytes);
  // The backend's orderly close of its sending side (FIN) once its answer is out: ends a
  // close-delimited body.
  void finishSending(BackendConnection& connection);

  // The client leaves (close): what the worker holds for it must go.
  void closeClient();

 private:
  bool serveBackends();
  bool readClient();

  LoopbackGateway& gateway_;
  int client_ = -1;
  bool clientReads_ = true;
  bool clientEnded_ = false;
  bool tearingDown_ = false;
  std::string clientReceived_;
  bool backendReads_ = true;
  std::vector<std::unique_ptr<BackendConnection>> backends_;
};

}  // namespace gw::fuzz
