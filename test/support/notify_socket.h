#pragma once
// A stand-in for systemd's notification socket: an AF_UNIX datagram socket in a temp directory
// of its own. Pass env() to a process (or setenv it) and read what it sends with next(); no
// systemd needed. Every wait is bounded.

#include <chrono>
#include <optional>
#include <string>

namespace gw::it {

class NotifySocket {
 public:
  NotifySocket();  // binds; fails the test if it cannot
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }
  std::string env() const { return "NOTIFY_SOCKET=" + path_; }  // "NOTIFY_SOCKET=/tmp/.../notify"
  // The next datagram, or nullopt when none arrives within timeout.
  std::optional<std::string> next(std::chrono::milliseconds timeout);

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

}  // namespace gw::it
