#pragma once
// A real redis-server for the tests: on a free loopback port, with no persistence, in a temporary
// directory of its own; stopped by its PID. Debian's redis-tools ships the server as
// redis-check-rdb, which runs as the server when its name says redis-server: the directory holds
// such a link, so the tests need no redis-server service installed (and started) on the machine.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "test/support/harness.h"

namespace gw::it {

class RedisServer {
 public:
  // `extraArgs`: more redis-server options, e.g. {"--requirepass", "secret"}.
  explicit RedisServer(std::vector<std::string> extraArgs = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return process_ ? process_->pid() : -1; }

  void kill();     // SIGKILL, reaped: connections see a reset
  void pause();    // SIGSTOP: the socket stays open and nothing answers (a hung Redis)
  void resume();   // SIGCONT
  void restart();  // a fresh, empty server on the same port (after kill())

  // One command over a connection of its own, for the test to inspect or prepare Redis. The reply
  // as text: a status or bulk string as it is, an integer in decimal, nil as "(nil)", an error as
  // "ERR: <message>", an array as its elements (as text) joined by '\n'.
  std::string call(std::initializer_list<std::string_view> argv) const;
  std::string call(const std::vector<std::string>& argv) const;

 private:
  void start();

  TempDir dir_;
  std::string binary_;
  std::vector<std::string> extraArgs_;
  uint16_t port_ = 0;
  std::optional<Process> process_;
};

// Waits until every worker of `gw` has connected to Redis (half-open or closed, as /status
// shows): before that, a worker's Redis commands are refused and its plugins fall back.
void waitRedisConnected(const Gateway& gw);

}  // namespace gw::it
