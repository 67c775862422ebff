#pragma once
// One request/response exchange on a client connection: the route it matched, the upstream
// connection it leases, the request head as it goes upstream, and how the response is framed
// toward the client. It is the response parser's handler: it rewrites the response head and
// queues body bytes (borrowed, re-chunked where needed) on the client connection's output.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "gateway/config/model.h"
#include "gateway/core/out_queue.h"
#include "gateway/core/recycler.h"
#include "gateway/http/headers.h"
#include "gateway/http/parser.h"
#include "gateway/proxy/plugin_exchange.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/connection.h"

namespace gw::core {
class Worker;
}

namespace gw::proxy {

// The client connection, as far as a plugin that waited (Stop) needs it.
class ExchangeOwner {
 public:
  virtual ~ExchangeOwner() = default;
  virtual void resumeExchange() = 0;
};

// How the response body travels to the client.
enum class BodyFraming : uint8_t {
  None,          // no body (HEAD, 1xx, 204, 304)
  Raw,           // Content-Length: bytes pass through as they are
  Chunked,       // re-encoded as chunked (upstream chunked, or upstream until-EOF to a 1.1 client)
  UntilClose,    // HTTP/1.0 client without length: body ends when we close
};

struct ClientView {
  uint8_t versionMinor = 1;  // HTTP/1.x
  bool keepAlive = true;     // client wants to keep the connection
  bool headRequest = false;
};

class Stream final : public http::Parser::Handler, public plugin::Context {
 public:
  Stream(core::Worker& worker, ExchangeOwner& owner, const config::RouteConfig& route,
         std::size_t routeIndex, core::OutQueue& clientOut, ClientView client, uint64_t requestSeq);
  ~Stream() override;

  const config::RouteConfig& route() const { return route_; }
  upstream::Cluster& cluster() { return cluster_; }
  const upstream::Timeouts& timeouts() const { return timeouts_; }
  std::string& upstreamHead() { return upstreamHead_; }
  uint64_t requestSeq() const { return requestSeq_; }

  std::unique_ptr<upstream::Connection>& lease() { return lease_; }
  // Where the Host line is inserted when it names the backend (npos: the head is complete).
  std::size_t hostSplit = std::string::npos;
  // Bytes of the head at the front of the lease's output: what a retry on another backend
  // replaces, keeping the body bytes queued behind it.
  std::size_t queuedHeadBytes = 0;
  uint64_t triedBackends = 0;  // bit per backend index, for connect retries
  uint64_t failedBackends = 0;  // bit per backend index, each reported to passive health once
  bool retriedReuse = false;   // the one retry after a stale pooled connection is spent
  bool idempotent = false;     // the method may be sent twice (RFC 9110 §9.2.2)
  bool connectTimedOut = false;  // the last connect attempt timed out (504 rather than 502)
  // core::monotonicUs() when the current attempt's request was handed to a connection.
  int64_t upstreamStartUs = 0;

  // Request side progress.
  bool requestHasBody = false;
  std::optional<uint64_t> requestLength;  // the declared Content-Length (none when chunked)
  bool requestComplete = false;   // all request bytes parsed from the client
  uint64_t requestBodyBytes = 0;

  // Response side progress (set by the parser callbacks). Started: the upstream's final head
  // was parsed and queued toward the client; on the wire: a byte of it reached the client, so
  // only cutting the connection can still signal a failure.
  bool responseStarted() const { return responseStarted_; }
  bool responseOnWire() const { return responseStarted_ && clientOut_.sentTotal() > headMark_; }
  // Takes back a final head the client has not seen a byte of, so a gateway error can answer
  // instead. False when there is none, or when it is already on the wire.
  bool withdrawResponse();
  // Why the upstream's head was refused by us rather than by llhttp ("" if it was not).
  std::string_view protocolViolation() const { return protocolViolation_; }
  bool responseComplete() const { return responseComplete_; }
  // The client connection must close after this response (framing or a Connection: close).
  bool closeAfterResponse() const { return closeAfter_; }
  void forceClose() { closeAfter_ = true; }
  // The upstream connection may go back to the pool once the response is complete.
  bool upstreamReusable() const { return upstreamReusable_; }
  int status() const { return status_; }
  int upstreamStatus() const { return upstreamStatus_; }

  // --- plugins ---
  bool hasPlugins() const { return plugins_ != nullptr; }
  FilterChain& chain() { return plugins_->chain; }
  // Copies what plugins may read of the request (the input buffer moves on without them).
  void captureRequest(std::string_view method, std::string_view host, std::string_view path,
                      std::string_view query, bool hasQuery, std::string_view forwardHost,
                      std::string_view clientIp, std::string_view requestId);
  std::string_view forwardHost() const { return plugins_->forwardHost; }
  bool hasQuery() const { return plugins_->hasQuery; }
  FieldList& requestFields() { return plugins_->requestFields; }
  // A plugin answered (reply/fail): the response to write instead of proxying.
  std::optional<LocalResponse>& answer() { return plugins_->answer; }
  bool buffering() const { return plugins_ && plugins_->bufferLimit > 0; }
  // Appends to the buffered body; false once past the plugin's limit.
  bool bufferBody(std::string_view bytes);
  const std::string& bufferedBody() const { return plugins_->bufferedBody; }
  // Response phase for a gateway-made response, before it is serialised. A plugin may replace
  // the response there by calling replyWith() (e.g. a cache's stale copy instead of a 502).
  void runResponsePhase(LocalResponse& response);
  bool waitingForPlugin = false;
  bool inRequestPhase = false;   // resume() during the phase itself only marks resumeRequested
  bool resumeRequested = false;
  bool expectContinue = false;   // the client sent Expect: 100-continue with a body

  // plugin::Context
  const plugin::RequestInfo& request() const override { return plugins_->info; }
  plugin::HeaderMap& requestHeaders() override { return plugins_->requestFields; }
  plugin::HeaderMap& responseHeaders() override { return *plugins_->responseFields; }
  int responseStatus() const override { return status_; }
  std::string_view requestId() const override {
    return plugins_ ? std::string_view(plugins_->requestId) : std::string_view();
  }
  void setRequestId(std::string id) override { plugins_->requestId = std::move(id); }
  void reply(int status, std::string body, std::string_view contentType) override;
  void fail(core::Error error) override;
  void replyWith(int status, std::span<const Field> fields, std::string body) override;
  void bufferRequestBody(std::size_t limit) override;
  bool fetchInBackground(plugin::BackgroundRequest request) override;
  void resume() override { owner_.resumeExchange(); }
  core::Worker& worker() { return worker_; }
  plugin::Dispatcher& dispatcher() override;
  int64_t nowMs() const override;
  plugin::ExchangeNotes& notes() override { return plugins_->notes; }
  std::span<uint64_t> counters() override;
  // What plugins noted for the access log, by slot (nothing on a route without plugins).
  std::span<const std::string_view> exchangeNotes() const {
    return plugins_ ? plugins_->notes.values() : std::span<const std::string_view>();
  }

  // http::Parser::Handler, for the upstream response.
  int onHeadersComplete() override;
  int onBody(const char* data, std::size_t length) override;
  int onChunkHeader(uint64_t length) override;
  int onChunkComplete() override;
  int onMessageComplete() override;

 private:
  // Calls emit(name, value, kind) for each field of the upstream head that is forwarded
  // (hop-by-hop fields and those its Connection header nominates end here); returns the
  // Connection options.
  template <typename Emit>
  http::ConnectionTokens forEachForwardedField(const http::Parser& parser, const char* base,
                                               Emit&& emit);
  void appendResponseHead(const http::Parser& parser, const char* base);
  void relayInformational(const http::Parser& parser);
  void appendStatusLine(int status, std::string_view reason);
  void appendFraming();
  bool framedByUs(http::FieldName kind) const;
  // A response-phase plugin answered instead of the upstream (e.g. a cache freshened by a 304):
  // its response goes to the client, the upstream's body is read and dropped.
  void replaceUpstreamResponse();

  core::Worker& worker_;
  ExchangeOwner& owner_;
  const config::RouteConfig& route_;
  upstream::Cluster& cluster_;
  const upstream::Timeouts& timeouts_;
  core::OutQueue& clientOut_;
  ClientView client_;
  uint64_t requestSeq_;
  std::size_t routeIndex_;
  core::Recycler<std::string>& heads_;
  std::string upstreamHead_;
  std::unique_ptr<upstream::Connection> lease_;
  BodyFraming framing_ = BodyFraming::None;
  uint64_t responseLength_ = 0;  // the upstream's parsed Content-Length, with Raw framing
  int status_ = 0;
  int upstreamStatus_ = 0;  // the upstream's final status, even when a plugin replaced it
  int informationalCount_ = 0;  // 1xx heads of this exchange (bounded, see judgeResponseHead)
  uint64_t headMark_ = 0;  // clientOut_.queuedTotal() before the final head
  std::string_view protocolViolation_;
  bool informational_ = false;
  bool responseStarted_ = false;
  bool responseComplete_ = false;
  bool chunkOpen_ = false;
  bool closeAfter_ = false;
  bool upstreamReusable_ = false;
  bool replaced_ = false;  // see replaceUpstreamResponse()
  // Only routes with plugins have one; recycled per worker so it keeps its capacity.
  std::unique_ptr<PluginExchange> plugins_;
};

}  // namespace gw::proxy
