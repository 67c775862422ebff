#include "gateway/runtime/listening_sockets.h"

#include <algorithm>
#include <utility>

namespace gw::runtime {

ListeningSockets::ListeningSockets(unsigned workers, std::vector<InheritedSocket> inherited)
    : workers_(std::max(workers, 1u)), inherited_(std::move(inherited)) {}

bool ListeningSockets::open(const std::vector<net::SocketAddress>& addresses, std::string& error) {
  if (!update(addresses, error)) return false;
  if (inherited_.empty()) return true;
  error = "a socket passed to gatewayd (LISTEN_FDS) is bound to " +
          net::formatAddress(inherited_.front().address) +
          ", which is no listener's address in the configuration";
  groups_.clear();
  inherited_.clear();
  return false;
}

std::optional<std::vector<net::Fd>> ListeningSockets::update(
    const std::vector<net::SocketAddress>& addresses, std::string& error) {
  const auto sameAs = [](const net::SocketAddress& address) {
    return [&address](const auto& socket) { return net::sameAddress(socket.address, address); };
  };
  // First open what is new, so that a failure leaves the set as it was.
  std::vector<std::optional<Group>> opened(addresses.size());
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    if (std::any_of(groups_.begin(), groups_.end(), sameAs(addresses[i])) ||
        std::any_of(inherited_.begin(), inherited_.end(), sameAs(addresses[i]))) {
      continue;
    }
    opened[i] = openGroup(addresses[i], error);
    if (!opened[i]) return std::nullopt;
  }
  std::vector<Group> next;
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    if (opened[i]) {
      next.push_back(std::move(*opened[i]));
      continue;
    }
    auto kept = std::find_if(groups_.begin(), groups_.end(), sameAs(addresses[i]));
    if (kept != groups_.end()) {
      next.push_back(std::move(*kept));
      groups_.erase(kept);
      continue;
    }
    Group& passed = next.emplace_back(Group{addresses[i], {}});
    std::erase_if(inherited_, [&](InheritedSocket& socket) {
      if (!net::sameAddress(socket.address, addresses[i])) return false;
      passed.fds.push_back(std::move(socket.fd));
      return true;
    });
  }
  std::vector<net::Fd> removed;
  for (Group& group : groups_) {
    for (net::Fd& fd : group.fds) removed.push_back(std::move(fd));
  }
  groups_ = std::move(next);
  return removed;
}

std::optional<ListeningSockets::Group> ListeningSockets::openGroup(
    const net::SocketAddress& address, std::string& error) {
  Group group{address, {}};
  for (unsigned i = 0; i < workers_; ++i) {
    // The first socket claims the address, so a second gatewayd on it fails to start instead of
    // splitting the traffic; the others join the claimed port.
    auto fd = net::listenOn(address, i == 0 ? net::PortSharing::Claim : net::PortSharing::ReusePort,
                            error);
    if (!fd) return std::nullopt;
    group.fds.push_back(std::move(*fd));
  }
  return group;
}

std::vector<WatchedSocket> ListeningSockets::forWorker(unsigned index) const {
  std::vector<WatchedSocket> watched;
  for (std::size_t listener = 0; listener < groups_.size(); ++listener) {
    const std::vector<net::Fd>& fds = groups_[listener].fds;
    if (fds.empty()) continue;
    // With a socket per worker or more (an upgrade from more workers), each worker takes every
    // workers_-th one, so every socket is watched; with fewer (one passed by systemd), workers
    // share them.
    if (fds.size() >= workers_) {
      for (std::size_t i = index; i < fds.size(); i += workers_) {
        watched.push_back({fds[i].get(), listener});
      }
    } else {
      watched.push_back({fds[index % fds.size()].get(), listener});
    }
  }
  return watched;
}

std::vector<WatchedSocket> ListeningSockets::all() const {
  std::vector<WatchedSocket> every;
  for (std::size_t listener = 0; listener < groups_.size(); ++listener) {
    for (const net::Fd& fd : groups_[listener].fds) every.push_back({fd.get(), listener});
  }
  return every;
}

}  // namespace gw::runtime
