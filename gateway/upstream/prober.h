#pragma once
// Active health checks. One thread with its own event loop probes every backend of every upstream
// whose spec has an ActiveCheck: a GET over a fresh connection (Connection: close; TLS, resuming
// the backend's last session, on an upstream with `tls:`), judged by the status line alone,
// bounded by the check's timeout. Results go to the HealthBoard, which applies
// the thresholds; workers never wait on a probe.
//
// Backends start healthy (the board's initial state), not "unknown until probed": a restart or a
// reload must not turn away traffic for an interval while nothing is known to be wrong, and
// passive ejection covers a dead backend in the meantime.

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "gateway/core/reactor.h"
#include "gateway/net/socket.h"
#include "gateway/net/tls_client.h"
#include "gateway/upstream/health.h"

namespace gw::upstream {

class Prober {
 public:
  // Called on the prober's thread when a backend's active verdict flips.
  using OnChange = std::function<void(std::size_t upstream, std::size_t backend, bool healthy)>;

  // `addresses`: per upstream, per backend, in the board's order (the shape of
  // runtime::Snapshot::backendAddresses). `tls`: per upstream, its TLS client side or null (the
  // shape of runtime::Snapshot::upstreamTls); empty: every upstream is plain HTTP. The board must
  // outlive the prober. Throws std::invalid_argument when a shape does not match the board.
  Prober(HealthBoard& board, const std::vector<std::vector<net::SocketAddress>>& addresses,
         OnChange onChange = {},
         const std::vector<std::shared_ptr<const net::TlsClientContext>>& tls = {});
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Starts the thread. Each backend's first probe comes after a random delay below
  // min(interval, 1 s), so a gateway with many backends does not open all its probes at once.
  void start();
  // Abandons probes in flight and joins the thread. Idempotent; the destructor calls it.
  void stop();

 private:
  struct Probe;

  HealthBoard& board_;
  OnChange onChange_;
  core::Reactor reactor_;
  // After reactor_: probes own events on its loop, so they must go first.
  std::vector<std::unique_ptr<Probe>> probes_;
  bool running_ = false;
};

// Reads the start of a response, "HTTP/1.x SP 3DIGIT" followed by SP or CR. Returns the status
// code (100..599), 0 when the bytes so far are a valid beginning but too short to tell, or -1 when
// they cannot be a status line.
int parseStatusLine(std::string_view bytes);

}  // namespace gw::upstream
