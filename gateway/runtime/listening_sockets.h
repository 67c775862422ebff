#pragma once
// The process's listening sockets, per listener address: the sockets the workers accept on. The
// set owns them; workers only watch them (borrowed fds), so a worker can be told to watch another
// list later while the set decides when a socket closes. Main thread only.
//
// An address gets either the sockets passed to this process for it (systemd socket activation, or
// the previous gatewayd of an upgrade; workers share them) or sockets opened here, one per worker
// with SO_REUSEPORT, the first one claiming the address (net::PortSharing).

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "gateway/net/socket.h"

namespace gw::runtime {

// A socket a worker watches, and the listener (index into the addresses) it accepts for.
struct WatchedSocket {
  int fd = -1;
  std::size_t listener = 0;
};

// A listening socket this process was given, with the address it is bound to.
struct InheritedSocket {
  net::SocketAddress address;
  net::Fd fd;
};

class ListeningSockets {
 public:
  // `inherited`: sockets passed to the process, used for the addresses they are bound to.
  ListeningSockets(unsigned workers, std::vector<InheritedSocket> inherited);

  // The first call: the sockets of every address, inherited or opened. False with an error
  // naming the address when one cannot be opened, or when an inherited socket matches no address
  // (nothing is kept open then).
  bool open(const std::vector<net::SocketAddress>& addresses, std::string& error);
  // A new list of addresses (a reload): the sockets of an address that stays are kept, never
  // closed, so no connection to it is refused; the added ones are opened. Returns the sockets of
  // the removed addresses, to be closed once no worker watches them any longer, or nullopt with an
  // error when an added address cannot be opened (the set is unchanged then).
  std::optional<std::vector<net::Fd>> update(const std::vector<net::SocketAddress>& addresses,
                                             std::string& error);
  // What worker `index` watches: every socket of every address at least once across the workers.
  std::vector<WatchedSocket> forWorker(unsigned index) const;
  // Every socket with its listener index, for a successor process.
  std::vector<WatchedSocket> all() const;
  // Closes every socket (after the workers stopped watching them).
  void close() { groups_.clear(); }

 private:
  struct Group {
    net::SocketAddress address;
    std::vector<net::Fd> fds;
  };
  // The inherited sockets of `address`, or new ones; nullopt with an error.
  std::optional<Group> openGroup(const net::SocketAddress& address, std::string& error);

  unsigned workers_;
  std::vector<InheritedSocket> inherited_;  // not yet given to an address
  std::vector<Group> groups_;               // parallel to the listener addresses
};

}  // namespace gw::runtime
