#pragma once
// An in-place binary upgrade (SIGUSR2), both sides of it. The running gatewayd starts a
// Successor: the binary at the path it was itself started from, with the same arguments, given
// every listening socket (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID, as systemd passes them) and a
// pipe, GATEWAYD_UPGRADE_READY_FD, on which the new process writes its status line once it
// serves (tellPredecessorServing). Until then, or if it exits first or takes too long, the old
// process keeps serving. Main thread only.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/libevent_ptr.h"
#include "gateway/net/socket.h"

namespace gw::runtime {

// The program this process runs and its arguments, resolved at start: the file at the path may
// be replaced later (that is the upgrade), the path stays.
struct Executable {
  std::string path;               // absolute (/proc/self/exe at start)
  std::vector<std::string> args;  // argv[1..]
  static Executable current(int argc, char** argv);
};

// A socket handed to the successor, at LISTEN_FDS position i, named names[i].
struct HandedSocket {
  int fd = -1;
  std::string name;  // LISTEN_FDNAMES: letters, digits, '_', '-', '.' only
};

class Successor {
 public:
  static constexpr std::chrono::seconds kReadyTimeout{30};
  struct Events {
    // It serves: it wrote its status line. The caller hands over and stops accepting.
    std::function<void(pid_t pid, std::string status)> serving;
    // It will not serve: why (it exited, closed the pipe, or took longer than the timeout).
    std::function<void(std::string why)> failed;
  };

  // Forks and execs; false with an error (nothing started) when that is not possible.
  Successor(event_base* base, Events events, std::chrono::milliseconds readyTimeout);
  ~Successor();
  bool start(const Executable& executable, const std::vector<HandedSocket>& sockets,
             std::string& error);
  pid_t pid() const { return pid_; }
  // Nothing left to wait for: it serves, or it failed and has been reaped.
  bool finished() const { return outcome_ != Outcome::Starting && !reaping_; }

 private:
  enum class Outcome { Starting, Serving, Failed };
  static void onReady(evutil_socket_t, short, void* arg);
  static void onTimeout(evutil_socket_t, short, void* arg);
  static void onExit(evutil_socket_t, short, void* arg);
  void fail(std::string why);

  event_base* base_;
  Events events_;
  std::chrono::milliseconds readyTimeout_;
  pid_t pid_ = -1;
  net::Fd ready_;  // the pipe's read end
  net::Fd pidfd_;  // readable once the child has exited
  core::EventPtr readyEvent_;
  core::EventPtr timeoutEvent_;
  core::EventPtr exitEvent_;
  std::string line_;  // what it wrote so far
  Outcome outcome_ = Outcome::Starting;
  bool reaping_ = false;  // failed and still running: asked to stop, to be reaped
};

// In a gatewayd started by Successor: takes GATEWAYD_UPGRADE_READY_FD out of the environment
// (at start, before anything else is started). Invalid when this is no upgrade.
net::Fd takePredecessorLink();
// Writes `status` (one line) on the link and closes it: the old process hands over.
void tellPredecessorServing(net::Fd& link, std::string_view status);

}  // namespace gw::runtime
