#pragma once
// An in-process peer for core::OutQueue: one non-blocking AF_UNIX socketpair with a small send
// buffer, so OutQueue::flush() meets a full socket (EAGAIN, short writes) as it does with a slow
// client or backend, and the bytes it wrote can be read back. No network is involved.

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gateway/core/out_queue.h"
#include "test/fuzz/fuzz_check.h"

namespace gw::fuzz {

class SocketSink {
 public:
  SocketSink() {
    int fds[2];
    FUZZ_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0,
                 "socketpair failed");
    writer_ = fds[0];
    reader_ = fds[1];
    const int small = 4096;
    ::setsockopt(writer_, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  }
  ~SocketSink() {
    ::close(writer_);
    ::close(reader_);
  }
  SocketSink(const SocketSink&) = delete;
  SocketSink& operator=(const SocketSink&) = delete;

  // What an OutQueue flushes into.
  int fd() const { return writer_; }

  // Appends everything written so far to `into`.
  void drain(std::string& into) {
    char buffer[16 * 1024];
    while (true) {
      const ssize_t n = ::recv(reader_, buffer, sizeof buffer, 0);
      if (n <= 0) return;
      into.append(buffer, static_cast<std::size_t>(n));
    }
  }

  // Writes what `queue` holds, and reads it all back into `into`, until the queue is empty.
  void flushAll(core::OutQueue& queue, std::string& into) {
    while (true) {
      const auto status = queue.flush(writer_);
      FUZZ_REQUIRE(status != core::OutQueue::WriteStatus::Failed, "writing to the sink failed");
      drain(into);
      if (status == core::OutQueue::WriteStatus::Drained) return;
    }
  }

 private:
  int writer_ = -1;
  int reader_ = -1;
};

}  // namespace gw::fuzz
