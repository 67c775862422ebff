#include "gateway/config/snapshot.h"

namespace gw::config {

std::shared_ptr<const Snapshot> buildSnapshot(Config config, std::vector<Diagnostic>& errors) {
  auto snapshot = std::make_shared<Snapshot>();
  std::string error;
  for (const auto& listener : config.listeners) {
    auto address = net::resolve(listener.address, listener.port, error);
    if (!address) {
      errors.push_back({listener.where, error});
      continue;
    }
    snapshot->listenerAddresses.push_back(*address);
  }
  for (const auto& upstream : config.upstreams) {
    auto& resolved = snapshot->backendAddresses.emplace_back();
    for (const auto& backend : upstream.backends) {
      auto address = net::resolve(backend.host, backend.port, error);
      if (!address) {
        errors.push_back({backend.where, error});
        continue;
      }
      resolved.push_back(*address);
    }
  }
  if (!errors.empty()) return nullptr;
  snapshot->config = std::move(config);
  snapshot->router = std::make_unique<proxy::Router>(snapshot->config);
  return snapshot;
}

}  // namespace gw::config
