// The Exchange's stages driven through a real worker (test/support/worker_fixture.h), with
// plugins registered only in this binary that return each Status in each phase: a wait in the
// request-header phase and in the buffered body's phase holds the request until the plugin
// resumes, and a Stop or Respond where a phase cannot honour it is logged and passed over, never
// a hang.
#include "gateway/proxy/exchange.h"

#include <doctest.h>

#include <memory>
#include <string>
#include <string_view>

#include "gateway/runtime/worker.h"
#include "gateway/plugin/registry.h"
#include "test/support/worker_fixture.h"

namespace gw::proxy {
namespace {

using plugin::Status;
using test::Socket;
using test::WorkerFixture;
using test::wholeMessage;

enum class Script {
  WaitOnHeaders,   // Stop in the request-header phase, resumed from the next loop turn
  WaitOnBody,      // buffers the body, Stop in its phase, resumed from the next loop turn
  StopOnResponse,  // Stop in the response-header phase (cannot wait)
  RespondOnBody,   // Respond on a response body piece (cannot answer)
  TagResponse,     // adds X-Tag: seen to the response
  EchoRequestId,   // adds X-Seen-Id: ctx.requestId() to the response (its first read of it)
  FailRequest,     // answers the request with a gateway error (whose body names the id)
};

class ScriptedPlugin final : public plugin::Plugin {
 public:
  explicit ScriptedPlugin(Script script) : script_(script) {}

  Status onRequestHeaders(plugin::Context& ctx) override {
    if (script_ == Script::FailRequest) {
      ctx.fail(core::Error::downstream(core::ErrorCode::BadRequest, "refused by the test"));
      return Status::Respond;
    }
    if (script_ == Script::WaitOnBody) ctx.bufferRequestBody(1024);
    if (script_ != Script::WaitOnHeaders) return Status::Continue;
    resumeLater(ctx);
    return Status::Stop;
  }
  Status onRequestBody(plugin::Context& ctx, plugin::BodyView body, bool end) override {
    if (script_ != Script::WaitOnBody || !end) return Status::Continue;
    ctx.requestHeaders().set("X-Body-Seen", std::to_string(body.size()));
    resumeLater(ctx);
    return Status::Stop;
  }
  Status onResponseHeaders(plugin::Context& ctx) override {
    if (script_ == Script::TagResponse) ctx.responseHeaders().add("X-Tag", "seen");
    if (script_ == Script::EchoRequestId) ctx.responseHeaders().add("X-Seen-Id", ctx.requestId());
    return script_ == Script::StopOnResponse ? Status::Stop : Status::Continue;
  }
  Status onResponseBody(plugin::Context&, plugin::BodyView, bool) override {
    return script_ == Script::RespondOnBody ? Status::Respond : Status::Continue;
  }
  void onDestroy() noexcept override { *alive_ = false; }

 private:
  // Resumes from a later loop turn, as a plugin waiting on I/O would, with what it learnt
  // meanwhile: a request that went on without waiting would lack it.
  void resumeLater(plugin::Context& ctx) {
    ctx.dispatcher().post([&ctx, alive = alive_] {
      if (!*alive) return;
      ctx.requestHeaders().set("X-Resumed", "1");
      ctx.resume();
    });
  }

  Script script_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

using ScriptedFactory = test::ScriptedFactory<ScriptedPlugin, Script>;

const plugin::Registry& scriptedPlugins() {
  static const plugin::Registry registry = [] {
    plugin::Registry r;
    r.add(std::make_unique<ScriptedFactory>("wait_on_headers", Script::WaitOnHeaders));
    r.add(std::make_unique<ScriptedFactory>("wait_on_body", Script::WaitOnBody));
    r.add(std::make_unique<ScriptedFactory>("stop_on_response", Script::StopOnResponse));
    r.add(std::make_unique<ScriptedFactory>("respond_on_body", Script::RespondOnBody));
    r.add(std::make_unique<ScriptedFactory>("tag_response", Script::TagResponse));
    r.add(std::make_unique<ScriptedFactory>("echo_request_id", Script::EchoRequestId));
    r.add(std::make_unique<ScriptedFactory>("fail_request", Script::FailRequest));
    return r;
  }();
  return registry;
}

std::string route(std::string_view plugins) {
  return "  - {name: r, upstream: main, plugins: [" + std::string(plugins) + "]}\n";
}

constexpr std::string_view kAnswer =
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

// Sends `request`, answers it at the backend; returns what the backend and the client got.
std::pair<std::string, std::string> exchange(WorkerFixture& f, std::string_view request) {
  Socket client = f.connect();
  client.send(request);
  Socket upstream = f.backend.accept();
  std::string forwarded = upstream.readUntil(wholeMessage);
  upstream.send(kAnswer);
  return {forwarded, client.readUntil(wholeMessage)};
}

// The value of the response field `name` ("" if none).
std::string fieldOf(std::string_view response, std::string_view name) {
  const std::size_t at = response.find("\r\n" + std::string(name) + ": ");
  if (at == std::string_view::npos) return "";
  const std::size_t from = at + name.size() + 4;
  return std::string(response.substr(from, response.find("\r\n", from) - from));
}

}  // namespace

TEST_CASE("exchange: the request id plugins read is the gateway's, formatted when first read") {
  WorkerFixture f(route("echo_request_id"), scriptedPlugins());
  const std::string first =
      fieldOf(exchange(f, "GET /a HTTP/1.1\r\nHost: gw.test\r\n\r\n").second, "X-Seen-Id");
  const std::string second =
      fieldOf(exchange(f, "GET /b HTTP/1.1\r\nHost: gw.test\r\n\r\n").second, "X-Seen-Id");
  CHECK(first.size() == WorkerContext::kRequestIdLength);
  CHECK(first.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(second.size() == first.size());
  CHECK(second != first);
  // Same worker: the same prefix, the sequence number after it differs.
  CHECK(second.substr(0, 8) == first.substr(0, 8));
}

TEST_CASE("exchange: a plugin's error answer and a later read name the same request id") {
  WorkerFixture f(route("fail_request, echo_request_id"), scriptedPlugins());
  Socket client = f.connect();
  client.send("GET /a HTTP/1.1\r\nHost: gw.test\r\n\r\n");
  const std::string answered = client.readUntil(wholeMessage);
  CHECK(answered.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  const std::string id = fieldOf(answered, "X-Seen-Id");
  REQUIRE(id.size() == WorkerContext::kRequestIdLength);
  CHECK(answered.find("\"request_id\":\"" + id + "\"") != std::string::npos);
}

TEST_CASE("exchange: a wait in the request-header phase holds the request until resumed") {
  WorkerFixture f(route("wait_on_headers, tag_response"), scriptedPlugins());
  const auto [forwarded, answered] =
      exchange(f, "GET /a HTTP/1.1\r\nHost: gw.test\r\nX-Mine: 1\r\n\r\n");
  CHECK(forwarded.rfind("GET /a HTTP/1.1\r\n", 0) == 0);
  CHECK(forwarded.find("X-Mine: 1\r\n") != std::string::npos);
  CHECK(forwarded.find("X-Resumed: 1\r\n") != std::string::npos);
  CHECK(answered.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(answered.find("X-Tag: seen\r\n") != std::string::npos);
}

TEST_CASE("exchange: a wait in the buffered body's phase holds the request, then sends it whole") {
  WorkerFixture f(route("wait_on_body"), scriptedPlugins());
  const auto [forwarded, answered] = exchange(
      f, "POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  // Buffered: sent with its length, not re-chunked, with what the plugin set after seeing it.
  CHECK(forwarded.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(forwarded.find("Transfer-Encoding") == std::string::npos);
  CHECK(forwarded.find("X-Body-Seen: 5\r\n") != std::string::npos);
  CHECK(forwarded.find("X-Resumed: 1\r\n") != std::string::npos);
  CHECK(forwarded.substr(forwarded.size() - 5) == "abcde");
  CHECK(answered.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("exchange: a Stop in the response-header phase is passed over, the next plugin runs") {
  WorkerFixture f(route("stop_on_response, tag_response"), scriptedPlugins());
  const auto [forwarded, answered] = exchange(f, "GET /a HTTP/1.1\r\nHost: gw.test\r\n\r\n");
  CHECK(answered.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(answered.find("X-Tag: seen\r\n") != std::string::npos);
  CHECK(answered.substr(answered.size() - 5) == "hello");
}

TEST_CASE("exchange: a Respond on a response body piece is passed over, the body arrives whole") {
  WorkerFixture f(route("respond_on_body"), scriptedPlugins());
  const auto [forwarded, answered] = exchange(f, "GET /a HTTP/1.1\r\nHost: gw.test\r\n\r\n");
  CHECK(answered.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(answered.substr(answered.size() - 5) == "hello");
}

}  // namespace gw::proxy
