#include "gateway/proxy/exchange.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "gateway/core/guard.h"
#include "gateway/core/log.h"
#include "gateway/proxy/watermarks.h"
#include "gateway/proxy/worker_context.h"
#include "gateway/http/headers.h"
#include "gateway/proxy/background_fetch.h"
#include "gateway/proxy/balance_key.h"
#include "gateway/proxy/router.h"

namespace gw::proxy {

namespace {

using core::Error;
using core::ErrorCode;
using plugin::Status;
using Phase = FilterChain::Phase;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

struct Exchange::QueueSeat final : RouteQueue::Waiter {
  explicit QueueSeat(Exchange& exchange) : exchange(exchange) {}
  void admitted(int64_t waitedUs) override { exchange.admitted(waitedUs); }
  void timedOut(int64_t waitedUs) override { exchange.timedOut(waitedUs); }
  Exchange& exchange;
};

void PluginExchange::reset(const config::RouteConfig& route,
                           std::span<plugin::WorkerState* const> states) {
  chain.start(route.plugins, states);
  requestFields.clear();
  upstreamResponseFields.clear();
  responseFields = &upstreamResponseFields;
  answer.reset();
  requestId.clear();
  requestIdSeq.reset();
  notes = {};
  bufferLimit = 0;
  // A large buffered body is not worth keeping around for the next request.
  if (bufferedBody.capacity() > 64 * 1024) std::string().swap(bufferedBody);
  bufferedBody.clear();
}

Exchange::Exchange(Generation& generation, Downstream& downstream, const RoutedRequest& request)
    : generation_(generation),
      worker_(generation.worker()),
      downstream_(downstream),
      route_(*request.route),
      routeIndex_(request.routeIndex),
      cluster_(generation.cluster(route_.upstream)),
      timeouts_(generation.routeTimeouts(routeIndex_)),
      target_(request),
      relay_(downstream.clientOutput(), request.client, route_.plugins.empty() ? nullptr : this),
      forwarder_(cluster_, timeouts_, worker_.heads(), *this, relay_,
                 route_.retries ? &*route_.retries : nullptr),
      routeQueue_(generation.routeQueue(request.routeIndex)),
      requestHasBody_(request.hasBody),
      expectContinue_(request.expectContinue && request.hasBody &&
                      request.client.versionMinor >= 1),
      idempotent_(request.idempotent),
      chunked_(request.chunked),
      requestLength_(request.contentLength) {
  if (!route_.plugins.empty()) {
    plugins_ = worker_.pluginExchanges().take();
    if (!plugins_) plugins_ = std::make_unique<PluginExchange>();
    plugins_->reset(route_, generation.pluginStates(routeIndex_));
  }
}

Exchange::~Exchange() {
  if (routeQueue_) [[unlikely]]
    leaveRouteGate();
  if (plugins_) {
    plugins_->chain.finish(*this);
    worker_.pluginExchanges().give(std::move(plugins_));
  }
}

// --- request side ---

void Exchange::start(const ParserFields& fields, bool overBodyLimit) {
  if (plugins_) {
    filter(fields, overBodyLimit);
    return;
  }
  if (overBodyLimit) {
    failExchange(Error::downstream(ErrorCode::PayloadTooLarge, "request body exceeds the limit"));
    return;
  }
  // The fast path: the upstream head is written straight from the parsed fields.
  buildHead(fields, target_.path, requestLength_);
  if (!sendContinueIfExpected()) return;
  // Without a body the running header/idle timer is left alone: its expiry is ignored while a
  // response is awaited (the upstream read timeout governs), and going idle re-arms it.
  if (requestHasBody_) downstream_.awaitRequestBody();
  startForwarding({});
}

void Exchange::captureRequest() {
  PluginExchange& p = *plugins_;
  // One copy of every view, back to back, and the request's views moved onto it: the upstream
  // head is built from it later.
  std::string_view* const views[] = {&target_.method, &target_.host,        &target_.path,
                                     &target_.query,  &target_.forwardHost, &target_.clientIp};
  std::size_t size = 0;
  for (const std::string_view* view : views) size += view->size();
  p.requestText.resize(size);
  char* out = p.requestText.data();
  for (std::string_view* view : views) {
    if (!view->empty()) std::memcpy(out, view->data(), view->size());
    *view = {out, view->size()};
    out += view->size();
  }
  p.info = {target_.method,   target_.path, target_.query,       target_.host,
            target_.clientIp, route_.name,  target_.forwardHost, requestHasBody_};
}

void Exchange::filterUnroutedAnswer(LocalResponse& response, std::string_view requestId) {
  captureRequest();
  plugins_->requestId = requestId;
  plugins_->requestIdSeq.reset();
  filterLocalResponse(response);
}

void Exchange::filter(const ParserFields& fields, bool overBodyLimit) {
  // Plugins may wait (Stop) while the input buffer moves on: they get their own copy, and the
  // head toward the upstream is built from it.
  captureRequest();
  plugins_->requestIdSeq = target_.seq;
  PluginExchange& p = *plugins_;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const http::FieldName kind = fields.kind(i);
    const std::string_view name = fields.name(i);
    if (http::isHopByHop(kind) || kind == http::FieldName::Dropped || fields.nominated(name)) {
      continue;
    }
    p.requestFields.add(name, fields.value(i), kind);
  }
  if (overBodyLimit) {
    failExchange(Error::downstream(ErrorCode::PayloadTooLarge, "request body exceeds the limit"));
    return;
  }
  runRequestHeaders();
}

void Exchange::runRequestHeaders() {
  Status status;
  inRequestPhase_ = true;
  do {
    resumeRequested_ = false;
    status = plugins_->chain.run(Phase::RequestHeaders, *this);
  } while (status == Status::Stop && resumeRequested_ && !plugins_->answer);
  inRequestPhase_ = false;
  // A plugin that waited may answer when it resumes (a coalesced cache miss served from the
  // leader's stored response).
  if (status == Status::Stop && resumeRequested_) status = Status::Respond;
  switch (status) {
    case Status::Continue:
      forwardFiltered();
      return;
    case Status::Respond:
      answerFromPlugin();
      return;
    case Status::Stop:
      stage_ = Stage::Waiting;  // parsing waits too; resume() picks up from here
      return;
  }
}

void Exchange::resume() {
  Downstream& downstream = downstream_;  // the exchange may end before this returns
  core::guarded(
      [&] {
        if (inRequestPhase_) {
          resumeRequested_ = true;
          return;
        }
        if (stage_ != Stage::Waiting) return;
        stage_ = Stage::Filtering;
        if (plugins_->answer) {
          answerFromPlugin();
          return;
        }
        if (std::exchange(waitingOnBody_, false)) {
          onBodyBuffered();  // a plugin waited in the buffered body's phase
        } else {
          runRequestHeaders();
        }
        downstream.exchangeResumed();
      },
      [&](const char* why) { downstream.recoverFromBug(why); });
}

void Exchange::forwardFiltered() {
  // A plugin that validates the body gets it whole before anything goes upstream; the head is
  // then built with its length (see onBodyBuffered()).
  if (buffering()) {
    stage_ = Stage::Buffering;
    if (!sendContinueIfExpected()) return;
    if (requestHasBody_) downstream_.awaitRequestBody();
    return;
  }
  buildHead(ListFields{plugins_->requestFields}, target_.path, requestLength_);
  if (!sendContinueIfExpected()) return;
  if (requestHasBody_) downstream_.awaitRequestBody();
  startForwarding({});
}

void Exchange::onBodyBuffered() {
  const std::string& body = plugins_->bufferedBody;
  switch (plugins_->chain.run(Phase::RequestBody, *this, body, true)) {
    case Status::Respond:
      answerFromPlugin();
      return;
    case Status::Stop:
      stage_ = Stage::Waiting;
      waitingOnBody_ = true;
      return;
    case Status::Continue:
      break;
  }
  buildHead(ListFields{plugins_->requestFields}, target_.path, body.size());
  startForwarding(body);
}

template <typename Fields>
void Exchange::buildHead(const Fields& fields, std::string_view path,
                         std::optional<uint64_t> bodyLength) {
  const ForwardTarget target{target_.method,
                             target_.forwardHost,
                             rewritePath(route_, path, worker_.scratch().rewritten),
                             target_.query,
                             target_.hasQuery,
                             bodyLength,
                             target_.traceParent,
                             target_.keepTraceState,
                             target_.fromTrustedProxy,
                             target_.secure};
  forwarder_.setHostSplit(buildUpstreamHead(forwarder_.head(), target, fields, target_.clientIp,
                                            route_.preserve_host, chunked_));
  const config::LoadBalancing& balancing = cluster_.config().load_balancing;
  if (balancing.policy == config::BalancingPolicy::Hash) {
    forwarder_.setHashKey(balanceKey(balancing, fields, target_.clientIp));
  }
}

void Exchange::startForwarding(std::string_view bufferedBody) {
  if (routeQueue_) [[unlikely]] {
    if (!takeSlot()) return;
  }
  stage_ = Stage::Forwarding;
  forwarder_.start({.idempotent = idempotent_, .requestHasBody = requestHasBody_}, bufferedBody);
}

bool Exchange::takeSlot() {
  if (routeQueue_->admit()) {
    holdsSlot_ = true;
    return true;
  }
  observability::RouteMetrics& metrics = generation_->metrics().routes[routeIndex_];
  seat_ = std::make_unique<QueueSeat>(*this);
  if (!routeQueue_->join(*seat_)) {
    ++metrics.overloaded[0];
    failExchange(Error::downstream(ErrorCode::RouteOverloaded, "the route's queue is full"));
    return false;
  }
  stage_ = Stage::Queued;  // the client is not read meanwhile (Downstream sees waiting())
  ++metrics.queue_joined;
  return false;
}

void Exchange::leaveRouteGate() {
  if (seat_ && seat_->queued()) countLeftQueue(routeQueue_->leave(*seat_));
  if (holdsSlot_) routeQueue_->gate().release(routeQueue_);
}

void Exchange::countLeftQueue(int64_t waitedUs) {
  observability::RouteMetrics& metrics = generation_->metrics().routes[routeIndex_];
  ++metrics.queue_left;
  metrics.queue_wait_us += static_cast<uint64_t>(std::max<int64_t>(0, waitedUs));
}

void Exchange::admitted(int64_t waitedUs) {
  Downstream& downstream = downstream_;  // the exchange may end before this returns
  core::guarded(
      [&] {
        holdsSlot_ = true;
        countLeftQueue(waitedUs);
        stage_ = Stage::Forwarding;
        // What startForwarding() was given: the body a plugin buffered whole, or none.
        const std::string_view body = buffering() ? plugins_->bufferedBody : std::string_view();
        forwarder_.start({.idempotent = idempotent_, .requestHasBody = requestHasBody_}, body);
        downstream.exchangeResumed();  // the body the client sent meanwhile goes up now
      },
      [&](const char* why) { downstream.recoverFromBug(why); });
}

void Exchange::timedOut(int64_t waitedUs) {
  Downstream& downstream = downstream_;
  core::guarded(
      [&] {
        countLeftQueue(waitedUs);
        ++generation_->metrics().routes[routeIndex_].overloaded[1];
        failExchange(Error::downstream(ErrorCode::RouteOverloaded,
                                       "no concurrency slot of the route freed in time"));
      },
      [&](const char* why) { downstream.recoverFromBug(why); });
}

bool Exchange::sendContinueIfExpected() {
  if (!expectContinue_ || downstream_.requestBytesBuffered()) return true;
  // The client waits for our go-ahead; the backend never sees the Expect.
  downstream_.clientOutput().append(kContinue);
  return downstream_.flushClient();
}

Exchange::BodyVerdict Exchange::onRequestBody(std::string_view piece) {
  requestBodyBytes_ += piece.size();
  if (requestBodyBytes_ > route_.body_bytes) return BodyVerdict::TooLarge;
  if (buffering()) {
    std::string& body = plugins_->bufferedBody;
    if (body.size() + piece.size() > plugins_->bufferLimit) return BodyVerdict::TooLarge;
    body += piece;
    return BodyVerdict::Accepted;
  }
  if (plugins_ && filterStreamedBody(piece, false) == Status::Respond) return BodyVerdict::Refused;
  if (upstream::Connection* lease = forwarder_.lease()) lease->output().borrow(piece.data(), piece.size());
  return BodyVerdict::Accepted;
}

Status Exchange::filterStreamedBody(std::string_view piece, bool end) {
  Status status;
  // A streamed piece cannot wait: it lives in the client's input buffer.
  while ((status = plugins_->chain.run(Phase::RequestBody, *this, piece, end)) == Status::Stop) {
    refuseWait("request body");
  }
  return status;
}

// The request body is re-chunked from what llhttp decoded: chunk extensions and trailers never
// reach the backend, only sizes we computed ourselves.
void Exchange::onRequestChunkHeader(uint64_t length) {
  upstream::Connection* lease = forwarder_.lease();
  if (length == 0 || !lease || buffering()) return;
  char line[24];
  const int n = std::snprintf(line, sizeof line, "%llx\r\n", static_cast<unsigned long long>(length));
  lease->output().append({line, static_cast<std::size_t>(n)});
  requestChunkOpen_ = true;
}

void Exchange::onRequestChunkComplete() {
  if (requestChunkOpen_ && forwarder_.lease()) forwarder_.lease()->output().append("\r\n");
  requestChunkOpen_ = false;
}

bool Exchange::onRequestComplete() {
  if (plugins_ && requestHasBody_ && !buffering() &&
      filterStreamedBody({}, true) == Status::Respond) {
    return false;
  }
  if (chunked_ && !buffering()) {
    if (upstream::Connection* lease = forwarder_.lease()) lease->output().append("0\r\n\r\n");
  }
  requestComplete_ = true;
  return true;
}

std::optional<LocalResponse> Exchange::takeAnswer() {
  if (!plugins_ || !plugins_->answer) return std::nullopt;
  std::optional<LocalResponse> answer = std::move(plugins_->answer);
  plugins_->answer.reset();
  return answer;
}

// --- answers ---

void Exchange::answerFromPlugin() {
  std::optional<LocalResponse> answer = takeAnswer();
  if (!answer) {
    downstream_.recoverFromBug("a plugin returned Respond without reply() or fail()");
    return;
  }
  const bool requestDone = requestComplete_ || !requestHasBody_;
  respond(std::move(*answer), !requestDone || relay_.closeAfter() || downstream_.draining());
}

void Exchange::respond(LocalResponse response, bool close) {
  // A route's response plugins see gateway-made answers too (a 429 gets security headers).
  if (plugins_ && !relay_.started()) filterLocalResponse(response);
  stage_ = Stage::Done;
  downstream_.answered(std::move(response), close);
}

void Exchange::failExchange(const Error& error) {
  if (relay_.started() && !relay_.withdraw()) {
    // Part of the response is out: the only honest signal left is cutting the connection.
    core::log::warn("response cut short", {{"route", route_.name},
                                           {"request_id", requestId()},
                                           {"reason", error.message}});
    stage_ = Stage::Done;
    downstream_.cut(relay_.status(), error.code);
    return;
  }
  // A body-less request is as good as read: its message completes without more bytes.
  const bool requestDone = requestComplete_ || !requestHasBody_;
  forwarder_.abandon();
  stage_ = Stage::Done;
  downstream_.answerError(error, !requestDone || relay_.closeAfter() || downstream_.draining());
}

void Exchange::filterLocalResponse(LocalResponse& response) {
  status_ = response.status;
  plugins_->responseFields = &response.headers;
  if (runResponseHeaders() == Status::Respond) {
    if (std::optional<LocalResponse> replacement = takeAnswer()) {
      // A plugin replaced the response (a cache serving its stored copy instead of an error):
      // every plugin sees the replacement from the start, once; a second replacement is ignored.
      response = std::move(*replacement);
      status_ = response.status;
      runResponseHeaders();
      takeAnswer();
    }
  }
  plugins_->responseFields = &plugins_->upstreamResponseFields;
}

Status Exchange::runResponseHeaders() {
  Status status;
  while ((status = plugins_->chain.run(Phase::ResponseHeaders, *this)) == Status::Stop) {
    refuseWait("response headers");
  }
  return status;
}

void Exchange::refuseWait(std::string_view phase) {
  // Like OpenResty's header and body filters, these phases cannot wait (nor answer, once the
  // head is on its way): the bytes they see are moving. A plugin that asks to is wrong, and the
  // exchange must not hang on it.
  core::log::error("programmer error: a plugin's status cannot be honoured in this phase",
                   {{"plugin", plugins_->chain.stoppedBy()},
                    {"phase", phase},
                    {"route", route_.name}});
  plugins_->chain.passOver();
}

// --- response side ---

Status Exchange::filterUpstreamHead(int status, LocalResponse& replacement) {
  status_ = status;
  if (runResponseHeaders() != Status::Respond) return Status::Continue;
  std::optional<LocalResponse> answer = takeAnswer();
  if (!answer) return Status::Continue;  // Respond without an answer: nothing to replace with
  replacement = std::move(*answer);
  filterLocalResponse(replacement);
  return Status::Respond;
}

void Exchange::filterUpstreamBody(std::string_view piece, bool end) {
  Status status;
  while ((status = plugins_->chain.run(Phase::ResponseBody, *this, piece, end)) != Status::Continue) {
    // The head is on its way: a body piece can neither wait nor be answered instead.
    refuseWait("response body");
  }
}

void Exchange::onResponseParsed() {
  core::OutQueue& out = downstream_.clientOutput();
  if (!downstream_.flushClient()) return;
  // Only now may the input move: the client's queue no longer borrows from it. Bytes left
  // after a complete response stay where they are and keep the connection out of the pool.
  out.retainBorrowed();
  upstream::Connection& up = *forwarder_.lease();
  if (!up.parser().inHead()) up.input().compact();
  if (relay_.complete()) {
    complete();
  } else if (out.pending() > kHighWatermark) {
    up.pauseReads();
  }
}

bool Exchange::responseEndsAtClose(upstream::Connection& lease) {
  return lease.endsResponseAtClose(relay_.started()) && relay_.complete();
}

void Exchange::onForwardFailed(const Error& error) { failExchange(error); }

void Exchange::complete() {
  forwarder_.finish(relay_.upstreamStatus(), relay_.upstreamReusable() && requestComplete_);
  stage_ = Stage::Done;
  // A response that came before the whole request leaves request bytes we will never parse.
  downstream_.completed(relay_.status(), relay_.closeAfter() || !requestComplete_);
}

// --- plugin::Context ---

std::string_view Exchange::requestId() const {
  if (!plugins_) return {};
  PluginExchange& p = *plugins_;
  if (p.requestIdSeq) {
    char id[WorkerContext::kRequestIdLength];
    worker_.formatRequestId(*p.requestIdSeq, id);
    p.requestId.assign(id, sizeof id);
    p.requestIdSeq.reset();
  }
  return p.requestId;
}

void Exchange::reply(int status, std::string body, std::string_view contentType) {
  plugins_->answer = makeResponse(status, std::move(body), contentType, requestId());
}

void Exchange::replyWith(int status, std::span<const Field> fields, std::string body) {
  plugins_->answer = makeResponseWith(status, fields, std::move(body));
}

void Exchange::fail(core::Error error) { plugins_->answer = makeErrorResponse(error, requestId()); }

void Exchange::bufferRequestBody(std::size_t limit) {
  plugins_->bufferLimit = std::max<std::size_t>(1, std::min(limit, route_.body_bytes));
}

bool Exchange::fetchInBackground(plugin::BackgroundRequest request) {
  return worker_.backgroundFetches().start(*this, std::move(request));
}

std::span<uint64_t> Exchange::counters() {
  return generation_->metrics().routes[routeIndex_].counters;
}

int64_t Exchange::nowMs() const { return worker_.nowMs(); }

plugin::Dispatcher& Exchange::dispatcher() { return worker_.dispatcher(); }

}  // namespace gw::proxy
