#include "gateway/net/socket.h"

#include <arpa/inet.h>
#include <doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace gw::net {
namespace {

uint16_t portOf(const SocketAddress& address) {
  if (address.storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_port);
}

SocketAddress boundAddress(int fd) {
  auto address = localAddress(fd);
  REQUIRE(address.has_value());
  return *address;
}

SocketAddress mustResolve(const std::string& host, uint16_t port) {
  std::string error;
  auto address = resolve(host, port, error);
  REQUIRE_MESSAGE(address.has_value(), error);
  return *address;
}

TEST_CASE("Fd closes once and moves ownership") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  {
    Fd a(fds[0]);
    Fd b(std::move(a));
    CHECK_FALSE(a.valid());
    CHECK(b.get() == fds[0]);
    Fd c;
    c = std::move(b);
    CHECK(c.valid());
    CHECK(::fcntl(fds[0], F_GETFD) != -1);
  }
  CHECK(::fcntl(fds[0], F_GETFD) == -1);  // closed by c
  CHECK(errno == EBADF);
  Fd kept(fds[1]);
  int raw = kept.release();
  CHECK_FALSE(kept.valid());
  CHECK(raw == fds[1]);
  CHECK(::close(raw) == 0);  // release() gave it up: still open here
}

TEST_CASE("resolve handles IPv4 and IPv6 literals") {
  SocketAddress v4 = mustResolve("127.0.0.1", 8080);
  CHECK(v4.storage.ss_family == AF_INET);
  CHECK(v4.length == sizeof(sockaddr_in));
  CHECK(portOf(v4) == 8080);
  CHECK(formatIp(v4.get()) == "127.0.0.1");

  SocketAddress v6 = mustResolve("::1", 443);
  CHECK(v6.storage.ss_family == AF_INET6);
  CHECK(v6.length == sizeof(sockaddr_in6));
  CHECK(portOf(v6) == 443);
  CHECK(formatIp(v6.get()) == "::1");
}

TEST_CASE("resolve finds localhost (where the machine knows the name)") {
  std::string error;
  auto local = resolve("localhost", 65535, error);
  if (!local) {
    // Minimal containers may ship an /etc/hosts without it, and no resolver that knows it.
    MESSAGE("SKIPPED: 'localhost' does not resolve on this machine (" << error
                                                                      << "); add it to /etc/hosts");
    return;
  }
  CHECK(portOf(*local) == 65535);
  std::string ip = formatIp(local->get());
  CHECK((ip == "127.0.0.1" || ip == "::1"));
}

TEST_CASE("resolve reports a name it cannot resolve") {
  std::string error;
  // Not a valid host name, so the resolver refuses it without asking any DNS server.
  auto address = resolve("bad host name", 80, error);
  CHECK_FALSE(address.has_value());
  const std::string prefix = "cannot resolve 'bad host name': ";
  REQUIRE(error.size() > prefix.size());
  CHECK(error.substr(0, prefix.size()) == prefix);
}

TEST_CASE("formatIp prints both families and nothing for others") {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  REQUIRE(::inet_pton(AF_INET, "10.1.2.3", &v4.sin_addr) == 1);
  CHECK(formatIp(reinterpret_cast<sockaddr*>(&v4)) == "10.1.2.3");
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  REQUIRE(::inet_pton(AF_INET6, "2001:db8::1:0:0:1", &v6.sin6_addr) == 1);
  CHECK(formatIp(reinterpret_cast<sockaddr*>(&v6)) == "2001:db8::1:0:0:1");
  sockaddr other{};
  other.sa_family = AF_UNIX;
  CHECK(formatIp(&other) == "");
}

TEST_CASE("listenOn with ReusePort lets two sockets listen on one port") {
  std::string error;
  auto first = listenOn(mustResolve("127.0.0.1", 0), PortSharing::ReusePort, error);
  REQUIRE_MESSAGE(first.has_value(), error);
  SocketAddress bound = boundAddress(first->get());
  uint16_t port = portOf(bound);
  CHECK(port != 0);
  CHECK((::fcntl(first->get(), F_GETFL) & O_NONBLOCK) != 0);
  CHECK((::fcntl(first->get(), F_GETFD) & FD_CLOEXEC) != 0);

  auto second = listenOn(bound, PortSharing::ReusePort, error);
  REQUIRE_MESSAGE(second.has_value(), error);
  CHECK(portOf(boundAddress(second->get())) == port);

  // A plain socket without SO_REUSEPORT is refused on that port.
  Fd plain(::socket(AF_INET, SOCK_STREAM, 0));
  CHECK(::bind(plain.get(), bound.get(), bound.length) == -1);
  CHECK(errno == EADDRINUSE);
}

TEST_CASE("listenOn refuses a second socket where the first does not share its port") {
  struct Case {
    PortSharing first, second;
  };
  // A ReusePort group without a claim is what an older gatewayd (or another program) opens.
  for (const Case c : {Case{PortSharing::Exclusive, PortSharing::Exclusive},
                       Case{PortSharing::Exclusive, PortSharing::ReusePort},
                       Case{PortSharing::Exclusive, PortSharing::Claim},
                       Case{PortSharing::ReusePort, PortSharing::Claim}}) {
    CAPTURE(static_cast<int>(c.first));
    CAPTURE(static_cast<int>(c.second));
    std::string error;
    auto first = listenOn(mustResolve("127.0.0.1", 0), c.first, error);
    REQUIRE_MESSAGE(first.has_value(), error);
    CHECK_FALSE(listenOn(boundAddress(first->get()), c.second, error).has_value());
    CHECK(error.find("Address already in use") != std::string::npos);
  }
}

TEST_CASE("listenOn on IPv6 and the bind error message") {
  std::string error;
  auto v6 = listenOn(mustResolve("::1", 0), PortSharing::ReusePort, error);
  REQUIRE_MESSAGE(v6.has_value(), error);
  int only = 0;
  socklen_t len = sizeof only;
  REQUIRE(::getsockopt(v6->get(), IPPROTO_IPV6, IPV6_V6ONLY, &only, &len) == 0);
  CHECK(only == 1);

  // 192.0.2.1 (TEST-NET-1) is not an address of this host.
  auto foreign = listenOn(mustResolve("192.0.2.1", 0), PortSharing::ReusePort, error);
  CHECK_FALSE(foreign.has_value());
  CHECK(error == "bind 192.0.2.1:0: Cannot assign requested address");
}

TEST_CASE("formatAddress brackets IPv6 and adds the port") {
  CHECK(formatAddress(mustResolve("127.0.0.1", 8080)) == "127.0.0.1:8080");
  CHECK(formatAddress(mustResolve("::1", 443)) == "[::1]:443");
  CHECK(formatAddress(mustResolve("0.0.0.0", 1)) == "0.0.0.0:1");
}

TEST_CASE("listenOn Claim refuses an address in use, then lets ReusePort sockets join") {
  std::string error;
  auto claim = listenOn(mustResolve("127.0.0.1", 0), PortSharing::Claim, error);
  REQUIRE_MESSAGE(claim.has_value(), error);
  const SocketAddress bound = boundAddress(claim->get());
  const std::string where = formatAddress(bound);

  // The other workers of this process join the claimed port.
  auto joined = listenOn(bound, PortSharing::ReusePort, error);
  REQUIRE_MESSAGE(joined.has_value(), error);
  CHECK(portOf(boundAddress(joined->get())) == portOf(bound));

  // A second process claiming the same address (a second gatewayd) is refused, by address.
  CHECK_FALSE(listenOn(bound, PortSharing::Claim, error).has_value());
  CHECK(error == "bind " + where +
                     ": Address already in use (is another gatewayd or another program "
                     "listening there?)");
  // So is one claiming the wildcard address of the same port.
  CHECK_FALSE(listenOn(mustResolve("0.0.0.0", portOf(bound)), PortSharing::Claim, error));

  // Connections reach both sockets of the group.
  int reached[2] = {0, 0};
  for (int i = 0; i < 32 && (reached[0] == 0 || reached[1] == 0); ++i) {
    int err = 0;
    Fd client = connectNonBlocking(bound, err);
    REQUIRE(err == 0);
    pollfd ready[2] = {{claim->get(), POLLIN, 0}, {joined->get(), POLLIN, 0}};
    REQUIRE(::poll(ready, 2, 2000) >= 1);
    for (int s = 0; s < 2; ++s) {
      if (ready[s].revents & POLLIN) {
        Fd accepted(::accept(ready[s].fd, nullptr, nullptr));
        reached[s] += accepted.valid();
      }
    }
  }
  CHECK(reached[0] > 0);
  CHECK(reached[1] > 0);
}

TEST_CASE("connectNonBlocking connects to a listener and sets TCP_NODELAY") {
  std::string error;
  auto listener = listenOn(mustResolve("127.0.0.1", 0), PortSharing::ReusePort, error);
  REQUIRE(listener.has_value());
  int err = -1;
  Fd fd = connectNonBlocking(boundAddress(listener->get()), err);
  CHECK(err == 0);
  REQUIRE(fd.valid());
  CHECK((::fcntl(fd.get(), F_GETFL) & O_NONBLOCK) != 0);
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  REQUIRE(::getsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0);
  CHECK(nodelay != 0);
  pollfd p{fd.get(), POLLOUT, 0};
  REQUIRE(::poll(&p, 1, 2000) == 1);
  int soError = -1;
  len = sizeof soError;
  REQUIRE(::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soError, &len) == 0);
  CHECK(soError == 0);
}

TEST_CASE("connectNonBlocking to a closed port reports ECONNREFUSED") {
  // A bound socket that never listens: the port is ours and certainly closed.
  Fd closed(::socket(AF_INET, SOCK_STREAM, 0));
  SocketAddress any = mustResolve("127.0.0.1", 0);
  REQUIRE(::bind(closed.get(), any.get(), any.length) == 0);
  SocketAddress target = boundAddress(closed.get());

  int err = -1;
  Fd fd = connectNonBlocking(target, err);
  if (err == 0) {
    // In progress: the refusal arrives as a socket error.
    REQUIRE(fd.valid());
    pollfd p{fd.get(), POLLOUT, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
    socklen_t len = sizeof err;
    REQUIRE(::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0);
  }
  CHECK(err == ECONNREFUSED);
}

}  // namespace
}  // namespace gw::net

namespace gw::net {
namespace {

TEST_CASE("sameAddress compares family, IP and port") {
  const SocketAddress v4 = mustResolve("127.0.0.1", 8080);
  CHECK(sameAddress(v4, mustResolve("127.0.0.1", 8080)));
  CHECK_FALSE(sameAddress(v4, mustResolve("127.0.0.1", 8081)));
  CHECK_FALSE(sameAddress(v4, mustResolve("127.0.0.2", 8080)));
  CHECK_FALSE(sameAddress(v4, mustResolve("::1", 8080)));
  CHECK(sameAddress(mustResolve("::1", 8080), mustResolve("::1", 8080)));
  CHECK_FALSE(sameAddress(mustResolve("::1", 8080), mustResolve("::2", 8080)));
}

TEST_CASE("localAddress reads a listening socket's address and refuses a non-socket") {
  std::string error;
  auto fd = listenOn(mustResolve("127.0.0.1", 0), PortSharing::Exclusive, error);
  REQUIRE_MESSAGE(fd.has_value(), error);
  auto bound = localAddress(fd->get());
  REQUIRE(bound.has_value());
  CHECK(portOf(*bound) != 0);
  CHECK(formatIp(bound->get()) == "127.0.0.1");
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  CHECK_FALSE(localAddress(fds[0]).has_value());
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace gw::net
