#pragma once
// Socket addresses and the few socket calls the core makes, with an owning fd type.

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace gw::net {

// Owns a file descriptor; closes it once.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset();

 private:
  int fd_ = -1;
};

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Same family, IP and port (and IPv6 scope): the same listening address.
bool sameAddress(const SocketAddress& a, const SocketAddress& b);
// The address a socket is bound to (getsockname), or nullopt for an fd that is not a socket.
std::optional<SocketAddress> localAddress(int fd);

// Resolves host (literal or name) and port; blocking, so only at startup.
std::optional<SocketAddress> resolve(const std::string& host, uint16_t port, std::string& error);
// "1.2.3.4" or "::1" for a peer address.
std::string formatIp(const sockaddr* addr);
// "1.2.3.4:80" or "[::1]:80", as error messages name an address.
std::string formatAddress(const SocketAddress& address);

// SO_REUSEPORT lets every socket of the same user that asks for it listen on a port, so a second
// gatewayd started by mistake would silently get part of the traffic. Hence the first socket on
// an address claims it: it listens without SO_REUSEPORT, which fails when anything listens there
// already (atomically: of two processes racing, the second listen() fails), and only then opens
// the port to the sockets of the other workers. A zero-downtime upgrade that has to share the
// port with the running process must not claim: it joins (ReusePort) or inherits the sockets.
enum class PortSharing : uint8_t {
  Claim,      // the first worker's socket: refuses an address in use, then lets ReusePort join
  ReusePort,  // SO_REUSEPORT: the other workers, each with its own socket on the claimed port
  Exclusive,  // a second socket on the port fails, ours too (the admin listener)
};
// A non-blocking listening socket. Every error names the address ("bind 127.0.0.1:80: ...").
std::optional<Fd> listenOn(const SocketAddress& address, PortSharing sharing, std::string& error);
// Starts a non-blocking connect; returns the fd (connect in progress or done) or errno.
Fd connectNonBlocking(const SocketAddress& address, int& err);
void setNoDelay(int fd);

}  // namespace gw::net
