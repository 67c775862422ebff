#include "gateway/runtime/listening_sockets.h"

#include <doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <set>
#include <string>

namespace gw::runtime {
namespace {

net::SocketAddress loopback(uint16_t port) {
  std::string error;
  auto address = net::resolve("127.0.0.1", port, error);
  REQUIRE_MESSAGE(address.has_value(), error);
  return *address;
}

// A loopback address nothing listens on (the kernel picked the port and it was closed again).
net::SocketAddress unusedAddress() {
  std::string error;
  auto probe = net::listenOn(loopback(0), net::PortSharing::Exclusive, error);
  REQUIRE_MESSAGE(probe.has_value(), error);
  return *net::localAddress(probe->get());
}

// A listening socket on `address` as if passed to the process.
InheritedSocket passedSocket(const net::SocketAddress& address,
                             net::PortSharing sharing = net::PortSharing::Exclusive) {
  std::string error;
  auto fd = net::listenOn(address, sharing, error);
  REQUIRE_MESSAGE(fd.has_value(), error);
  return {address, std::move(*fd)};
}

bool isOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

std::set<int> fdsOf(const std::vector<WatchedSocket>& sockets) {
  std::set<int> fds;
  for (const WatchedSocket& socket : sockets) fds.insert(socket.fd);
  return fds;
}

TEST_CASE("ListeningSockets opens one socket per worker and address, each watched once") {
  ListeningSockets sockets(3, {});
  std::string error;
  const auto first = unusedAddress();
  const auto second = unusedAddress();
  REQUIRE_MESSAGE(sockets.open({first, second}, error), error);
  CHECK(sockets.all().size() == 6);
  std::vector<WatchedSocket> watched;
  for (unsigned w = 0; w < 3; ++w) {
    const auto mine = sockets.forWorker(w);
    REQUIRE(mine.size() == 2);
    CHECK(mine[0].listener == 0);
    CHECK(mine[1].listener == 1);
    CHECK(net::sameAddress(*net::localAddress(mine[0].fd), first));
    CHECK(net::sameAddress(*net::localAddress(mine[1].fd), second));
    watched.insert(watched.end(), mine.begin(), mine.end());
  }
  CHECK(fdsOf(watched) == fdsOf(sockets.all()));
  CHECK(fdsOf(watched).size() == 6);
}

TEST_CASE("ListeningSockets claims the address: a second set on it fails, naming it") {
  ListeningSockets sockets(2, {});
  std::string error;
  const auto address = unusedAddress();
  REQUIRE_MESSAGE(sockets.open({address}, error), error);
  ListeningSockets intruder(2, {});
  CHECK_FALSE(intruder.open({address}, error));
  CHECK(error.find("bind " + net::formatAddress(address)) == 0);
}

TEST_CASE("ListeningSockets uses a passed socket for its address, shared by every worker") {
  std::string error;
  const auto address = unusedAddress();
  std::vector<InheritedSocket> inherited;
  inherited.push_back(passedSocket(address));
  const int passedFd = inherited.back().fd.get();
  ListeningSockets sockets(2, std::move(inherited));
  const auto other = unusedAddress();
  REQUIRE_MESSAGE(sockets.open({other, address}, error), error);
  for (unsigned w = 0; w < 2; ++w) {
    const auto mine = sockets.forWorker(w);
    REQUIRE(mine.size() == 2);
    CHECK(mine[1].fd == passedFd);
    CHECK(mine[1].listener == 1);
    CHECK(mine[0].fd != passedFd);
  }
  CHECK(sockets.all().size() == 3);  // two opened for `other`, the passed one
}

TEST_CASE("ListeningSockets spreads more passed sockets than workers over the workers") {
  std::string error;
  const auto address = unusedAddress();
  std::vector<InheritedSocket> inherited;
  inherited.push_back(passedSocket(address, net::PortSharing::Claim));
  inherited.push_back(passedSocket(address, net::PortSharing::ReusePort));
  inherited.push_back(passedSocket(address, net::PortSharing::ReusePort));
  ListeningSockets sockets(2, std::move(inherited));
  REQUIRE_MESSAGE(sockets.open({address}, error), error);
  CHECK(sockets.forWorker(0).size() == 2);
  CHECK(sockets.forWorker(1).size() == 1);
  auto both = sockets.forWorker(0);
  const auto second = sockets.forWorker(1);
  both.insert(both.end(), second.begin(), second.end());
  CHECK(fdsOf(both).size() == 3);
}

TEST_CASE("ListeningSockets refuses a passed socket that matches no listener") {
  std::string error;
  const auto stray = unusedAddress();
  std::vector<InheritedSocket> inherited;
  inherited.push_back(passedSocket(stray));
  const int passedFd = inherited.back().fd.get();
  ListeningSockets sockets(1, std::move(inherited));
  CHECK_FALSE(sockets.open({unusedAddress()}, error));
  CHECK(error == "a socket passed to gatewayd (LISTEN_FDS) is bound to " +
                     net::formatAddress(stray) +
                     ", which is no listener's address in the configuration");
  CHECK(sockets.all().empty());
  CHECK_FALSE(isOpen(passedFd));
}

TEST_CASE("ListeningSockets::update keeps staying addresses, opens added, hands back removed") {
  ListeningSockets sockets(2, {});
  std::string error;
  const auto staying = unusedAddress();
  const auto leaving = unusedAddress();
  REQUIRE_MESSAGE(sockets.open({staying, leaving}, error), error);
  std::set<int> stayingFds, leavingFds;
  for (const WatchedSocket& socket : sockets.all()) {
    (socket.listener == 0 ? stayingFds : leavingFds).insert(socket.fd);
  }
  const auto added = unusedAddress();
  auto removed = sockets.update({added, staying}, error);
  REQUIRE_MESSAGE(removed.has_value(), error);
  // The removed ones are still open: the caller closes them once no worker watches them.
  std::set<int> removedFds;
  for (const net::Fd& fd : *removed) {
    CHECK(isOpen(fd.get()));
    removedFds.insert(fd.get());
  }
  CHECK(removedFds == leavingFds);
  const auto mine = sockets.forWorker(0);
  REQUIRE(mine.size() == 2);
  CHECK(net::sameAddress(*net::localAddress(mine[0].fd), added));
  CHECK(mine[1].listener == 1);
  // The staying address keeps its sockets, never closed in between, now as listener 1.
  std::set<int> stayingNow;
  for (const WatchedSocket& socket : sockets.all()) {
    if (socket.listener == 1) stayingNow.insert(socket.fd);
  }
  CHECK(stayingNow == stayingFds);
  for (int fd : stayingNow) CHECK(isOpen(fd));
  removed->clear();
  for (int fd : leavingFds) CHECK_FALSE(isOpen(fd));
}

TEST_CASE("ListeningSockets::update that cannot open an added address changes nothing") {
  ListeningSockets sockets(2, {});
  std::string error;
  const auto kept = unusedAddress();
  REQUIRE_MESSAGE(sockets.open({kept}, error), error);
  const auto before = fdsOf(sockets.all());
  std::string busyError;
  const auto busy = unusedAddress();
  auto occupant = net::listenOn(busy, net::PortSharing::Exclusive, busyError);
  REQUIRE(occupant.has_value());
  const auto fresh = unusedAddress();
  CHECK_FALSE(sockets.update({kept, fresh, busy}, error).has_value());
  CHECK(error.find("bind " + net::formatAddress(busy)) == 0);
  CHECK(fdsOf(sockets.all()) == before);
  for (int fd : before) CHECK(isOpen(fd));
  // The socket opened for `fresh` before the failure was closed again: the address is free.
  CHECK(net::listenOn(fresh, net::PortSharing::Exclusive, error).has_value());
}

}  // namespace
}  // namespace gw::runtime
