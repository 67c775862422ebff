// The backend side of the proxy: bytes a backend answers with, through the real proxy::Stream
// (the response parser's handler: 1xx relaying, status and framing rules, head rewriting,
// re-chunking, plugins' response phase) on a real worker's cluster and upstream connection, read
// by read as proxy::Connection::readUpstreamResponse() drives it: parse, flush toward the client
// (whose socket may be full, so queued bytes must be retained), compact the upstream buffer, then
// finish the exchange, fail it (a gateway 502 when the client has seen nothing of the response,
// else a cut connection) or, at the end of the input, treat the backend's close.
//
// Input: byte 0 picks the route (bit 0: with plugins), an HTTP/1.0 client (bit 1), a client
// that does not keep the connection (bit 2), a HEAD request (bit 3) and a client that reads
// slowly (bit 4); byte 1 is the size of each read (0: everything in one read); the rest is what
// the backend sends.
//
// Invariants (any break aborts):
//   - what the client receives reads, with a strict llhttp parser, as zero or more 1xx (only to
//     an HTTP/1.1 client, and exactly the backend's) followed by ONE final response and nothing
//     after it, or, when the connection is cut, as a prefix of that;
//   - a response relayed whole has the backend's status and, byte for byte, its body (none for
//     HEAD, 204 and 304); a refused one is the gateway's 502 with nothing of the backend's head;
//   - each head the client gets is well formed: token names, valid values, at most one
//     Content-Length and never with Transfer-Encoding, no framing on 1xx and 204, no chunked
//     coding for HTTP/1.0, no hop-by-hop field of the backend's nor one its Connection named,
//     and (on a route without plugins) every end-to-end field of the backend's unchanged;
//   - a response whose end the client could not find (no length, not chunked) closes the
//     connection, and the head says so exactly when the gateway closes.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/error.h"
#include "gateway/core/io_buffer.h"
#include "gateway/core/out_queue.h"
#include "gateway/core/worker.h"
#include "gateway/http/headers.h"
#include "gateway/proxy/local_reply.h"
#include "gateway/proxy/stream.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/connection.h"
#include "gateway/upstream/health.h"
#include "test/fuzz/fixed_config.h"
#include "test/fuzz/fuzz_check.h"
#include "test/fuzz/http_reader.h"
#include "test/fuzz/peer_input.h"
#include "test/fuzz/socket_sink.h"

namespace gw::fuzz {
namespace {

using core::Error;
using core::ErrorCode;

// As upstream/connection.cpp: read whenever this much room is free.
constexpr std::size_t kMinRead = 4 * 1024;

constexpr std::string_view kConfig = R"(
listeners: [{address: 127.0.0.1, port: 1}]
admin: {enabled: false}
access_log: {enabled: false}
limits: {header_bytes: 4KiB, header_count: 32}
upstreams:
  - name: u
    backends: [127.0.0.1:9]
routes:
  - name: plain
    match: {prefix: /plain}
    upstream: u
  - name: plugins
    match: {prefix: /}
    upstream: u
    plugins: [request_id, security_headers]
)";

// One worker, never started: its loop, clusters, recyclers and plugin states are what a Stream
// needs. It accepts nothing (the snapshot has no listener address).
struct World {
  World()
      : snapshot(fixedSnapshot(kConfig)),
        health(specs(*snapshot)),
        worker(0, snapshot, core::WorkerServices{health}) {}
  static std::vector<upstream::UpstreamHealthSpec> specs(const config::Snapshot& snapshot) {
    upstream::UpstreamHealthSpec spec;
    spec.name = "u";
    spec.backends = snapshot.metricsLayout->upstreams[0].backends;
    return {spec};
  }
  std::shared_ptr<const config::Snapshot> snapshot;
  upstream::HealthBoard health;
  core::Worker worker;
};

World& world() {
  static World* kWorld = new World();  // never destroyed: the worker's thread never ran
  return *kWorld;
}

class Owner final : public proxy::ExchangeOwner, public upstream::Connection::Listener {
 public:
  void resumeExchange() override {}
  void onUpstreamConnected() override {}
  void onUpstreamDrained() override {}
  void onUpstreamRead() override {}
  void onUpstreamFailure(upstream::Failure) override {}
};

struct Options {
  bool plugins = false;
  proxy::ClientView client;
  bool slowClient = false;
};

enum class Outcome : uint8_t {
  Relayed,       // the backend's response reached the client whole
  GatewayError,  // the gateway answered instead (nothing of the backend's final head was sent)
  Cut,           // the client had part of the response: the connection was closed
};

class Exchange {
 public:
  explicit Exchange(const Options& options) : options_(options) {
    World& w = world();
    const std::size_t routeIndex = options.plugins ? 1 : 0;
    const config::RouteConfig& route = w.snapshot->config.routes[routeIndex];
    stream_ = std::make_unique<proxy::Stream>(w.worker, owner_, route, routeIndex, clientOut_,
                                              options.client, 1);
    if (stream_->hasPlugins()) {
      const std::string_view method = options.client.headRequest ? "HEAD" : "GET";
      stream_->captureRequest(method, "example.test", "/", "", false, "example.test", "192.0.2.7",
                              "0123456789abcdef");
      FUZZ_REQUIRE(stream_->chain().runRequestHeaders(*stream_) == plugin::Status::Continue,
                   "the route's plugins did not let the request through");
    }
    upstream::Cluster& cluster = stream_->cluster();
    upstream::Backend* backend = cluster.pick(0);
    FUZZ_REQUIRE(backend, "no backend to lease from");
    // A connection object without a socket: its input buffer and parser are all that is used.
    stream_->lease() =
        std::make_unique<upstream::Connection>(cluster, *backend, net::Fd(), w.worker.base(),
                                               w.worker.headLimits(), w.worker.upstreamBlocks());
    stream_->lease()->lease(owner_, *stream_, stream_->timeouts());
    stream_->requestComplete = true;
  }

  ~Exchange() {
    // Not through the cluster (which counts only the connections it handed out).
    stream_->lease().reset();
    stream_.reset();
    world().worker.graveyard().reap();
  }

  bool done() const { return done_; }

  // One read on the upstream socket (upstream::Connection::handleRead + readUpstreamResponse).
  void receive(std::string_view bytes) {
    upstream::Connection& up = *stream_->lease();
    core::IoBuffer& in = up.input();
    while (!bytes.empty() && !done_) {
      if (!in.reserve(kMinRead,
                      up.parser().limits().headerBytes + core::IoBuffer::kUpstreamBlockSize)) {
        fail(Error::upstream(ErrorCode::UpstreamProtocol, "response head too large"));
        return;
      }
      const std::size_t n = std::min(bytes.size(), in.writable());
      std::memcpy(in.writePtr(), bytes.data(), n);
      in.commit(n);
      bytes.remove_prefix(n);
      received_ += n;
      readResponse();
    }
  }

  // The backend closed its connection (Connection::upstreamFailed(Failure::Closed)).
  void backendClosed() {
    if (done_) return;
    if (stream_->responseStarted()) {
      const llhttp_errno_t finished = stream_->lease()->parser().finish();
      if ((finished == HPE_OK || finished == HPE_PAUSED) && stream_->responseComplete()) {
        flushClient();
        finish();
        return;
      }
    }
    fail(Error::upstream(ErrorCode::UpstreamReset, "upstream closed"));
  }

  // What the client read, checked against what the backend sent.
  void check(std::string_view backendBytes) {
    sink_.flushAll(clientOut_, clientBytes_);
    const bool head = options_.client.headRequest;
    Reader backend(HTTP_RESPONSE, head);
    backend.read(backendBytes.substr(0, received_));
    backend.finish();
    Reader client(HTTP_RESPONSE, head);
    const llhttp_errno_t error = client.read(clientBytes_);
    FUZZ_REQUIRE(error == HPE_OK, "what the client received does not parse");
    if (outcome_ != Outcome::Cut && !client.betweenMessages()) {
      // A body delimited by the close: the client reads it to the end.
      FUZZ_REQUIRE(closeAfter_ && client.finish() == HPE_OK,
                   "the client cannot find the end of its response");
    }
    const auto& got = client.messages();
    for (const Message& message : got) checkHead(message);
    std::size_t informational = 0;
    while (informational < got.size() && got[informational].status < 200) ++informational;
    if (outcome_ == Outcome::Cut) {
      FUZZ_REQUIRE(got.size() <= informational + 1, "more than one final response on a cut");
      return;
    }
    FUZZ_REQUIRE(got.size() == informational + 1 && got.back().complete,
                 "the client did not get exactly one complete final response");
    const Message& final = got.back();
    FUZZ_REQUIRE((final.value("connection") == "close") == closeAfter_,
                 "the head says close when the gateway keeps the connection, or the reverse");
    if (!closeAfter_) {
      const bool delimited = final.count("content-length") == 1 ||
                             final.value("transfer-encoding") == "chunked" || head ||
                             final.status == 204 || final.status == 304;
      FUZZ_REQUIRE(delimited, "a kept connection carries a response without a delimited body");
    }
    // The 1xx relayed are the backend's, in order (none to an HTTP/1.0 client).
    std::vector<int> sentInformational;
    for (const Message& message : backend.messages()) {
      if (message.status < 200 && message.complete) sentInformational.push_back(message.status);
    }
    for (std::size_t i = 0; i < informational; ++i) {
      FUZZ_REQUIRE(options_.client.versionMinor >= 1, "a 1xx was sent to an HTTP/1.0 client");
      FUZZ_REQUIRE(i < sentInformational.size() && got[i].status == sentInformational[i],
                   "the client got a 1xx the backend did not send");
    }
    if (outcome_ == Outcome::GatewayError) {
      FUZZ_REQUIRE(final.status == 502, "a refused response is not answered 502");
      return;
    }
    const Message* sentFinal = nullptr;
    for (const Message& message : backend.messages()) {
      if (message.status >= 200) {
        sentFinal = &message;
        break;
      }
    }
    FUZZ_REQUIRE(sentFinal && sentFinal->complete, "relayed a response the backend did not send");
    FUZZ_REQUIRE(final.status == sentFinal->status, "the status changed on the way");
    FUZZ_REQUIRE(final.body == sentFinal->body, "the body changed on the way");
    if (!options_.plugins) checkEndToEnd(*sentFinal, final);
  }

 private:
  void readResponse() {
    upstream::Connection& up = *stream_->lease();
    core::IoBuffer& in = up.input();
    const auto outcome = up.parser().execute(in.base(), in.readPtr(), in.readable());
    in.consume(outcome.consumed);
    if (outcome.error != HPE_OK && outcome.error != HPE_PAUSED) {
      fail(Error::upstream(ErrorCode::UpstreamProtocol, "invalid response from upstream"));
      return;
    }
    flushClient();
    // Only now may the input move: the client's queue no longer borrows from it.
    clientOut_.retainBorrowed();
    if (!up.parser().inHead()) in.compact();
    if (stream_->responseComplete()) finish();
  }

  void flushClient() {
    if (options_.slowClient) return;  // nothing leaves: the queue keeps (and must retain) it all
    sink_.flushAll(clientOut_, clientBytes_);
  }

  void finish() {
    outcome_ = Outcome::Relayed;
    closeAfter_ = stream_->closeAfterResponse();
    done_ = true;
  }

  // proxy::Connection::failExchange + reply().
  void fail(const Error& error) {
    done_ = true;
    if (stream_->responseStarted() && !stream_->withdrawResponse()) {
      outcome_ = Outcome::Cut;
      closeAfter_ = true;
      return;
    }
    outcome_ = Outcome::GatewayError;
    closeAfter_ = stream_->closeAfterResponse();
    proxy::LocalResponse response = proxy::makeErrorResponse(error, "0123456789abcdef");
    if (stream_->hasPlugins() && !stream_->responseStarted()) stream_->runResponsePhase(response);
    proxy::appendResponse(clientOut_, response,
                          {.closeConnection = closeAfter_,
                           .headRequest = options_.client.headRequest,
                           .http10KeepAlive = options_.client.versionMinor == 0});
  }

  void checkHead(const Message& message) {
    const std::vector<std::string> ours = connectionOptions(message);
    for (const std::string& option : ours) {
      FUZZ_REQUIRE(option == "close" || option == "keep-alive",
                   "the client's Connection field names something other than close/keep-alive");
    }
    for (const auto& [name, value] : message.fields) {
      FUZZ_REQUIRE(http::isToken(name) && http::isValidFieldValue(value),
                   "a field sent to the client is not a valid field line");
      const std::string lowered = lower(name);
      FUZZ_REQUIRE(!hopByHop(lowered) || lowered == "connection" ||
                       (lowered == "transfer-encoding" && value == "chunked"),
                   "a hop-by-hop field reached the client");
    }
    const std::size_t lengths = message.count("content-length");
    const std::size_t codings = message.count("transfer-encoding");
    FUZZ_REQUIRE(lengths <= 1 && codings <= 1 && lengths + codings <= 1,
                 "the client's head is framed twice");
    if (message.status < 200 || message.status == 204) {
      FUZZ_REQUIRE(lengths + codings == 0, "a 1xx or 204 carries framing fields");
    }
    if (options_.client.versionMinor == 0) {
      FUZZ_REQUIRE(codings == 0, "an HTTP/1.0 client got a chunked response");
    }
  }

  // On a route without plugins the backend's end-to-end fields pass unchanged, in order.
  void checkEndToEnd(const Message& sent, const Message& got) {
    const std::vector<std::string> nominated = connectionOptions(sent);
    // HEAD and 304 keep the backend's Content-Length: it describes the content, not this body.
    const bool lengthIsTheirs = options_.client.headRequest || sent.status == 304;
    auto endToEnd = [&](const Message& message, bool fromBackend) {
      std::vector<std::pair<std::string, std::string>> fields;
      for (const auto& [name, value] : message.fields) {
        const std::string lowered = lower(name);
        if (hopByHop(lowered)) continue;
        if (lowered == "content-length" && !lengthIsTheirs) continue;
        const bool framing = lowered == "content-length" || lowered == "host";
        if (fromBackend && !framing && contains(nominated, lowered)) continue;
        fields.emplace_back(name, trimOws(value));
      }
      return fields;
    };
    // ... and the gateway's Via follows them.
    auto expected = endToEnd(sent, true);
    expected.emplace_back("Via", "1.1 gatewayd");
    FUZZ_REQUIRE(endToEnd(got, false) == expected,
                 "the backend's end-to-end fields did not pass unchanged (then our Via)");
  }

  Options options_;
  Owner owner_;
  core::OutQueue clientOut_;
  std::unique_ptr<proxy::Stream> stream_;
  SocketSink sink_;
  std::string clientBytes_;
  std::size_t received_ = 0;  // backend bytes handed to the gateway
  Outcome outcome_ = Outcome::Relayed;
  bool closeAfter_ = false;
  bool done_ = false;
};

}  // namespace
}  // namespace gw::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace gw::fuzz;
  const auto input = PeerInput::of(data, size);
  if (!input) return 0;
  Options options;
  options.plugins = (input->options & 1) != 0;
  options.client.versionMinor = (input->options & 2) ? 0 : 1;
  options.client.keepAlive = (input->options & 4) == 0;
  options.client.headRequest = (input->options & 8) != 0;
  options.slowClient = (input->options & 16) != 0;
  Exchange exchange(options);
  input->deliver([&](std::string_view read) {
    exchange.receive(read);
    return !exchange.done();
  });
  exchange.backendClosed();
  exchange.check(input->bytes);
  return 0;
}
