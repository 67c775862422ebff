#include "gateway/proxy/connection.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "gateway/core/clock.h"
#include "gateway/core/guard.h"
#include "gateway/core/log.h"
#include "gateway/http/headers.h"
#include "gateway/http/path.h"
#include "gateway/proxy/local_reply.h"
#include "gateway/proxy/request_head.h"
#include "gateway/proxy/router.h"
#include "gateway/proxy/watermarks.h"
#include "gateway/proxy/worker_context.h"

namespace gw::proxy {

namespace {

using core::Error;
using core::ErrorCode;

// Read whenever this much room is free; a standard block then takes a whole read.
constexpr std::size_t kMinRead = 4 * 1024;
constexpr std::chrono::milliseconds kLinger{2000};
// What the metrics and the access log say when the client left before its answer (as nginx).
constexpr int kClientClosedRequest = 499;

}  // namespace

Connection::Connection(WorkerContext& worker, net::Fd fd, const sockaddr* peer,
                       std::shared_ptr<const net::TlsContext> tls)
    : worker_(worker),
      fd_(std::move(fd)),
      tls_(tls ? std::make_unique<net::TlsStream>(std::move(tls), fd_.get()) : nullptr),
      readEvent_(
          event_new(worker.base(), fd_.get(), EV_READ | EV_PERSIST, &Connection::onReadable, this)),
      in_(&worker.blocks()),
      out_(&worker.outBuffers()),
      parser_(HTTP_REQUEST, this, worker.headLimits(), &worker.fieldLists()),
      exchange_(worker.exchangeSlots()),
      handshaking_(tls_ != nullptr) {
  std::string ip = net::formatIp(peer);
  std::snprintf(clientIp_, sizeof clientIp_, "%s", ip.c_str());
  if (const auto address = net::ipAddressOf(peer)) {
    fromTrustedProxy_ = net::anyContains(worker.config().trusted_proxies, *address);
  }
}

Connection::~Connection() { close(); }

void Connection::start() {
  if (handshaking_) {
    handshakeDeadlineMs_ = worker_.nowMs() + tls_->handshakeTimeout().count();
    continueHandshake();
    return;
  }
  event_add(readEvent_.get(), worker_.headerTimeout());
}

void Connection::continueHandshake() {
  switch (tls_->handshake()) {
    case net::TlsStream::Progress::Done:
      handshaking_ = false;
      ++worker_.metrics().tls_handshakes;
      if (tls_->resumed()) ++worker_.metrics().tls_sessions_resumed;
      if (writeArmed_) {
        writeArmed_ = false;
        event_del(writeEvent_.get());
      }
      // From here on the connection is a plain one: the header timeout starts now.
      event_add(readEvent_.get(), worker_.headerTimeout());
      readAgainIfBuffered();  // the first request often comes with the client's Finished
      return;
    case net::TlsStream::Progress::WantRead:
      if (writeArmed_) {
        writeArmed_ = false;
        event_del(writeEvent_.get());
      }
      awaitHandshake(readEvent_.get());
      return;
    case net::TlsStream::Progress::WantWrite:
      // Not readable meanwhile: a client sending more would wake us for nothing, again and again.
      event_del(readEvent_.get());
      if (!writeEvent_) {
        writeEvent_.reset(event_new(worker_.base(), fd_.get(), EV_WRITE | EV_PERSIST,
                                    &Connection::onWritable, this));
      }
      writeArmed_ = true;
      awaitHandshake(writeEvent_.get());
      return;
    case net::TlsStream::Progress::Failed:
      if (const auto reason = tls_->failure()) worker_.metrics().countHandshakeFailure(*reason);
      close();
      return;
  }
}

void Connection::handshakeTimedOut() {
  worker_.metrics().countHandshakeFailure(net::HandshakeFailure::Timeout);
  close();
}

void Connection::awaitHandshake(event* event) {
  // One deadline for the whole handshake, however slowly its bytes trickle in.
  const int64_t left = std::max<int64_t>(handshakeDeadlineMs_ - worker_.nowMs(), 1);
  const timeval tv{static_cast<time_t>(left / 1000),
                   static_cast<suseconds_t>((left % 1000) * 1000)};
  event_add(event, &tv);
}

void Connection::readAgainIfBuffered() {
  if (tls_ && fd_.valid() && !readsPaused_ && !lingering_ && tls_->hasBufferedInput()) {
    event_active(readEvent_.get(), EV_READ, 0);
  }
}

void Connection::drain() {
  draining_ = true;
  if (exchange_) {
    exchange_->forceClose();
  } else if (!out_.empty()) {
    closeAfterFlush_ = true;
  } else if (lastSeq_ == 0 || handshaking_ || in_.readable() > 0) {
    // Its first request (or the rest of a request) is on its way: a connection accepted a moment
    // ago, from a backlog that a restart or an upgrade hands over, would lose it to a close now.
    // It is answered with Connection: close, within the header timeout (and the drain's).
  } else {
    close();
  }
}

void Connection::close() {
  if (!fd_.valid()) return;
  if (log_.open()) recordExchange(kClientClosedRequest);
  exchange_.reset();
  event_del(readEvent_.get());
  if (writeEvent_) event_del(writeEvent_.get());
  if (tls_) {
    tls_->shutdown();
    tls_.reset();
  }
  fd_.reset();
  out_.clear();
  worker_.home().connectionClosed(*this);
}

void Connection::onReadable(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  core::guarded([&] { self->handleRead(what); },
                [&](const char* why) { self->recoverFromBug(why); });
}

void Connection::onWritable(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  core::guarded([&] { self->handleWrite(what); },
                [&](const char* why) { self->recoverFromBug(why); });
}

void Connection::recoverFromBug(const char* what) {
  core::log::error(
      "programmer error while handling a request",
      {{"what", what},
       {"client", clientIp_},
       {"route", exchange_ ? std::string_view(exchange_->route().name) : std::string_view()},
       {"request_id", currentRequestId()}});
  if (!fd_.valid()) return;
  if (exchange_ && exchange_->responseStarted() && !exchange_->withdrawResponse()) {
    close();  // the client already has part of a response: cutting it is the only honest end
    return;
  }
  // Earlier pipelined answers still queued go out first; ours follows them.
  exchange_.reset();
  reply(Error::internal("internal error"), true);
}

void Connection::handleRead(short what) {
  if (what & EV_TIMEOUT) {
    handleTimeout();
    return;
  }
  if (handshaking_) {
    continueHandshake();
    return;
  }
  if (lingering_) {
    char sink[4096];
    ssize_t n = ::recv(fd_.get(), sink, sizeof sink, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) close();
    return;
  }
  std::size_t maxInput = worker_.headLimits().headerBytes + core::IoBuffer::kClientBlockSize;
  if (!in_.reserve(kMinRead, maxInput)) {
    if (parser_.inHead()) {
      // The head's parsed bytes are still referenced: they move along, and the parser with them.
      parser_.rebase(in_.compactKeeping(parser_.headStart()));
    } else {
      in_.compact();
    }
    if (!in_.reserve(1, maxInput)) {
      // Pipelined bytes wait for the response in flight: stop reading until it is done.
      pauseClientReads();
      return;
    }
  }
  ssize_t n = tls_ ? tls_->read(in_.writePtr(), in_.writable())
                   : ::recv(fd_.get(), in_.writePtr(), in_.writable(), 0);
  if (n > 0) {
    in_.commit(static_cast<std::size_t>(n));
    processInput();
    readAgainIfBuffered();
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    if (tls_ && tls_->readWantsWrite()) armClientWrite();
    return;
  }
  // The client went away (or reset): whatever is in flight is abandoned.
  close();
}

void Connection::handleTimeout() {
  if (handshaking_) {
    handshakeTimedOut();
  } else if (lingering_) {
    close();
  } else if (exchange_ && exchange_->waiting()) {
    // Reading is paused for a plugin (a coalesced cache miss): its own bound applies, and a
    // client that sent everything it was asked for is not late.
  } else if (exchange_ && !exchange_->requestComplete()) {
    exchange_->failExchange(Error::downstream(ErrorCode::RequestTimeout, "client body timeout"));
  } else if (headPending_) {
    reply(Error::downstream(ErrorCode::RequestTimeout, "client header timeout"), true);
  } else if (!exchange_) {
    close();  // idle keep-alive connection
  }
}

void Connection::processInput() {
  // Re-entry (an exchange failing synchronously inside startExchange) is left to the outer loop.
  if (processing_) return;
  processing_ = true;
  parseBuffered();
  processing_ = false;
  if (!fd_.valid()) return;
  headPending_ = parser_.inHead();
  if (exchange_) exchange_->sendUpstream();
  if (!fd_.valid()) return;
  // Exchanges the gateway answered itself end here, not in endExchange(): reading that paused
  // for a full input buffer (or a full output queue) resumes once nothing holds it back.
  if (readsPaused_ && !exchange_ && out_.pending() < kLowWatermark) resumeClientReads();
  if (headPending_) {
    armHeadDeadline();
  } else {
    in_.compact();
    if (!exchange_ && !lingering_ && !closeAfterFlush_) goIdle();
  }
}

void Connection::parseBuffered() {
  bool runParser = true;
  while (runParser && fd_.valid() && !lingering_ && !closeAfterFlush_) {
    if (exchange_ && exchange_->requestComplete()) break;  // pipelined bytes wait their turn
    if (exchange_ && exchange_->waiting()) break;          // a plugin is still deciding
    if (!exchange_ && out_.pending() > kHighWatermark) {
      // The client is not reading its answers: the next pipelined request waits (handleWrite
      // picks it up once the queue drained), or the queue would hold every answer it asked for.
      pauseClientReads();
      break;
    }
    runParser = false;
    auto outcome = parser_.execute(in_.base(), in_.readPtr(), in_.readable());
    in_.consume(outcome.consumed);
    requestBytes_ += outcome.consumed;
    if (outcome.error == HPE_OK) break;
    if (outcome.error != HPE_PAUSED && outcome.error != HPE_PAUSED_UPGRADE) {
      rejectRequest(outcome.error);
      return;
    }
    Pause pause = pause_;
    pause_ = Pause::None;
    parser_.resume();
    if (pause == Pause::HeadersComplete) {
      headPending_ = false;
      headDeadlineMs_ = 0;
      startExchange();
    } else if (exchange_ && exchange_->stage() == Exchange::Stage::Buffering &&
               exchange_->requestComplete()) {
      exchange_->onBodyBuffered();  // the whole body is here: plugins judge it, then upstream
    }
    // Run again even with nothing buffered: llhttp completes a body-less message only when
    // executed past its head.
    runParser = true;
  }
}

void Connection::armHeadDeadline() {
  if (lingering_ || readsPaused_) return;
  // Slowloris: the whole head must arrive within client_header_timeout, however it trickles.
  int64_t now = worker_.nowMs();
  if (headDeadlineMs_ == 0) {
    headDeadlineMs_ = now + worker_.config().limits.client_header_timeout.count();
  }
  int64_t left = std::max<int64_t>(headDeadlineMs_ - now, 1);
  timeval tv{static_cast<time_t>(left / 1000), static_cast<suseconds_t>((left % 1000) * 1000)};
  event_add(readEvent_.get(), &tv);
}

int Connection::onHeadersComplete() {
  pause_ = Pause::HeadersComplete;
  return HPE_PAUSED;
}

int Connection::onBody(const char* data, std::size_t length) {
  if (!exchange_) return 0;
  switch (exchange_->onRequestBody({data, length})) {
    case Exchange::BodyVerdict::Accepted:
      return 0;
    case Exchange::BodyVerdict::TooLarge:
      bodyTooLarge_ = true;
      return HPE_USER;
    case Exchange::BodyVerdict::Refused:
      return HPE_USER;  // rejectRequest() sends the plugin's answer instead of an error
  }
  return 0;
}

int Connection::onChunkHeader(uint64_t length) {
  if (exchange_) exchange_->onRequestChunkHeader(length);
  return 0;
}

int Connection::onChunkComplete() {
  if (exchange_) exchange_->onRequestChunkComplete();
  return 0;
}

int Connection::onMessageComplete() {
  if (exchange_ && !exchange_->onRequestComplete()) return HPE_USER;
  pause_ = Pause::MessageComplete;
  return HPE_PAUSED;
}

void Connection::beginRecord(bool headParsed) {
  log_.begin(worker_.current(), parser_, in_.base(), headParsed, out_.queuedTotal());
  // Every exchange has its own id, a request refused before its head was complete too.
  lastSeq_ = worker_.nextRequestSeq();
}

void Connection::recordExchange(int status) {
  if (!log_.open()) beginRecord(false);  // refused before its head was even complete
  char requestId[WorkerContext::kRequestIdLength];
  ExchangeLog::Identity who{{}, clientIp_, {}};
  if (log_.needsIdentity()) {
    who.requestId = currentRequestId(requestId);
    if (exchange_) who.pluginFields = exchange_->exchangeNotes();
  }
  log_.finish(status, std::exchange(requestBytes_, 0), out_.queuedTotal(), who);
}

void Connection::startExchange() {
  beginRecord(true);
  // The request is served by the configuration that was current when its head was complete.
  Generation& generation = log_.generation();
  const char* base = in_.base();
  const config::Config& config = generation.config();
  WorkerContext::Scratch& scratch = worker_.scratch();
  auto fields = readHeadFields(parser_, base, config, scratch.fieldKinds);
  if (!fields) {
    reply(fields.error(), true);
    return;
  }
  if (config.tracing.enabled) {
    log_.startTrace(fields->traceParent, worker_.traceIds());
  }
  auto target = readHeadTarget(parser_, base, config, *fields, scratch.host, scratch.path);
  if (!target) {
    reply(target.error(), true);
    return;
  }
  const bool hasBody = parser_.chunked() || parser_.contentLength() > 0;
  auto match = generation.router().match(target->host, target->path, fields->methodName);
  if (!match.route) {
    // A well-formed request we do not serve keeps the connection, unless its body is still on
    // the wire.
    const bool close = hasBody || !parser_.keepAlive() || draining_;
    reply(match.miss == RouteMiss::MethodNotAllowed
              ? Error::downstream(ErrorCode::MethodNotAllowed, "method not allowed on this route")
              : Error::downstream(ErrorCode::RouteNotFound, "no route matches the request"),
          close);
    return;
  }
  const config::RouteConfig& route = *match.route;
  RoutedRequest request;
  request.route = &route;
  request.routeIndex = static_cast<std::size_t>(&route - config.routes.data());
  request.seq = lastSeq_;
  request.client.versionMinor = parser_.versionMinor();
  request.client.keepAlive = parser_.keepAlive() && !draining_;
  request.client.headRequest = fields->method == HTTP_HEAD;
  request.method = fields->methodName;
  request.idempotent = http::isIdempotent(fields->method);
  request.hasBody = hasBody;
  request.chunked = parser_.chunked();
  if (parser_.hasContentLength() && !parser_.chunked())
    request.contentLength = parser_.contentLength();
  request.expectContinue = fields->expectContinue;
  request.host = target->host;
  request.forwardHost = target->forwardHost;
  request.path = target->path;
  request.query = target->query;
  request.hasQuery = target->hasQuery;
  request.clientIp = clientIp_;
  request.traceParent = log_.upstreamTraceParent();
  request.keepTraceState = !log_.traced() || log_.traceContinued();
  request.fromTrustedProxy = fromTrustedProxy_;
  request.secure = tls_ != nullptr;
  log_.setRoute(request.routeIndex);
  exchange_.emplace(generation, *this, request);
  const bool overBodyLimit = request.contentLength && *request.contentLength > route.body_bytes;
  exchange_->start(ParserFields{parser_, base, scratch.fieldKinds, fields->tokens}, overBodyLimit);
}

void Connection::continueAfterExchange() {
  if (processing_ || !fd_.valid() || closeAfterFlush_) return;
  if (in_.readable() > 0) {
    processInput();  // the next pipelined request
  } else {
    goIdle();
  }
}

void Connection::reply(const Error& error, bool closeAfter) {
  if (!log_.open()) beginRecord(false);  // refused before its head was complete: its own id
  log_.setError(core::wireCode(error.code));
  if (error.code == ErrorCode::Internal) {
    core::log::error("internal error",
                     {{"message", error.message}, {"request_id", currentRequestId()}});
  }
  LocalResponse response = makeErrorResponse(error, currentRequestId());
  if (exchange_) {
    log_.setBackend(exchange_->backend(), exchange_->tries());
    exchange_->respond(std::move(response), closeAfter);  // back through answered()
    return;
  }
  // The global plugins' response phase runs on an answer no route took.
  if (!log_.generation().unrouted().plugins.empty()) runUnroutedResponsePhase(response);
  writeLocalResponse(response, closeAfter);
}

void Connection::answerError(const Error& error, bool close) { reply(error, close); }

void Connection::answered(LocalResponse response, bool close) {
  writeLocalResponse(response, close);
  if (!close) endExchange(false);
}

void Connection::writeLocalResponse(const LocalResponse& response, bool closeAfter) {
  appendResponse(out_, response,
                 {.closeConnection = closeAfter,
                  .headRequest = log_.methodName() == "HEAD",
                  .http10KeepAlive = parser_.versionMinor() == 0});
  recordExchange(response.status);
  if (closeAfter) {
    closeAfterFlush_ = true;
    exchange_.reset();
  }
  if (!flushClient()) return;
  if (closeAfter && out_.empty()) lingerThenClose();
}

void Connection::completed(int status, bool close) {
  log_.setBackend(exchange_->backend(), exchange_->tries());
  log_.setUpstreamMicros(exchange_->upstreamMicros());
  recordExchange(status);
  // The client said this was its last request (Connection: close, or HTTP/1.0) and sent all of
  // it: nothing more comes that a close could meet with a reset, so no lingering (as nginx).
  clientDone_ = !parser_.keepAlive() && exchange_->requestComplete() && in_.readable() == 0;
  endExchange(close || draining_);
}

void Connection::endExchange(bool close) {
  exchange_.reset();
  if (close) {
    closeAfterFlush_ = true;
    if (out_.empty()) lingerThenClose();
    return;
  }
  if (readsPaused_ && out_.pending() < kLowWatermark) resumeClientReads();
  continueAfterExchange();
}

void Connection::cut(int status, ErrorCode error) {
  log_.setError(core::wireCode(error));
  log_.setBackend(exchange_->backend(), exchange_->tries());
  recordExchange(status);
  close();
}

void Connection::exchangeResumed() {
  if (fd_.valid() && exchange_ && !exchange_->waiting()) processInput();
}

void Connection::awaitRequestBody() { setReadTimeout(worker_.bodyTimeout()); }

void Connection::requestBytesDrained() {
  if (readsPaused_) resumeClientReads();
}

void Connection::runUnroutedResponsePhase(LocalResponse& response) {
  // The request may be unreadable (that is often why no route took it): plugins get only what
  // is certain about it.
  Generation& generation = log_.generation();
  RoutedRequest request;
  request.route = &generation.unrouted();
  request.routeIndex = generation.unroutedIndex();
  request.seq = lastSeq_;
  request.client.versionMinor = parser_.versionMinor();
  request.client.headRequest = log_.methodName() == "HEAD";
  request.method = log_.methodName();
  request.clientIp = clientIp_;
  Exchange unrouted(generation, *this, request);
  unrouted.filterUnroutedAnswer(response, currentRequestId());
}

void Connection::rejectRequest(llhttp_errno_t err) {
  const bool overBodyLimit =
      err == HPE_USER && parser_.violation() == http::HeadViolation::None && bodyTooLarge_;
  const Error error = overBodyLimit ? Error::downstream(ErrorCode::PayloadTooLarge,
                                                        "request body exceeds the limit")
                                    : http::describeRefusal(parser_, err);
  headPending_ = false;
  if (!exchange_) {
    reply(error, true);
    return;
  }
  if (exchange_->responseStarted() && !exchange_->withdrawResponse()) {
    close();
    return;
  }
  // The backend may hold part of this request; its connection goes, never back to the pool.
  exchange_->abandonUpstream();
  if (std::optional<LocalResponse> answer = exchange_->takeAnswer()) {
    // A plugin refused a streamed body piece: its answer, and the rest of the body is not read.
    exchange_->respond(std::move(*answer), true);
    return;
  }
  reply(error, true);
}

bool Connection::flushClient() {
  auto status = tls_ ? out_.flush(*tls_) : out_.flush(fd_.get());
  if (status == core::OutQueue::WriteStatus::Failed) {
    close();
    return false;
  }
  if (status == core::OutQueue::WriteStatus::Blocked) {
    armClientWrite();
  } else if (writeArmed_) {
    writeArmed_ = false;
    event_del(writeEvent_.get());
  }
  return true;
}

void Connection::armClientWrite() {
  if (writeArmed_) return;
  if (!writeEvent_) {
    writeEvent_.reset(
        event_new(worker_.base(), fd_.get(), EV_WRITE | EV_PERSIST, &Connection::onWritable, this));
  }
  writeArmed_ = true;
  event_add(writeEvent_.get(), worker_.idleTimeout());
}

void Connection::handleWrite(short what) {
  if (what & EV_TIMEOUT) {
    // The client stopped reading (or stalled its handshake).
    handshaking_ ? handshakeTimedOut() : close();
    return;
  }
  if (handshaking_) {
    continueHandshake();
    return;
  }
  if (tls_ && tls_->readWantsWrite()) {
    handleRead(EV_READ);  // OpenSSL's own bytes are out: the read it stopped can go on
    if (!fd_.valid()) return;
  }
  if (!flushClient()) return;
  if (!out_.empty()) return;
  if (closeAfterFlush_) {
    lingerThenClose();
    return;
  }
  if (exchange_) {
    exchange_->resumeUpstreamReads();
    return;
  }
  if (readsPaused_) resumeClientReads();
  continueAfterExchange();
}

void Connection::pauseClientReads() {
  if (readsPaused_) return;
  readsPaused_ = true;
  event_del(readEvent_.get());
}

void Connection::resumeClientReads() {
  if (!readsPaused_) return;
  readsPaused_ = false;
  event_add(readEvent_.get(),
            exchange_ && !exchange_->requestComplete() ? worker_.bodyTimeout() : nullptr);
  readAgainIfBuffered();
}

void Connection::setReadTimeout(const timeval* timeout) {
  if (readsPaused_) return;
  event_add(readEvent_.get(), timeout);
  if (!timeout) event_remove_timer(readEvent_.get());
}

void Connection::goIdle() {
  exchange_.release();
  if (draining_) {
    if (out_.empty())
      close();
    else
      closeAfterFlush_ = true;
    return;
  }
  in_.releaseIfEmpty();
  parser_.shrink();
  if (out_.empty()) out_.shrink();
  setReadTimeout(worker_.idleTimeout());
}

void Connection::lingerThenClose() {
  // Half-close and read what the client still sends for a moment, so our last response is not
  // destroyed by a reset when unread request bytes meet close() (what nginx calls lingering close).
  if (lingering_) return;
  lingering_ = true;
  exchange_.reset();
  if (tls_) tls_->shutdown();
  if (clientDone_) {
    close();
    return;
  }
  ::shutdown(fd_.get(), SHUT_WR);
  readsPaused_ = false;
  event_add(readEvent_.get(), worker_.timeouts().get(kLinger));
}

std::string_view Connection::currentRequestId(
    char (&buffer)[WorkerContext::kRequestIdLength]) const {
  if (exchange_ && !exchange_->requestId().empty()) return exchange_->requestId();
  worker_.formatRequestId(lastSeq_, buffer);
  return {buffer, sizeof buffer};
}

std::string Connection::currentRequestId() const {
  if (exchange_ && !exchange_->requestId().empty()) return std::string(exchange_->requestId());
  return worker_.formatRequestId(lastSeq_);
}

}  // namespace gw::proxy
