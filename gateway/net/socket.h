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

// Resolves host (literal or name) and port; blocking, so only at startup.
std::optional<SocketAddress> resolve(const std::string& host, uint16_t port, std::string& error);
// "1.2.3.4" or "::1" for a peer address.
std::string formatIp(const sockaddr* addr);

enum class PortSharing : uint8_t {
  ReusePort,  // SO_REUSEPORT: each worker listens on the same port with its own socket
  Exclusive,  // a second process binding the port fails (the admin listener)
};
// A non-blocking listening socket.
std::optional<Fd> listenOn(const SocketAddress& address, PortSharing sharing, std::string& error);
// Starts a non-blocking connect; returns the fd (connect in progress or done) or errno.
Fd connectNonBlocking(const SocketAddress& address, int& err);
void setNoDelay(int fd);

}  // namespace gw::net
