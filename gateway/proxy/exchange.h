#pragma once
// One request/response exchange on a client connection, from its routed head to the last
// response byte: the route's plugin phases (FilterChain), the request head toward the upstream,
// the attempt (Forwarder) and the response (ResponseRelay). It is the plugins' Context. The
// client connection (Downstream) owns the socket, the request parser, keep-alive and the log
// record; it starts an Exchange per routed request, feeds it the request body and hears from it
// when the exchange is over.
//
// Stages: Filtering (plugins judge the head, or the buffered body) -> Waiting (a plugin returned
// Stop; resume() goes on from the next plugin) -> Buffering (a plugin wants the whole body) ->
// Forwarding (the request goes upstream, the response comes back) -> Done. An exchange can end
// inside its own callbacks (an answer, a failure, the response's last byte): every method
// returns at once after a call that may end it.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "gateway/config/model.h"
#include "gateway/core/error.h"
#include "gateway/core/out_queue.h"
#include "gateway/plugin/plugin.h"
#include "gateway/proxy/forwarder.h"
#include "gateway/proxy/generation.h"
#include "gateway/proxy/local_reply.h"
#include "gateway/proxy/plugin_exchange.h"
#include "gateway/proxy/response_relay.h"
#include "gateway/proxy/route_gate.h"
#include "gateway/proxy/upstream_request.h"

namespace gw::proxy {

class WorkerContext;

// What an exchange needs of the client connection it arrived on.
class Downstream {
 public:
  virtual ~Downstream() = default;
  virtual core::OutQueue& clientOutput() = 0;
  // Writes what is queued; false when that closed the connection (the exchange is gone too).
  virtual bool flushClient() = 0;
  virtual void pauseClientReads() = 0;
  // The upstream took the request bytes queued so far: a paused client is read again.
  virtual void requestBytesDrained() = 0;
  // The request body is awaited: the client's read timeout becomes the body timeout.
  virtual void awaitRequestBody() = 0;
  // More request bytes are already buffered (a 100 Continue would come too late).
  virtual bool requestBytesBuffered() const = 0;
  virtual bool draining() const = 0;
  // The exchange answered itself (its response phase already ran): write it and record it.
  // `close`: the connection ends after it.
  virtual void answered(LocalResponse response, bool close) = 0;
  // The exchange ends with the gateway's error answer (recorded with its code); it comes back
  // through Exchange::respond() for the route's response phase.
  virtual void answerError(const core::Error& error, bool close) = 0;
  // The proxied response is queued in full: record it and go on to the next request or close.
  virtual void completed(int status, bool close) = 0;
  // Part of the response reached the client and the rest cannot: record it, cut the connection.
  virtual void cut(int status, core::ErrorCode error) = 0;
  // A plugin that waited resumed: what the client sent meanwhile is parsed now.
  virtual void exchangeResumed() = 0;
  virtual void recoverFromBug(const char* what) = 0;
};

// The routed request an exchange starts from (views valid during start() only).
struct RoutedRequest {
  const config::RouteConfig* route = nullptr;
  std::size_t routeIndex = 0;
  uint64_t seq = 0;
  ClientView client;
  std::string_view method;
  bool idempotent = false;
  bool hasBody = false;
  bool chunked = false;
  std::optional<uint64_t> contentLength;  // declared (none when chunked)
  bool expectContinue = false;
  std::string_view host;          // lower-case, no port
  std::string_view forwardHost;   // as the client sent it ("" if none)
  std::string_view path;          // normalised
  std::string_view query;
  bool hasQuery = false;
  std::string_view clientIp;
  std::string_view traceParent;   // toward the upstream ("" when tracing is off)
  bool keepTraceState = true;
  bool fromTrustedProxy = false;
  bool secure = false;  // the client came over TLS
};

class Exchange final : public plugin::Context,
                       public Forwarder::Owner,
                       public ResponsePhases {
 public:
  // Queued: the route's concurrency slots are all taken; it waits for one (RouteQueue).
  enum class Stage : uint8_t { Filtering, Waiting, Buffering, Queued, Forwarding, Done };

  // Runs on `generation` (held until the exchange ends), whatever a reload makes current.
  Exchange(Generation& generation, Downstream& downstream, const RoutedRequest& request);
  ~Exchange() override;
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Forwards the request, after the route's request-header phase when it has plugins (which then
  // get their own copy of the request). `overBodyLimit`: the declared body is too large, answered
  // with 413 (after the copy, so the route's plugins see it like any answer of theirs).
  void start(const ParserFields& fields, bool overBodyLimit);
  // The response phase of the route's plugins on a gateway-made answer, then Downstream::answered.
  void respond(LocalResponse response, bool close);
  // The exchange cannot go on (a timeout, an upstream failure): an error answer, or a cut response.
  void failExchange(const core::Error& error);

  // Request body events from the client's parser.
  enum class BodyVerdict : uint8_t { Accepted, TooLarge, Refused };
  BodyVerdict onRequestBody(std::string_view piece);
  void onRequestChunkHeader(uint64_t length);
  void onRequestChunkComplete();
  // False when a plugin refused the body at its end (its answer is pending).
  bool onRequestComplete();
  // The whole body a plugin asked for is here: plugins judge it, then it goes upstream.
  void onBodyBuffered();
  // Sends what is queued toward the upstream (called after each batch of client input).
  void sendUpstream() { forwarder_.send(); }
  // A plugin refused a streamed piece: its answer.
  std::optional<LocalResponse> takeAnswer();
  // The global plugins' response phase on an answer no route took (this exchange is the
  // unrouted one, made for the purpose): plugins know only its method and client.
  void filterUnroutedAnswer(LocalResponse& response, std::string_view requestId);
  // The backend may hold part of the request: its connection is closed, never pooled.
  void abandonUpstream() { forwarder_.abandon(); }
  // The client took its pending output: the upstream is read again.
  void resumeUpstreamReads() {
    if (upstream::Connection* lease = forwarder_.lease()) lease->resumeReads();
  }

  Stage stage() const { return stage_; }
  // Reading the client waits too: for a plugin, or for a concurrency slot.
  bool waiting() const { return stage_ == Stage::Waiting || stage_ == Stage::Queued; }
  // A plugin asked for the whole body before anything goes upstream.
  bool buffering() const { return plugins_ && plugins_->bufferLimit > 0; }
  bool requestComplete() const override { return requestComplete_; }
  bool responseStarted() const { return relay_.started(); }
  // Takes back a response head no byte of which reached the client.
  bool withdrawResponse() { return relay_.withdraw(); }
  void forceClose() { relay_.forceClose(); }
  const config::RouteConfig& route() const { return route_; }
  const upstream::Backend* backend() const { return forwarder_.backend(); }
  uint32_t tries() const { return forwarder_.tries(); }
  int64_t upstreamMicros() const { return forwarder_.upstreamMicros(); }
  upstream::Cluster& cluster() { return cluster_; }
  const upstream::Timeouts& timeouts() const { return timeouts_; }
  std::string_view forwardHost() const { return target_.forwardHost; }
  bool hasQuery() const { return target_.hasQuery; }
  WorkerContext& worker() { return worker_; }
  Generation& generation() { return *generation_; }
  // What plugins noted for the access log (nothing on a route without plugins).
  std::span<const std::string_view> exchangeNotes() const {
    return plugins_ ? plugins_->notes.values() : std::span<const std::string_view>();
  }

  // plugin::Context
  const plugin::RequestInfo& request() const override { return plugins_->info; }
  plugin::HeaderMap& requestHeaders() override { return plugins_->requestFields; }
  plugin::HeaderMap& responseHeaders() override { return *plugins_->responseFields; }
  int responseStatus() const override { return status_; }
  std::string_view requestId() const override;
  void setRequestId(std::string id) override {
    plugins_->requestId = std::move(id);
    plugins_->requestIdSeq.reset();
  }
  void reply(int status, std::string body, std::string_view contentType) override;
  void fail(core::Error error) override;
  void replyWith(int status, std::span<const Field> fields, std::string body) override;
  void bufferRequestBody(std::size_t limit) override;
  bool fetchInBackground(plugin::BackgroundRequest request) override;
  void resume() override;
  plugin::Dispatcher& dispatcher() override;
  int64_t nowMs() const override;
  plugin::ExchangeNotes& notes() override { return plugins_->notes; }
  std::span<uint64_t> counters() override;

  // Forwarder::Owner
  void onResponseParsed() override;
  bool responseEndsAtClose(upstream::Connection& lease) override;
  void onForwardFailed(const core::Error& error) override;
  void onRequestDrained() override { downstream_.requestBytesDrained(); }
  void onUpstreamBackpressure() override { downstream_.pauseClientReads(); }
  std::string_view responseRefusal() const override { return relay_.refusal(); }
  std::string_view logRoute() const override { return route_.name; }
  void recoverFromBug(const char* what) override { downstream_.recoverFromBug(what); }

  // ResponsePhases
  FieldList& upstreamHeadFields() override { return plugins_->upstreamResponseFields; }
  plugin::Status filterUpstreamHead(int status, LocalResponse& replacement) override;
  void filterUpstreamBody(std::string_view piece, bool end) override;

 private:
  // Copies what plugins may read of the request (the input buffer moves on without them).
  void captureRequest();
  // Copies the request, then runs the request-header phase.
  void filter(const ParserFields& fields, bool overBodyLimit);
  void runRequestHeaders();
  // After the request-header phase let it pass: buffer the body, or forward.
  void forwardFiltered();
  template <typename Fields>
  void buildHead(const Fields& fields, std::string_view path, std::optional<uint64_t> bodyLength);
  void startForwarding(std::string_view bufferedBody);
  // On a route with a concurrency limit: whether the exchange holds a slot now; if not, it waits
  // for one (admitted() forwards it) or was answered ROUTE_OVERLOADED.
  bool takeSlot();
  // The exchange ends on a route with a concurrency limit: it leaves the queue, or gives its
  // slot back.
  void leaveRouteGate();
  // A waiter stopped waiting: counted with its wait.
  void countLeftQueue(int64_t waitedUs);
  // From the queue (QueueSeat): a slot is ours, or queue_timeout came first.
  void admitted(int64_t waitedUs);
  void timedOut(int64_t waitedUs);
  // False when writing the 100 Continue closed the connection.
  bool sendContinueIfExpected();
  void answerFromPlugin();
  plugin::Status filterStreamedBody(std::string_view piece, bool end);
  plugin::Status runResponseHeaders();
  // The response-header phase on a gateway-made response; a plugin may replace it once.
  void filterLocalResponse(LocalResponse& response);
  // Stop where a phase cannot wait (a streamed body piece, the response phases), or Respond on a
  // response body piece: logged as the plugin's bug, and the phase goes on with the next plugin.
  void refuseWait(std::string_view phase);
  void complete();

  Generation::Hold generation_;
  WorkerContext& worker_;
  Downstream& downstream_;
  const config::RouteConfig& route_;
  std::size_t routeIndex_;
  upstream::Cluster& cluster_;
  const upstream::Timeouts& timeouts_;
  RoutedRequest target_;  // views into the parser's buffer: valid until the head is built
  ResponseRelay relay_;
  Forwarder forwarder_;
  RouteQueue* const routeQueue_;  // the route's concurrency queue on this worker (null: no limit)
  // The exchange's place in that queue, made the first time it has to wait (so an exchange that
  // never waits carries one pointer for it).
  struct QueueSeat;
  std::unique_ptr<QueueSeat> seat_;
  // Only routes with plugins have one; recycled per worker so it keeps its capacity.
  std::unique_ptr<PluginExchange> plugins_;
  Stage stage_ = Stage::Filtering;
  bool inRequestPhase_ = false;  // resume() during the phase itself only marks resumeRequested_
  bool resumeRequested_ = false;
  bool waitingOnBody_ = false;  // the Stop came from the buffered body's phase
  bool requestHasBody_ = false;
  bool requestComplete_ = false;
  bool requestChunkOpen_ = false;
  bool expectContinue_ = false;
  bool holdsSlot_ = false;  // of the route's concurrency limit: released once, when it ends
  bool idempotent_ = false;
  bool chunked_ = false;
  std::optional<uint64_t> requestLength_;
  uint64_t requestBodyBytes_ = 0;
  int status_ = 0;  // what plugins see as the response status
};

}  // namespace gw::proxy
