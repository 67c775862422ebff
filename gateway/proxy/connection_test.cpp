// proxy::Connection driven directly in this process: a real runtime::Worker (its event loop on its own
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
#include "gateway/runtime/worker.h"
#include "gateway/net/socket.h"
#include "gateway/plugin/registry.h"
#include "gateway/runtime/load_environment.h"
#include "gateway/runtime/snapshot.h"
#include "gateway/upstream/health.h"
#include "test/support/files.h"
#include "test/support/worker_fixture.h"

namespace gw::proxy {
namespace {

using test::Socket;
using test::WorkerFixture;
using test::wholeMessage;

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

using ThrowingFactory = test::ScriptedFactory<ThrowingPlugin, ThrowIn>;

const plugin::Registry& testPlugins() {
  static const plugin::Registry registry = [] {
    plugin::Registry r;
    r.add(std::make_unique<ThrowingFactory>("throw_on_request", ThrowIn::RequestHeaders));
    r.add(std::make_unique<ThrowingFactory>("throw_on_response", ThrowIn::ResponseHeaders));
    return r;
  }();
  return registry;
}

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
  WorkerFixture f(kRoutes, testPlugins());
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
  WorkerFixture f(kRoutes, testPlugins());
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
  WorkerFixture f(kRoutes, testPlugins());
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
  WorkerFixture f(kRoutes, testPlugins());
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
