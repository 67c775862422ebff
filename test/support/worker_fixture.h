#pragma once
// A real runtime::Worker (its event loop on its own thread) in this test process, in front of one
// backend the test thread scripts: the test writes and reads every byte on both sides of the
// request pipeline. Plugins registered only in the test binary can be put on its routes.

#include <arpa/inet.h>
#include <doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/loader.h"
#include "gateway/net/socket.h"
#include "gateway/plugin/registry.h"
#include "gateway/runtime/listening_sockets.h"
#include "gateway/runtime/load_environment.h"
#include "gateway/runtime/snapshot.h"
#include "gateway/runtime/worker.h"
#include "gateway/upstream/health.h"

namespace gw::test {

// A plugin type for tests: no settings, and every exchange gets `Plugin(script)`.
template <typename Plugin, typename Script>
class ScriptedFactory final : public plugin::Factory {
 public:
  ScriptedFactory(std::string name, Script script) : name_(std::move(name)), script_(script) {}
  std::string_view name() const override { return name_; }
  std::shared_ptr<const plugin::RouteConfig> parse(
      const YAML::Node&, std::vector<plugin::ConfigError>&) const override {
    return std::make_shared<plugin::RouteConfig>();
  }
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig&,
                                         plugin::WorkerState*) const override {
    return std::make_unique<Plugin>(script_);
  }

 private:
  std::string name_;
  Script script_;
};

using Clock = std::chrono::steady_clock;
inline constexpr auto kWait = std::chrono::seconds(5);

inline net::SocketAddress loopback(uint16_t port) {
  std::string error;
  std::optional<net::SocketAddress> address = net::resolve("127.0.0.1", port, error);
  REQUIRE_MESSAGE(address, error);
  return *address;
}

// A listening socket on a port the kernel picks.
inline net::Fd listenOnFreePort() {
  std::string error;
  std::optional<net::Fd> fd = net::listenOn(loopback(0), net::PortSharing::Exclusive, error);
  REQUIRE_MESSAGE(fd, error);
  return std::move(*fd);
}

inline uint16_t portOf(const net::Fd& fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
  return ntohs(address.sin_port);
}

inline bool waitReadable(const net::Fd& fd, Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  pollfd p{fd.get(), POLLIN, 0};
  return left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) == 1;
}

// One blocking loopback socket of the test thread.
class Socket {
 public:
  explicit Socket(net::Fd fd) : fd_(std::move(fd)) {}

  static Socket connectTo(uint16_t port) {
    const net::SocketAddress address = loopback(port);
    net::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(fd.get(), address.get(), address.length) == 0);
    return Socket(std::move(fd));
  }
  void send(std::string_view bytes) const {
    REQUIRE(::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
  }
  // Reads until `done(received)` holds, the peer closes (then *closed is set) or kWait passed.
  template <typename Done>
  std::string readUntil(Done&& done, bool* closed = nullptr) const {
    std::string got;
    const auto deadline = Clock::now() + kWait;
    char buffer[4096];
    if (closed) *closed = false;
    while (!done(got) && waitReadable(fd_, deadline)) {
      const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
      if (n <= 0) {
        if (closed) *closed = true;
        break;
      }
      got.append(buffer, static_cast<std::size_t>(n));
    }
    return got;
  }
  // Nothing arrives (and the peer does not close) for `wait`.
  bool silentFor(std::chrono::milliseconds wait) const {
    return !waitReadable(fd_, Clock::now() + wait);
  }
  std::string readToClose(bool* closed) const {
    return readUntil([](const std::string&) { return false; }, closed);
  }

 private:
  net::Fd fd_;
};

// A complete message head, and a body of Content-Length bytes when the head declares one.
inline bool wholeMessage(const std::string& bytes) {
  const std::size_t end = bytes.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  const std::size_t length = bytes.find("Content-Length: ");
  if (length == std::string::npos || length > end) return true;
  return bytes.size() >= end + 4 + std::stoul(bytes.substr(length + 16));
}

// A listening socket the test thread answers on, as the route's only backend.
class ScriptedBackend {
 public:
  uint16_t port() const { return portOf(listener_); }
  bool connectionWaiting() const { return waitReadable(listener_, Clock::now()); }
  // The gateway's next upstream connection.
  Socket accept() const {
    REQUIRE(waitReadable(listener_, Clock::now() + kWait));
    return Socket(net::Fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC)));
  }

 private:
  net::Fd listener_ = listenOnFreePort();
};

// A worker with the routes `routes` (YAML list items), in front of one scripted backend, with
// `listeners` listeners, all watched.
class WorkerFixture {
 public:
  WorkerFixture(std::string_view routes, const plugin::Registry& plugins, int listeners = 1) {
    std::string listenerList;
    for (int i = 0; i < listeners; ++i) {
      // A port that was free a moment ago: the process's sockets must claim it themselves.
      ports_.push_back(portOf(listenOnFreePort()));
      listenerList += std::string(i ? ", " : "") +
                      "{address: 127.0.0.1, port: " + std::to_string(ports_.back()) + "}";
    }
    const std::string yaml = "workers: 1\nlisteners: [" + listenerList +
                             "]\nadmin: {enabled: false}\ntracing: {enabled: false}\nupstreams:\n"
                             "  - {name: main, backends: [127.0.0.1:" +
                             std::to_string(backend.port()) + "]}\nroutes:\n" + std::string(routes);
    config::LoadResult loaded =
        config::loadString(yaml, "worker_fixture.yaml", runtime::loadEnvironment(plugins));
    REQUIRE_MESSAGE(loaded.config, yaml);
    std::vector<config::Diagnostic> errors;
    snapshot_ = runtime::buildSnapshot(std::move(*loaded.config), plugins, errors);
    REQUIRE(errors.empty());
    std::vector<upstream::UpstreamHealthSpec> specs(1);
    specs[0].name = "main";
    specs[0].backends = snapshot_->metricsLayout->upstreams[0].backends;
    health_ = std::make_shared<upstream::HealthBoard>(std::move(specs));
    std::string error;
    REQUIRE_MESSAGE(sockets_.open(snapshot_->listenerAddresses, error), error);
    worker_ = std::make_unique<runtime::Worker>(0, snapshot_, health_, proxy::SharedServices{});
    worker_->watch(sockets_.forWorker(0));
    worker_->start();
  }
  ~WorkerFixture() {
    worker_->stopAsync();
    worker_->join();
  }

  Socket connect(std::size_t listener = 0) const { return Socket::connectTo(ports_[listener]); }
  // Has the running worker watch only the sockets of `listeners` (on its thread; returns once
  // it does).
  void watchOnly(const std::vector<std::size_t>& listeners) {
    std::vector<runtime::WatchedSocket> watched;
    for (const runtime::WatchedSocket& socket : sockets_.forWorker(0)) {
      if (std::find(listeners.begin(), listeners.end(), socket.listener) != listeners.end()) {
        watched.push_back(socket);
      }
    }
    std::promise<void> done;
    worker_->post([&] {
      worker_->watch(watched);
      done.set_value();
    });
    REQUIRE(done.get_future().wait_for(kWait) == std::future_status::ready);
  }

  ScriptedBackend backend;

 private:
  std::vector<uint16_t> ports_;
  std::shared_ptr<const runtime::Snapshot> snapshot_;
  std::shared_ptr<upstream::HealthBoard> health_;
  runtime::ListeningSockets sockets_{1, {}};  // outlives the worker that watches them
  std::unique_ptr<runtime::Worker> worker_;
};

}  // namespace gw::test
