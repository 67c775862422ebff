#pragma once
// Everything a worker needs from one loaded configuration, built and validated on the main
// thread, then shared read-only by every worker. A reload builds a new snapshot beside the old.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/net/socket.h"
#include "gateway/proxy/router.h"

namespace gw::config {

struct Snapshot {
  Config config;
  std::unique_ptr<proxy::Router> router;
  // Per upstream, per backend (same order as in config), resolved once at load.
  std::vector<std::vector<net::SocketAddress>> backendAddresses;
  std::vector<net::SocketAddress> listenerAddresses;
  uint64_t generation = 1;
};

// Compiles routes and resolves addresses. Errors are FILE:LINE:COL diagnostics.
std::shared_ptr<const Snapshot> buildSnapshot(Config config, std::vector<Diagnostic>& errors);

}  // namespace gw::config
