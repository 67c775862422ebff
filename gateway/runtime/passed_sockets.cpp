#include "gateway/runtime/passed_sockets.h"

#include <fcntl.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace gw::runtime {

std::optional<std::vector<InheritedSocket>> takePassedSockets(std::string& error) {
  char** names = nullptr;
  // 1: unset LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID, so that nothing we start takes them.
  const int count = sd_listen_fds_with_names(1, &names);
  if (count < 0) {
    error = std::string("cannot read the passed sockets (LISTEN_FDS): ") + std::strerror(-count);
    return std::nullopt;
  }
  std::vector<InheritedSocket> sockets;
  bool allListening = true;
  for (int i = 0; i < count; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    net::Fd owned(fd);
    const std::string name = names && names[i] ? names[i] : "unknown";
    auto address = net::localAddress(fd);
    if (allListening &&
        (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0 || !address ||
         (address->storage.ss_family != AF_INET && address->storage.ss_family != AF_INET6))) {
      error = "passed fd " + std::to_string(fd) + " (" + name + ") is not a listening TCP socket";
      allListening = false;
    }
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (allListening) sockets.push_back({*address, std::move(owned)});
  }
  if (names) {
    for (int i = 0; i < count; ++i) std::free(names[i]);
    std::free(names);
  }
  if (!allListening) return std::nullopt;
  return sockets;
}

net::Fd takeSocketBoundTo(std::vector<InheritedSocket>& sockets,
                          const net::SocketAddress& address) {
  auto found = std::find_if(sockets.begin(), sockets.end(), [&](const InheritedSocket& socket) {
    return net::sameAddress(socket.address, address);
  });
  if (found == sockets.end()) return {};
  net::Fd fd = std::move(found->fd);
  sockets.erase(found);
  return fd;
}

}  // namespace gw::runtime
