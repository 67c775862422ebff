#include "test/support/continuous_load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

namespace gw::it {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxRecordedFailures = 20;

enum class Outcome { Answered, ClosedBeforeAnswer, Failed };

int remainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

int connectTo(uint16_t port, Clock::time_point deadline, std::string& why) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return fd;
  int error = errno;
  if (error == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, remainingMs(deadline)) == 1) {
      socklen_t length = sizeof error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
      if (error == 0) return fd;
    } else {
      error = ETIMEDOUT;
    }
  }
  ::close(fd);
  why = std::string("connect: ") + std::strerror(error);
  return -1;
}

std::optional<std::size_t> contentLength(std::string_view head) {
  for (std::size_t at = head.find("\r\n"); at != std::string_view::npos;
       at = head.find("\r\n", at + 2)) {
    const std::string_view line = head.substr(at + 2, head.find("\r\n", at + 2) - at - 2);
    constexpr std::string_view kName = "content-length:";
    if (line.size() <= kName.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < kName.size(); ++i) {
      same = same && std::tolower(static_cast<unsigned char>(line[i])) == kName[i];
    }
    if (same) return std::stoul(std::string(line.substr(kName.size())));
  }
  return std::nullopt;
}

// One request on fd; `mustClose` when the answer says Connection: close.
Outcome roundTrip(int fd, const std::string& target, Clock::time_point deadline, bool& mustClose,
                  std::string& why) {
  const std::string request = "GET " + target + " HTTP/1.1\r\nHost: gw.test\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    why = std::string("send: ") + std::strerror(errno);
    return errno == EPIPE || errno == ECONNRESET ? Outcome::ClosedBeforeAnswer : Outcome::Failed;
  }
  std::string received;
  std::optional<std::size_t> total;  // head + body, once the head is complete
  while (!total || received.size() < *total) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, remainingMs(deadline)) != 1) {
      why = "no answer within the timeout after " + std::to_string(received.size()) + " bytes";
      return Outcome::Failed;
    }
    char buffer[16384];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) {
      why = (n == 0 ? std::string("closed") : std::string(std::strerror(errno))) + " after " +
            std::to_string(received.size()) + " bytes";
      return received.empty() ? Outcome::ClosedBeforeAnswer : Outcome::Failed;
    }
    received.append(buffer, static_cast<std::size_t>(n));
    const std::size_t headEnd = received.find("\r\n\r\n");
    if (!total && headEnd != std::string::npos) {
      const std::string_view head(received.data(), headEnd + 2);
      const auto length = contentLength(head);
      if (!head.starts_with("HTTP/1.1 200 ") || !length) {
        why = "unexpected answer: " + std::string(head.substr(0, head.find("\r\n")));
        return Outcome::Failed;
      }
      total = headEnd + 4 + *length;
      mustClose = head.find("\r\nConnection: close\r\n") != std::string_view::npos;
    }
  }
  return Outcome::Answered;
}

}  // namespace

ContinuousLoad::ContinuousLoad(Options options) : options_(std::move(options)) {
  int client = 0;
  for (int i = 0; i < options_.keepAliveClients; ++i) {
    clients_.emplace_back([this, c = client++] { run(c, true); });
  }
  for (int i = 0; i < options_.newConnectionClients; ++i) {
    clients_.emplace_back([this, c = client++] { run(c, false); });
  }
}

void ContinuousLoad::stop() {
  stopping_ = true;
  for (std::thread& client : clients_) {
    if (client.joinable()) client.join();
  }
}

std::string ContinuousLoad::report() const {
  std::string text = "answered " + std::to_string(answered_) + ", sent again " +
                     std::to_string(retried_) + ", failed " + std::to_string(failed_);
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < failures_.size(); ++i) text += (i == 0 ? ": " : "; ") + failures_[i];
  return text;
}

bool ContinuousLoad::waitAnsweredMore(uint64_t more, std::chrono::milliseconds timeout) const {
  const uint64_t target = answered_ + more;
  const auto deadline = Clock::now() + timeout;
  while (answered_ < target && Clock::now() < deadline && !stopping_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return answered_ >= target;
}

void ContinuousLoad::fail(std::string why) {
  ++failed_;
  std::lock_guard lock(mutex_);
  if (failures_.size() < kMaxRecordedFailures) failures_.push_back(std::move(why));
}

void ContinuousLoad::run(int client, bool keepAlive) {
  const auto end = Clock::now() + options_.maxDuration;
  int fd = -1;
  int onConnection = 0;
  for (int i = 0; i < options_.maxRequestsPerClient && !stopping_ && Clock::now() < end; ++i) {
    const std::string& target = options_.targets[i % options_.targets.size()];
    const auto deadline = Clock::now() + options_.responseTimeout;
    const bool reused = fd >= 0;
    std::string why;
    if (!reused) {
      fd = connectTo(options_.port, deadline, why);
      onConnection = 0;
      if (fd < 0) {
        fail("client " + std::to_string(client) + ": " + why);
        continue;
      }
    }
    bool mustClose = false;
    const Outcome outcome = roundTrip(fd, target, deadline, mustClose, why);
    if (outcome == Outcome::Answered) {
      ++answered_;
      ++onConnection;
    } else if (outcome == Outcome::ClosedBeforeAnswer && reused) {
      ++retried_;
      --i;  // the same request again, on a new connection
    } else {
      fail("client " + std::to_string(client) + (reused ? ", reused" : ", new") + " connection, " +
           target + ": " + why);
    }
    if (outcome != Outcome::Answered || mustClose || !keepAlive ||
        onConnection >= options_.requestsPerConnection) {
      ::close(fd);
      fd = -1;
    }
  }
  if (fd >= 0) ::close(fd);
}

}  // namespace gw::it
