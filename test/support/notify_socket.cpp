#include "test/support/notify_socket.h"

#include <doctest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace gw::it {

NotifySocket::NotifySocket() {
  char dir[] = "/tmp/gw-notify-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  dir_ = dir;
  path_ = dir_ + "/notify";
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd_ >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  REQUIRE(path_.size() < sizeof address.sun_path);
  std::memcpy(address.sun_path, path_.c_str(), path_.size() + 1);
  REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
}

NotifySocket::~NotifySocket() {
  if (fd_ >= 0) ::close(fd_);
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::optional<std::string> NotifySocket::next(std::chrono::milliseconds timeout) {
  pollfd readable{fd_, POLLIN, 0};
  if (::poll(&readable, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  char buffer[4096];
  const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
  if (n < 0) return std::nullopt;
  return std::string(buffer, static_cast<std::size_t>(n));
}

}  // namespace gw::it
