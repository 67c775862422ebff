#pragma once
// Listening sockets passed to this process in systemd's socket-activation protocol (LISTEN_FDS,
// LISTEN_FDNAMES, LISTEN_PID): by systemd (gatewayd.socket) or by the previous gatewayd of an
// upgrade. Each is matched to a listener, or to the admin listener, by the address it is bound to.

#include <optional>
#include <string>
#include <vector>

#include "gateway/net/socket.h"
#include "gateway/runtime/listening_sockets.h"

namespace gw::runtime {

// Takes the passed sockets out of the environment (the variables are removed, the fds made
// close-on-exec and non-blocking: workers share them). Nothing passed: an empty list. nullopt
// with an error when a passed fd is not a listening TCP socket.
std::optional<std::vector<InheritedSocket>> takePassedSockets(std::string& error);

// The socket of `sockets` bound to `address`, removed from the list; an invalid Fd when none is.
net::Fd takeSocketBoundTo(std::vector<InheritedSocket>& sockets, const net::SocketAddress& address);

}  // namespace gw::runtime
