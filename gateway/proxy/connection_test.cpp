// proxy::Connection driven directly in this process: a real core::Worker (its event loop on its own
// thread) accepts the connection on its loopback listener, and the test thread plays both the
// client and a scripted backend, so it writes and reads every byte on both sides of the request
// pipeline. Plugins registered only in this binary make a request throw, which no built-in plugin
// can be made to do: the one way to see the stream boundary's promise kept (500, the worker lives
// on). A Connection cannot be handed a socketpair instead: it is owned by its worker's
// connection list (close() erases it from there), which only the worker's accept fills.
#include "gateway/proxy/connection.h"

#include <arpa/inet.h>
#include <doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "gateway/config/loader.h"
#include "gateway/core/worker.h"
#include "gateway/net/socket.h"
#include "gateway/plugin/registry.h"
#include "gateway/runtime/load_environment.h"
#include "gateway/runtime/snapshot.h"
#include "gateway/upstream/health.h"
#include "test/support/files.h"

namespace gw::proxy {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kWait = std::chrono::seconds(5);

// A plugin that throws from one hook, as a programmer error would.
enum class ThrowIn { RequestHeaders, ResponseHeaders };

class ThrowingPlugin final : public plugin::Plugin {
 public:
  explicit ThrowingPlugin(ThrowIn where) : where_(where) {}
  plugin::Status onRequestHeaders(plugin::Context&) override {
    if (where_ == ThrowIn::RequestHeaders) throw std::runtime_error("planted in onRequestHeaders");
    return plugin::Status::Continue;
  }
  plugin::Status onResponseHeaders(plugin::Context&) override {
    if (where_ == ThrowIn::ResponseHeaders) throw std::logic_error("planted in onResponseHeaders");
    return plugin::Status::Continue;
  }

 private:
  ThrowIn where_;
};

class ThrowingFactory final : public plugin::Factory {
 public:
  ThrowingFactory(std::string name, ThrowIn where) : name_(std::move(name)), where_(where) {}
  std::string_view name() const override { return name_; }
  std::shared_ptr<const plugin::RouteConfig> parse(
      const YAML::Node&, std::vector<plugin::ConfigError>&) const override {
    return std::make_shared<plugin::RouteConfig>();
  }
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig&,
                                         plugin::WorkerState*) const override {
    return std::make_unique<ThrowingPlugin>(where_);
  }

 private:
  std::string name_;
  ThrowIn where_;
};

const plugin::Registry& testPlugins() {
  static const plugin::Registry registry = [] {
    plugin::Registry r;
    r.add(std::make_unique<ThrowingFactory>("throw_on_request", ThrowIn::RequestHeaders));
    r.add(std::make_unique<ThrowingFactory>("throw_on_response", ThrowIn::ResponseHeaders));
    return r;
  }();
  return registry;
}

net::SocketAddress loopback(uint16_t port) {
  std::string error;
  std::optional<net::SocketAddress> address = net::resolve("127.0.0.1", port, error);
  REQUIRE_MESSAGE(address, error);
  return *address;
}

// A listening socket on a port the kernel picks.
net::Fd listenOnFreePort() {
  std::string error;
  std::optional<net::Fd> fd = net::listenOn(loopback(0), net::PortSharing::Exclusive, error);
  REQUIRE_MESSAGE(fd, error);
  return std::move(*fd);
}

uint16_t portOf(const net::Fd& fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
  return ntohs(address.sin_port);
}

bool waitReadable(const net::Fd& fd, Clock::time_point deadline) {
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
  std::string readToClose(bool* closed) const {
    return readUntil([](const std::string&) { return false; }, closed);
  }

 private:
  net::Fd fd_;
};

// A complete message head, and a body of Content-Length bytes when the head declares one.
bool wholeMessage(const std::string& bytes) {
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

// A worker with the routes `routes` (YAML list items), in front of one scripted backend.
class WorkerFixture {
 public:
  explicit WorkerFixture(std::string_view routes) {
    // A port that was free a moment ago: the worker's listener must claim it itself.
    port_ = portOf(listenOnFreePort());
    const std::string yaml =
        "workers: 1\nlisteners: [{address: 127.0.0.1, port: " + std::to_string(port_) +
        "}]\nadmin: {enabled: false}\ntracing: {enabled: false}\nupstreams:\n"
        "  - {name: main, backends: [127.0.0.1:" +
        std::to_string(backend.port()) + "]}\nroutes:\n" + std::string(routes);
    config::LoadResult loaded = config::loadString(yaml, "connection_test.yaml", runtime::loadEnvironment(testPlugins()));
    REQUIRE_MESSAGE(loaded.config, yaml);
    std::vector<config::Diagnostic> errors;
    snapshot_ = runtime::buildSnapshot(std::move(*loaded.config), errors);
    REQUIRE(errors.empty());
    std::vector<upstream::UpstreamHealthSpec> specs(1);
    specs[0].name = "main";
    specs[0].backends = snapshot_->metricsLayout->upstreams[0].backends;
    health_ = std::make_unique<upstream::HealthBoard>(std::move(specs));
    worker_ = std::make_unique<core::Worker>(0, snapshot_, core::WorkerServices{*health_});
    std::string error;
    REQUIRE_MESSAGE(worker_->listening(error), error);
    worker_->start();
  }
  ~WorkerFixture() {
    worker_->stopAsync();
    worker_->join();
  }

  Socket connect() const { return Socket::connectTo(port_); }

  ScriptedBackend backend;

 private:
  uint16_t port_ = 0;
  std::shared_ptr<const runtime::Snapshot> snapshot_;
  std::unique_ptr<upstream::HealthBoard> health_;
  std::unique_ptr<core::Worker> worker_;
};

constexpr std::string_view kRequest = "GET /plain/items?page=2 HTTP/1.1\r\nHost: gw.test\r\n\r\n";
constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-From: backend\r\n\r\nhello";

// One proxied exchange on `client` and `upstream`: what the backend and the client received.
struct Relayed {
  std::string forwarded;
  std::string answered;
};
Relayed proxyOnce(const Socket& client, const Socket& upstream, std::string_view request) {
  client.send(request);
  Relayed x;
  x.forwarded = upstream.readUntil(wholeMessage);
  upstream.send(kResponse);
  x.answered = client.readUntil(wholeMessage);
  return x;
}

// The same on a new client connection, which opens a new upstream connection.
Relayed proxyOnNewConnections(WorkerFixture& f) {
  Socket client = f.connect();
  client.send(kRequest);
  Socket upstream = f.backend.accept();
  return proxyOnce(client, upstream, {});
}

constexpr std::string_view kRoutes =
    "  - {match: {prefix: /plain/}, upstream: main, strip_prefix: /plain}\n"
    "  - {match: {prefix: /throws-request/}, upstream: main, plugins: [throw_on_request]}\n"
    "  - {match: {prefix: /throws-response/}, upstream: main, plugins: [throw_on_response]}\n";

// After `trigger`, the gateway's 500 for a programmer error, then the close (the connection
// cannot be trusted); the exception's text goes to the error log, not to the client.
template <typename Trigger>
void expectInternalError(const Socket& client, std::string_view what, Trigger&& trigger) {
  bool closed = false;
  std::string answer;
  const std::string log = test::captureStderr([&] {
    trigger();
    answer = client.readToClose(&closed);
  });
  CHECK(log.find("programmer error while handling a request") != std::string::npos);
  CHECK(log.find(what) != std::string::npos);
  CHECK(answer.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0) == 0);
  CHECK(answer.find("\"code\":\"INTERNAL_ERROR\"") != std::string::npos);
  CHECK(answer.find("Connection: close\r\n") != std::string::npos);
  CHECK(answer.find("Cache-Control: no-store\r\n") != std::string::npos);
  CHECK(answer.find("planted") == std::string::npos);  // the exception's text stays in the log
  CHECK(closed);
}

}  // namespace

TEST_CASE("connection: a request goes upstream with the gateway's head; the answer comes back") {
  WorkerFixture f(kRoutes);
  Socket client = f.connect();
  client.send(kRequest);
  Socket upstream = f.backend.accept();
  for (int round = 0; round < 2; ++round) {
    // Keep-alive on both sides: the second round travels on the same two connections.
    INFO("round " << round);
    const Relayed x = proxyOnce(client, upstream, round == 0 ? std::string_view() : kRequest);
    CHECK(x.forwarded ==
          "GET /items?page=2 HTTP/1.1\r\nHost: gw.test\r\nX-Forwarded-For: 127.0.0.1\r\n"
          "X-Forwarded-Proto: http\r\nX-Forwarded-Host: gw.test\r\nVia: 1.1 gatewayd\r\n\r\n");
    CHECK(x.answered ==
          "HTTP/1.1 200 OK\r\nX-From: backend\r\nVia: 1.1 gatewayd\r\nContent-Length: 5\r\n"
          "\r\nhello");
  }
  CHECK_FALSE(f.backend.connectionWaiting());
}

TEST_CASE("connection: an exception from a request plugin is a 500 and the worker lives on") {
  WorkerFixture f(kRoutes);
  {
    Socket client = f.connect();
    expectInternalError(client, "planted in onRequestHeaders", [&] {
      client.send("GET /throws-request/x HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    });
    CHECK_FALSE(f.backend.connectionWaiting());
  }
  CHECK(proxyOnNewConnections(f).answered.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("connection: an exception from a response plugin before any byte went out is a 500") {
  WorkerFixture f(kRoutes);
  {
    Socket client = f.connect();
    client.send("GET /throws-response/x HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    Socket upstream = f.backend.accept();
    CHECK(upstream.readUntil(wholeMessage).rfind("GET /throws-response/x HTTP/1.1\r\n", 0) == 0);
    expectInternalError(client, "planted in onResponseHeaders", [&] { upstream.send(kResponse); });
  }
  CHECK(proxyOnNewConnections(f).answered.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("connection: requests it cannot serve are answered without reaching the backend") {
  WorkerFixture f(kRoutes);
  struct Case {
    std::string_view request;
    std::string_view statusLine;
    std::string_view code;
  };
  for (const Case& c : {
           Case{"POST /plain/x HTTP/1.1\r\nHost: gw.test\r\nExpect: 200-ok\r\n"
                "Content-Length: 2\r\n\r\nhi",
                "HTTP/1.1 417 Expectation Failed\r\n", "EXPECTATION_FAILED"},
           Case{"CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443\r\n\r\n",
                "HTTP/1.1 501 Not Implemented\r\n", "NOT_IMPLEMENTED"},
       }) {
    INFO(c.request);
    Socket client = f.connect();
    client.send(c.request);
    bool closed = false;
    const std::string answer = client.readToClose(&closed);
    CHECK(answer.rfind(c.statusLine, 0) == 0);
    CHECK(answer.find("\"code\":\"" + std::string(c.code) + "\"") != std::string::npos);
    CHECK(closed);
    CHECK_FALSE(f.backend.connectionWaiting());
  }
}

}  // namespace gw::proxy
