#include "gateway/proxy/connection.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "gateway/core/clock.h"
#include "gateway/core/guard.h"
#include "gateway/core/log.h"
#include "gateway/core/worker.h"
#include "gateway/http/headers.h"
#include "gateway/http/path.h"
#include "gateway/proxy/local_reply.h"
#include "gateway/proxy/router.h"

namespace gw::proxy {

namespace {

using core::Error;
using core::ErrorCode;

// Read whenever this much room is free; a standard block then takes a whole read.
constexpr std::size_t kMinRead = 4 * 1024;
// Pending bytes toward one side above which the other side is no longer read.
constexpr std::size_t kHighWatermark = 256 * 1024;
constexpr std::size_t kLowWatermark = 64 * 1024;
constexpr std::chrono::milliseconds kLinger{2000};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// What the metrics and the access log say when the client left before its answer (as nginx).
constexpr int kClientClosedRequest = 499;

// llhttp's method number -> the metrics' method label, computed once.
int metricsMethod(llhttp_method_t method) {
  static const auto kTable = [] {
    std::array<uint8_t, 64> table;
    table.fill(static_cast<uint8_t>(observability::WorkerMetrics::methodIndex("OTHER")));
    // Only numbers llhttp defines: llhttp_method_name() aborts on any other.
#define GW_METHOD_ENTRY(number, name, text) \
  if ((number) < table.size())              \
    table[number] = static_cast<uint8_t>(observability::WorkerMetrics::methodIndex(#text));
    HTTP_ALL_METHOD_MAP(GW_METHOD_ENTRY)
#undef GW_METHOD_ENTRY
    return table;
  }();
  const auto index = static_cast<std::size_t>(method);
  return index < kTable.size() ? kTable[index]
                               : observability::WorkerMetrics::methodIndex("OTHER");
}

Error badRequest(std::string message) {
  return Error::downstream(ErrorCode::BadRequest, std::move(message));
}

}  // namespace

Connection::Connection(core::Worker& worker, net::Fd fd, const sockaddr* peer)
    : worker_(worker),
      fd_(std::move(fd)),
      readEvent_(event_new(worker.base(), fd_.get(), EV_READ | EV_PERSIST, &Connection::onReadable,
                           this)),
      in_(&worker.blocks()),
      parser_(HTTP_REQUEST, this, worker.headLimits(), &worker.fieldLists()) {
  std::string ip = net::formatIp(peer);
  std::snprintf(clientIp_, sizeof clientIp_, "%s", ip.c_str());
  if (const auto address = net::ipAddressOf(peer)) {
    fromTrustedProxy_ = net::anyContains(worker.config().trusted_proxies, *address);
  }
}

Connection::~Connection() { close(); }

void Connection::start() { event_add(readEvent_.get(), worker_.headerTimeout()); }

void Connection::drain() {
  draining_ = true;
  if (stream_) {
    stream_->forceClose();
  } else if (out_.empty()) {
    close();
  } else {
    closeAfterFlush_ = true;
  }
}

void Connection::close() {
  if (!fd_.valid()) return;
  if (record_.open) recordExchange(kClientClosedRequest);
  stream_.reset();
  event_del(readEvent_.get());
  if (writeEvent_) event_del(writeEvent_.get());
  fd_.reset();
  out_.clear();
  worker_.connectionClosed(*this);
}

void Connection::onReadable(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  core::guarded([&] { self->handleRead(what); }, [&](const char* why) { self->recoverFromBug(why); });
}

void Connection::onWritable(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  core::guarded([&] { self->handleWrite(what); }, [&](const char* why) { self->recoverFromBug(why); });
}

void Connection::recoverFromBug(const char* what) {
  core::log::error("programmer error while handling a request",
                   {{"what", what},
                    {"client", clientIp_},
                    {"route", stream_ ? std::string_view(stream_->route().name) : std::string_view()},
                    {"request_id", currentRequestId()}});
  if (!fd_.valid()) return;
  if (stream_ && stream_->responseStarted() && !stream_->withdrawResponse()) {
    close();  // the client already has part of a response: cutting it is the only honest end
    return;
  }
  // Earlier pipelined answers still queued go out first; ours follows them.
  stream_.reset();
  reply(Error::internal("internal error"), true);
}

void Connection::handleRead(short what) {
  if (what & EV_TIMEOUT) {
    handleTimeout();
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
  ssize_t n = ::recv(fd_.get(), in_.writePtr(), in_.writable(), 0);
  if (n > 0) {
    in_.commit(static_cast<std::size_t>(n));
    processInput();
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  // The client went away (or reset): whatever is in flight is abandoned.
  close();
}

void Connection::handleTimeout() {
  if (lingering_) {
    close();
  } else if (stream_ && stream_->waitingForPlugin) {
    // Reading is paused for a plugin (a coalesced cache miss): its own bound applies, and a
    // client that sent everything it was asked for is not late.
  } else if (stream_ && !stream_->requestComplete) {
    failExchange(Error::downstream(ErrorCode::RequestTimeout, "client body timeout"));
  } else if (headPending_) {
    reply(Error::downstream(ErrorCode::RequestTimeout, "client header timeout"), true);
  } else if (!stream_) {
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
  if (stream_) sendUpstream();
  if (!fd_.valid()) return;
  // Exchanges the gateway answered itself end here, not in finishExchange(): reading that
  // paused for a full input buffer (or a full output queue) resumes once nothing holds it back.
  if (readsPaused_ && !stream_ && out_.pending() < kLowWatermark) resumeClientReads();
  if (headPending_) {
    armHeadDeadline();
  } else {
    in_.compact();
    if (!stream_ && !lingering_ && !closeAfterFlush_) goIdle();
  }
}

void Connection::parseBuffered() {
  bool runParser = true;
  while (runParser && fd_.valid() && !lingering_ && !closeAfterFlush_) {
    if (stream_ && stream_->requestComplete) break;  // pipelined bytes wait their turn
    if (stream_ && stream_->waitingForPlugin) break;  // a plugin is still deciding
    if (!stream_ && out_.pending() > kHighWatermark) {
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
    } else if (stream_ && stream_->buffering() && !stream_->lease()) {
      finishBufferedRequest();  // the whole body is here: plugins judge it, then it goes upstream
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
  if (!stream_) return 0;
  stream_->requestBodyBytes += length;
  if (stream_->requestBodyBytes > stream_->route().body_bytes) {
    bodyTooLarge_ = true;
    return HPE_USER;
  }
  if (stream_->buffering()) {
    if (!stream_->bufferBody({data, length})) {
      bodyTooLarge_ = true;
      return HPE_USER;
    }
    return 0;
  }
  if (stream_->hasPlugins() && refusedByPlugin({data, length}, false)) return HPE_USER;
  if (auto& lease = stream_->lease()) lease->output().borrow(data, length);
  return 0;
}

bool Connection::refusedByPlugin(std::string_view piece, bool end) {
  // rejectRequest() then sends the plugin's answer instead of an error of its own.
  return stream_->chain().runRequestBody(*stream_, piece, end) == plugin::Status::Respond;
}

// The request body is re-chunked from what llhttp decoded: chunk extensions and trailers never
// reach the backend, only sizes we computed ourselves.
int Connection::onChunkHeader(uint64_t length) {
  if (!stream_ || length == 0 || !stream_->lease() || stream_->buffering()) return 0;
  char line[24];
  int n = std::snprintf(line, sizeof line, "%llx\r\n", static_cast<unsigned long long>(length));
  stream_->lease()->output().append({line, static_cast<std::size_t>(n)});
  requestChunkOpen_ = true;
  return 0;
}

int Connection::onChunkComplete() {
  if (requestChunkOpen_ && stream_ && stream_->lease()) stream_->lease()->output().append("\r\n");
  requestChunkOpen_ = false;
  return 0;
}

int Connection::onMessageComplete() {
  if (stream_) {
    if (stream_->hasPlugins() && stream_->requestHasBody && !stream_->buffering() &&
        refusedByPlugin({}, true)) {
      return HPE_USER;
    }
    if (parser_.chunked() && !stream_->buffering()) {
      if (auto& lease = stream_->lease()) lease->output().append("0\r\n\r\n");
    }
    stream_->requestComplete = true;
  }
  pause_ = Pause::MessageComplete;
  return HPE_PAUSED;
}

void Connection::beginRecord(bool headParsed) {
  record_.open = true;
  record_.startUs = worker_.nowUs();
  record_.startMonotonicUs = core::monotonicUs();
  record_.queuedAtStart = out_.queuedTotal();
  record_.route = worker_.snapshot().unroutedIndex();
  // Every exchange has its own id, a request refused before its head was complete too.
  lastSeq_ = worker_.nextRequestSeq();
  if (headParsed || parser_.methodKnown()) {
    record_.method = metricsMethod(parser_.method());
    record_.methodName = llhttp_method_name(parser_.method());
  } else {
    record_.method = observability::WorkerMetrics::methodIndex("OTHER");
    record_.methodName = {};
  }
  if (!worker_.accessLog()) return;
  record_.target.clear();
  record_.userAgent.clear();
  record_.loggedHeaders.clear();
  if (!headParsed) return;
  const char* base = in_.base();
  record_.target.assign(parser_.target(base));
  const auto& wanted = worker_.config().access_log.log_headers;
  for (std::size_t i = 0; i < parser_.fieldCount(); ++i) {
    const std::string_view name = parser_.fieldName(base, i);
    if (http::iequals(name, "User-Agent")) record_.userAgent.assign(parser_.fieldValue(base, i));
    for (const std::string& w : wanted) {
      if (http::iequals(name, w)) record_.loggedHeaders.emplace_back(name, parser_.fieldValue(base, i));
    }
  }
}

void Connection::recordExchange(int status) {
  if (!record_.open) beginRecord(false);  // refused before its head was even complete
  record_.open = false;
  const int64_t durationUs = std::max<int64_t>(core::monotonicUs() - record_.startMonotonicUs, 0);
  const uint64_t requestBytes = std::exchange(requestBytes_, 0);
  const uint64_t responseBytes = out_.queuedTotal() - record_.queuedAtStart;
  observability::RouteMetrics& metrics = worker_.metrics().routes[record_.route];
  metrics.countRequest(record_.method, status);
  metrics.duration.observe(static_cast<uint64_t>(durationUs));
  metrics.request_bytes += requestBytes;
  metrics.response_bytes += responseBytes;
  if (worker_.accessLog()) writeAccessLine(status, requestBytes, responseBytes, durationUs);
  if (record_.trace && worker_.spans()) exportSpan(status, durationUs);
  // What only this exchange had: the next one (or a request refused before it is parsed) starts
  // without them.
  record_.error = {};
  record_.backend = nullptr;
  record_.upstreamUs = -1;
  record_.trace.reset();
}

std::string_view Connection::recordUpstreamName() const {
  const config::Snapshot& snapshot = worker_.snapshot();
  if (record_.route == snapshot.unroutedIndex()) return {};
  return snapshot.metricsLayout->upstreams[snapshot.config.routes[record_.route].upstream].name;
}

void Connection::writeAccessLine(int status, uint64_t requestBytes, uint64_t responseBytes,
                                 int64_t durationUs) {
  const config::Snapshot& snapshot = worker_.snapshot();
  char requestId[core::Worker::kRequestIdLength];
  observability::AccessLogRecord r;
  r.time_us = record_.startUs;
  r.request_id = currentRequestId(requestId);
  if (record_.trace) {
    // Both are already in the traceparent sent upstream: 00-<trace id>-<span id>-<flags>.
    const std::string_view traceParent = upstreamTraceParent();
    r.trace_id = traceParent.substr(3, observability::kTraceIdHexLen);
    r.span_id = traceParent.substr(4 + observability::kTraceIdHexLen, observability::kSpanIdHexLen);
  }
  r.client = clientIp_;
  r.method = record_.methodName;
  const std::string_view target = record_.target;
  const std::size_t question = target.find('?');
  r.path = target.substr(0, question);
  if (question != std::string_view::npos) r.query = target.substr(question + 1);
  r.route = snapshot.metricsLayout->routes[record_.route];
  r.upstream = recordUpstreamName();
  if (record_.backend) r.backend = record_.backend->authority;
  r.status = status;
  r.bytes_in = requestBytes;
  r.bytes_out = responseBytes;
  r.duration_us = durationUs;
  r.upstream_duration_us = record_.upstreamUs;
  r.error = record_.error;
  if (stream_) r.plugin_fields = stream_->exchangeNotes();
  r.user_agent = record_.userAgent;
  observability::AccessLogHeader headers[16];
  std::size_t headerCount = 0;
  for (const auto& [name, value] : record_.loggedHeaders) {
    if (headerCount == std::size(headers)) break;
    headers[headerCount++] = {name, value};
  }
  r.headers = {headers, headerCount};
  observability::AccessLogBuffer& log = *worker_.accessLog();
  const int64_t nowMs = worker_.nowMs();
  log.append(r, *snapshot.accessLogFormat, nowMs);
  if (log.due(nowMs)) log.flush();
}

void Connection::exportSpan(int status, int64_t durationUs) {
  const config::Snapshot& snapshot = worker_.snapshot();
  const observability::TraceHop& hop = *record_.trace;
  observability::SpanRecord span;
  span.trace_id = hop.trace_id;
  span.span_id = hop.span_id;
  span.parent_span_id = hop.parent_span_id;
  span.method = record_.methodName.empty() ? "_OTHER" : record_.methodName;
  span.route = snapshot.metricsLayout->routes[record_.route];
  span.name = span.method + " " + span.route;
  span.start_unix_nanos = static_cast<uint64_t>(record_.startUs) * 1000;
  span.end_unix_nanos = static_cast<uint64_t>(record_.startUs + durationUs) * 1000;
  span.status_code = status;
  span.path = std::string_view(record_.target).substr(0, record_.target.find('?'));
  span.client_address = clientIp_;
  span.upstream = recordUpstreamName();
  if (record_.backend) span.server_address = record_.backend->authority;
  span.request_id = currentRequestId();
  worker_.spans()->add(std::move(span));
}

void Connection::upstreamError(const upstream::Backend& backend,
                               observability::UpstreamErrorKind kind, bool countsAgainstBackend) {
  upstream::Cluster& cluster = stream_->cluster();
  record_.backend = &backend;
  cluster.metrics().countError(kind);
  ++cluster.metrics().backends[cluster.indexOf(backend)].errors;
  if (countsAgainstBackend) reportBackendFailure(backend);
}

void Connection::reportBackendFailure(const upstream::Backend& backend) {
  upstream::Cluster& cluster = stream_->cluster();
  // A retry on the same backend belongs to the same exchange: one failure, not two.
  const uint64_t bit = uint64_t(1) << (cluster.indexOf(backend) & 63);
  if (stream_->failedBackends & bit) return;
  stream_->failedBackends |= bit;
  if (cluster.reportFailure(backend)) {
    core::log::warn("backend ejected after consecutive failures",
                    {{"upstream", cluster.config().name}, {"backend", backend.authority}});
  }
}

void Connection::startExchange() {
  beginRecord(true);
  const char* base = in_.base();
  const uint64_t seq = lastSeq_;
  bool hasBody = parser_.chunked() || parser_.contentLength() > 0;
  // A malformed request ends the connection: whatever follows it cannot be trusted.
  auto refuse = [&](const Error& error) { reply(error, true); };
  // A well-formed request we do not serve keeps it, unless its body is still on the wire.
  auto decline = [&](const Error& error) { reply(error, hasBody || !parser_.keepAlive() || draining_); };

  if (parser_.versionMajor() != 1) {
    refuse(badRequest("unsupported HTTP version"));
    return;
  }
  if (parser_.hasTransferEncoding() && !parser_.chunked()) {
    // RFC 9112 §6.1: without chunked last nothing says where the body ends. llhttp refuses it
    // only past the head, when a plugin's answer or the backend could already have acted on it.
    refuse(badRequest("malformed request: Transfer-Encoding does not end with chunked"));
    return;
  }
  llhttp_method_t method = parser_.method();
  std::string_view methodName = llhttp_method_name(method);
  if (method == HTTP_CONNECT) {
    reply(Error::downstream(ErrorCode::NotImplemented, "CONNECT is not supported"), true);
    return;
  }

  // First pass: the fields that decide how the request is handled.
  http::ConnectionTokens tokens;
  std::string_view host;
  int hostCount = 0;
  bool expectContinue = false;
  std::string_view traceParent;
  int traceParentCount = 0;
  // llhttp (strict) already refused control bytes, bare CR/LF and obs-fold in every field.
  auto& kinds = worker_.scratch().fieldKinds;
  kinds.resize(parser_.fieldCount());
  const config::UnderscoreHeaders underscores = worker_.config().underscores_in_headers;
  for (std::size_t i = 0; i < parser_.fieldCount(); ++i) {
    http::FieldName kind = http::classifyField(parser_.fieldName(base, i));
    kinds[i] = kind;
    switch (kind) {
      case http::FieldName::Host:
        host = parser_.fieldValue(base, i);
        ++hostCount;
        break;
      case http::FieldName::Connection:
        tokens.add(parser_.fieldValue(base, i));
        break;
      case http::FieldName::TraceParent:
        traceParent = parser_.fieldValue(base, i);
        ++traceParentCount;
        break;
      case http::FieldName::Expect:
        if (!http::hasToken(parser_.fieldValue(base, i), "100-continue")) {
          reply(Error::downstream(ErrorCode::ExpectationFailed, "unsupported expectation"), true);
          return;
        }
        expectContinue = true;
        break;
      case http::FieldName::Other:
        if (underscores != config::UnderscoreHeaders::Allow &&
            parser_.fieldName(base, i).find('_') != std::string_view::npos) {
          if (underscores == config::UnderscoreHeaders::Reject) {
            refuse(badRequest("header field name with an underscore"));
            return;
          }
          kinds[i] = http::FieldName::Dropped;
        }
        break;
      default:
        break;
    }
  }
  if (tokens.bad()) {
    refuse(badRequest("invalid Connection header"));
    return;
  }
  if (worker_.config().tracing.enabled) {
    // Two traceparent fields make neither trustworthy (W3C Trace Context 3.2): start afresh.
    record_.trace = observability::startHop(traceParentCount == 1 ? traceParent : std::string_view(),
                                            worker_.traceIds());
    record_.trace->formatUpstream(record_.traceParent);
  }

  std::string_view target = parser_.target(base);
  if (target.empty() || target.front() != '/') {
    // absolute-form (RFC 9112 3.2.2): the authority in the target replaces Host.
    constexpr std::string_view kHttp = "http://";
    if (target.size() > kHttp.size() && http::iequals(target.substr(0, kHttp.size()), kHttp)) {
      std::string_view rest = target.substr(kHttp.size());
      std::size_t slash = rest.find_first_of("/?");
      host = rest.substr(0, slash);
      hostCount = 1;
      target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
      if (target.front() == '?') {
        refuse(badRequest("request target without a path"));
        return;
      }
    } else {
      refuse(Error::downstream(ErrorCode::InvalidPath, "unsupported request target form"));
      return;
    }
  }
  if (hostCount > 1 || (hostCount == 0 && parser_.versionMinor() >= 1)) {
    refuse(Error::downstream(ErrorCode::MissingHost,
                             hostCount ? "duplicate Host header" : "missing Host header"));
    return;
  }
  std::string& hostLower = worker_.scratch().host;
  if (hostCount == 1 && !http::normaliseHost(host, hostLower)) {
    refuse(badRequest("invalid Host header"));
    return;
  }
  if (hostCount == 0) hostLower.clear();

  http::TargetParts parts = http::splitTarget(target);
  std::string& path = worker_.scratch().path;
  if (const auto bad = http::normalisePath(parts.path, path, worker_.config().path_rules);
      bad != http::PathError::None) {
    refuse(Error::downstream(ErrorCode::InvalidPath, std::string(http::describe(bad))));
    return;
  }

  auto match = worker_.router().match(hostLower, path, methodName);
  if (!match.route) {
    if (match.miss == RouteMiss::MethodNotAllowed) {
      decline(Error::downstream(ErrorCode::MethodNotAllowed, "method not allowed on this route"));
    } else {
      decline(Error::downstream(ErrorCode::RouteNotFound, "no route matches the request"));
    }
    return;
  }
  const config::RouteConfig& route = *match.route;
  std::size_t routeIndex = static_cast<std::size_t>(&route - worker_.config().routes.data());
  record_.route = routeIndex;
  ClientView client;
  client.versionMinor = parser_.versionMinor();
  client.keepAlive = parser_.keepAlive() && !draining_;
  client.headRequest = method == HTTP_HEAD;
  stream_ = std::make_unique<Stream>(worker_, *this, route, routeIndex, out_, client, seq);
  Stream& stream = *stream_;
  stream.requestHasBody = hasBody;
  stream.idempotent = http::isIdempotent(method);
  if (parser_.hasContentLength() && !parser_.chunked()) stream.requestLength = parser_.contentLength();
  stream.expectContinue = expectContinue && hasBody && client.versionMinor >= 1;
  std::string_view forwardHost = hostCount ? host : std::string_view();
  const bool overBodyLimit = stream.requestLength && *stream.requestLength > route.body_bytes;
  auto refuseBody = [&] {
    reply(Error::downstream(ErrorCode::PayloadTooLarge, "request body exceeds the limit"), true);
  };
  if (!stream.hasPlugins()) {
    if (overBodyLimit) {
      refuseBody();
      return;
    }
    // The fast path: the upstream head is written straight from the parsed fields.
    ForwardTarget target{methodName, forwardHost, rewritePath(route, path, worker_.scratch().rewritten),
                         parts.query, parts.has_query, stream.requestLength, upstreamTraceParent(),
                         !record_.trace || record_.trace->continued, fromTrustedProxy_};
    ParserFields fields{parser_, base, worker_.scratch().fieldKinds, tokens};
    buildUpstreamRequest(target, fields);
    forwardRequest();
    return;
  }
  // Plugins may wait (Stop) while the input buffer moves on: they get their own copy.
  stream.captureRequest(methodName, hostLower, path, parts.query, parts.has_query, forwardHost,
                        clientIp_, worker_.formatRequestId(seq));
  bool nominated = !tokens.others().empty();
  for (std::size_t i = 0; i < parser_.fieldCount(); ++i) {
    std::string_view name = parser_.fieldName(base, i);
    if (http::isHopByHop(kinds[i]) || kinds[i] == http::FieldName::Dropped ||
        (nominated && tokens.nominates(name))) {
      continue;
    }
    stream.requestFields().add(name, parser_.fieldValue(base, i));
  }
  if (overBodyLimit) {
    refuseBody();  // after the copy: the route's plugins see the 413 like any answer of theirs
    return;
  }
  runRequestHeadersPhase();
}

void Connection::runRequestHeadersPhase() {
  Stream& stream = *stream_;
  plugin::Status status;
  stream.inRequestPhase = true;
  do {
    stream.resumeRequested = false;
    status = stream.chain().runRequestHeaders(stream);
  } while (status == plugin::Status::Stop && stream.resumeRequested && !stream.answer());
  stream.inRequestPhase = false;
  // A plugin that waited may answer when it resumes (a coalesced cache miss served from the
  // leader's stored response).
  if (status == plugin::Status::Stop && stream.resumeRequested) status = plugin::Status::Respond;
  switch (status) {
    case plugin::Status::Continue:
      forwardPluginRequest();
      return;
    case plugin::Status::Respond:
      answerFromPlugin();
      return;
    case plugin::Status::Stop:
      stream.waitingForPlugin = true;  // parsing waits too; resumeExchange() picks up from here
      return;
  }
}

void Connection::resumeExchange() {
  core::guarded(
      [&] {
        if (!stream_) return;
        if (stream_->inRequestPhase) {
          stream_->resumeRequested = true;
          return;
        }
        if (!stream_->waitingForPlugin) return;
        stream_->waitingForPlugin = false;
        if (stream_->answer()) {
          answerFromPlugin();
        } else {
          runRequestHeadersPhase();
        }
        if (fd_.valid() && stream_ && !stream_->waitingForPlugin) processInput();
      },
      [&](const char* why) { recoverFromBug(why); });
}

void Connection::forwardPluginRequest() {
  Stream& stream = *stream_;
  // A plugin that validates the body gets it whole before anything goes upstream; the head is
  // then built with its length (see finishBufferedRequest()).
  if (stream.buffering()) {
    sendContinueIfExpected();
    if (stream.requestHasBody) setReadTimeout(worker_.bodyTimeout());
    return;
  }
  buildPluginUpstreamRequest(stream.requestLength);
  forwardRequest();
}

void Connection::buildPluginUpstreamRequest(std::optional<uint64_t> bodyLength) {
  Stream& stream = *stream_;
  const plugin::RequestInfo& info = stream.request();
  ForwardTarget target{info.method, stream.forwardHost(),
                       rewritePath(stream.route(), info.path, worker_.scratch().rewritten),
                       info.query, stream.hasQuery(), bodyLength, upstreamTraceParent(),
                       !record_.trace || record_.trace->continued, fromTrustedProxy_};
  buildUpstreamRequest(target, ListFields{stream.requestFields()});
}

void Connection::finishBufferedRequest() {
  Stream& stream = *stream_;
  if (stream.chain().runRequestBody(stream, stream.bufferedBody(), true) == plugin::Status::Respond) {
    answerFromPlugin();
    return;
  }
  buildPluginUpstreamRequest(stream.bufferedBody().size());
  connectUpstream();
}

void Connection::answerFromPlugin() {
  Stream& stream = *stream_;
  if (!stream.answer()) {
    recoverFromBug("a plugin returned Respond without reply() or fail()");
    return;
  }
  LocalResponse response = std::move(*stream.answer());
  stream.answer().reset();
  bool requestDone = stream.requestComplete || !stream.requestHasBody;
  writeLocalResponse(std::move(response), !requestDone || stream.closeAfterResponse() || draining_);
  stream_.reset();
  continueAfterExchange();
}

void Connection::sendContinueIfExpected() {
  if (stream_->expectContinue && in_.readable() == 0) {
    // The client waits for our go-ahead; the backend never sees the Expect.
    out_.append(kContinue);
    flushClient();
  }
}

void Connection::forwardRequest() {
  sendContinueIfExpected();
  if (!fd_.valid()) return;
  // Without a body the running header/idle timer is left alone: its expiry is ignored while a
  // response is awaited (the upstream read timeout governs), and goIdle() re-arms it.
  if (stream_->requestHasBody) setReadTimeout(worker_.bodyTimeout());
  connectUpstream();
}

template <typename Fields>
void Connection::buildUpstreamRequest(const ForwardTarget& target, const Fields& fields) {
  stream_->hostSplit = buildUpstreamHead(stream_->upstreamHead(), target, fields, clientIp_,
                                         stream_->route().preserve_host, parser_.chunked());
}

void Connection::connectUpstream() {
  Stream& stream = *stream_;
  upstream::Cluster& cluster = stream.cluster();
  // What an earlier attempt queued (head, body so far) moves to the next connection untouched.
  core::OutQueue queued;
  bool carryOver = false;
  if (stream.lease()) {
    std::swap(queued, stream.lease()->output());
    carryOver = true;
    cluster.retire(std::move(stream.lease()));
    if (queued.sentTotal() != 0) {
      // Part of the request is gone with that connection: a retry could not resend it exactly.
      failExchange(Error::upstream(ErrorCode::UpstreamReset, "upstream failed mid-request"));
      return;
    }
  }
  if (!cluster.anyUsable()) {
    failExchange(Error::upstream(ErrorCode::UpstreamUnavailable, "no healthy backend"));
    return;
  }
  while (true) {
    upstream::Backend* backend = cluster.pick(stream.triedBackends);
    if (!backend) {
      failExchange(stream.connectTimedOut
                       ? Error::upstream(ErrorCode::UpstreamConnectTimeout, "upstream connect timed out")
                       : Error::upstream(ErrorCode::UpstreamConnectFailed, "no backend could be reached"));
      return;
    }
    stream.triedBackends |= uint64_t(1) << (cluster.indexOf(*backend) & 63);
    // After a stale pooled connection, the retry must not draw another pooled one.
    std::unique_ptr<upstream::Connection> lease =
        stream.retriedReuse ? nullptr : cluster.takeIdle(*backend);
    bool fresh = !lease;
    if (fresh) {
      int err = 0;
      lease = cluster.connect(*backend, err);
      if (!lease) {
        upstreamError(*backend, observability::UpstreamErrorKind::Connect);
        cluster.markDown(*backend);
        continue;
      }
    }
    lease->lease(*this, stream, stream.timeouts());
    core::OutQueue& out = lease->output();
    if (carryOver && stream.hostSplit == std::string::npos) {
      std::swap(out, queued);  // the head names no backend: it all goes on as it is
    } else {
      const std::size_t previousHeadBytes = stream.queuedHeadBytes;
      queueHead(out, *backend);
      if (carryOver) {
        // The previous backend's Host line is replaced; the body bytes behind it follow.
        queued.discardFront(previousHeadBytes);
        out.appendFrom(queued);
      } else if (stream.buffering()) {
        out.borrow(stream.bufferedBody().data(), stream.bufferedBody().size());
      }
    }
    stream.lease() = std::move(lease);
    stream.upstreamStartUs = core::monotonicUs();
    // A pooled connection already watches reads (idle timeout until the request is out); the
    // caller's sendUpstream() writes the head together with whatever body is already here.
    if (fresh) stream.lease()->startConnect();
    return;
  }
}

void Connection::queueHead(core::OutQueue& out, const upstream::Backend& backend) {
  Stream& stream = *stream_;
  const std::string& head = stream.upstreamHead();
  const uint64_t before = out.queuedTotal();
  if (stream.hostSplit == std::string::npos) {
    out.borrow(head.data(), head.size());
  } else {
    out.borrow(head.data(), stream.hostSplit);
    out.append("Host: ");
    out.append(backend.authority);
    out.append("\r\n");
    out.borrow(head.data() + stream.hostSplit, head.size() - stream.hostSplit);
  }
  stream.queuedHeadBytes = static_cast<std::size_t>(out.queuedTotal() - before);
}

void Connection::sendUpstream() {
  if (!stream_ || !stream_->lease()) return;
  upstream::Connection& up = *stream_->lease();
  if (!up.connecting()) {
    auto status = up.flush();
    if (status == core::OutQueue::WriteStatus::Failed) {
      upstreamFailed(upstream::Failure::Reset);
      return;
    }
    if (status == core::OutQueue::WriteStatus::Drained && stream_->requestComplete) {
      up.watchReads(stream_->timeouts().read);
    }
  }
  up.output().retainBorrowed();
  if (up.output().pending() > kHighWatermark) pauseClientReads();
}

void Connection::onUpstreamConnected() {
  core::guarded([&] { upstreamConnected(); }, [&](const char* why) { recoverFromBug(why); });
}

void Connection::onUpstreamDrained() {
  core::guarded([&] { upstreamDrained(); }, [&](const char* why) { recoverFromBug(why); });
}

void Connection::onUpstreamFailure(upstream::Failure failure) {
  core::guarded([&] { upstreamFailed(failure); }, [&](const char* why) { recoverFromBug(why); });
}

void Connection::upstreamConnected() {
  stream_->cluster().markUp(stream_->lease()->backend());
  stream_->lease()->watchReads(nullptr);
  sendUpstream();
}

void Connection::upstreamDrained() {
  if (!stream_) return;
  if (stream_->requestComplete) {
    stream_->lease()->watchReads(stream_->timeouts().read);
  } else if (readsPaused_ && stream_->lease()->output().pending() < kLowWatermark) {
    resumeClientReads();
  }
}

void Connection::onUpstreamRead() {
  core::guarded([&] { readUpstreamResponse(); }, [&](const char* why) { recoverFromBug(why); });
}

void Connection::readUpstreamResponse() {
  upstream::Connection& up = *stream_->lease();
  core::IoBuffer& in = up.input();
  auto outcome = up.parser().execute(in.base(), in.readPtr(), in.readable());
  in.consume(outcome.consumed);
  if (outcome.error != HPE_OK && outcome.error != HPE_PAUSED) {
    const std::string_view ours = stream_->protocolViolation();
    const std::string reason =
        ours.empty() ? http::describeRefusal(up.parser(), outcome.error).message : std::string(ours);
    core::log::warn("invalid response from upstream",
                    {{"route", stream_->route().name}, {"reason", reason}});
    // A head over our own limits is no sign of a sick backend.
    upstreamError(up.backend(), observability::UpstreamErrorKind::Protocol,
                  !up.parser().overLimit());
    failExchange(Error::upstream(ErrorCode::UpstreamProtocol, "invalid response from upstream"));
    return;
  }
  if (!flushClient()) return;
  // Only now may the input move: the client's queue no longer borrows from it. Bytes left
  // after a complete response stay where they are and keep the connection out of the pool.
  out_.retainBorrowed();
  if (!up.parser().inHead()) in.compact();
  if (stream_->responseComplete()) {
    finishExchange();
  } else if (out_.pending() > kHighWatermark) {
    up.pauseReads();
  }
}

void Connection::upstreamFailed(upstream::Failure failure) {
  if (!stream_) return;
  Stream& stream = *stream_;
  upstream::Connection& up = *stream.lease();
  using upstream::Failure;
  using Kind = observability::UpstreamErrorKind;
  switch (failure) {
    case Failure::ConnectRefused: upstreamError(up.backend(), Kind::Connect); break;
    case Failure::ConnectTimeout: upstreamError(up.backend(), Kind::Timeout); break;
    case Failure::ReadTimeout:
    case Failure::SendTimeout:
      // A client picks the path; one slow path does not prove the backend down.
      upstreamError(up.backend(), Kind::Timeout,
                    stream.cluster().config().passive_check.count_read_timeouts);
      break;
    case Failure::Reset: upstreamError(up.backend(), Kind::Reset); break;
    case Failure::Protocol: upstreamError(up.backend(), Kind::Protocol); break;
    case Failure::Closed:
      // An orderly close ends a close-delimited body; it is a reset only if the response was cut.
      if (!stream.responseStarted() || !up.parser().bodyUntilEof()) {
        upstreamError(up.backend(), Kind::Reset);
      }
      break;
  }
  switch (failure) {
    case Failure::ConnectRefused:
    case Failure::ConnectTimeout:
      stream.cluster().markDown(up.backend());
      stream.connectTimedOut = failure == Failure::ConnectTimeout;
      connectUpstream();  // nothing was sent: try the next backend
      sendUpstream();
      return;
    case Failure::Closed:
      if (stream.responseStarted()) {
        // A body delimited by the close ends here; any other response was cut short.
        llhttp_errno_t finished = up.parser().finish();  // runs onMessageComplete, which pauses
        if ((finished == HPE_OK || finished == HPE_PAUSED) && stream.responseComplete()) {
          if (flushClient()) {
            out_.retainBorrowed();
            finishExchange();
          }
          return;
        }
      }
      [[fallthrough]];
    case Failure::Reset:
      if (up.reused() && stream.idempotent && !stream.responseStarted() && !stream.requestHasBody &&
          !stream.retriedReuse && up.input().readable() == 0) {
        // A pooled connection the backend had closed, likely before it read the request: one
        // retry on a fresh one. Only for methods that may run twice: the backend may have read
        // it (and acted on it) before closing, which nothing here can rule out.
        stream.retriedReuse = true;
        stream.triedBackends &= ~(uint64_t(1) << stream.cluster().indexOf(up.backend()));
        stream.lease()->output().clear();
        stream.cluster().retire(std::move(stream.lease()));
        connectUpstream();
        sendUpstream();
        return;
      }
      failExchange(Error::upstream(ErrorCode::UpstreamReset,
                                   "upstream closed the connection before the response was complete"));
      return;
    case Failure::ReadTimeout:
    case Failure::SendTimeout:
      failExchange(Error::upstream(ErrorCode::UpstreamTimeout, "upstream timed out"));
      return;
    case Failure::Protocol:
      failExchange(Error::upstream(ErrorCode::UpstreamProtocol, "invalid response from upstream"));
      return;
  }
}

void Connection::finishExchange() {
  Stream& stream = *stream_;
  upstream::Cluster& cluster = stream.cluster();
  const upstream::Backend& backend = stream.lease()->backend();
  record_.backend = &backend;
  record_.upstreamUs = std::max<int64_t>(core::monotonicUs() - stream.upstreamStartUs, 0);
  cluster.metrics().duration.observe(static_cast<uint64_t>(record_.upstreamUs));
  ++cluster.metrics().backends[cluster.indexOf(backend)].requests;
  // The backend is judged by what it answered, not by what a plugin sent instead (a cache's
  // stale copy replacing a 503).
  if (stream.upstreamStatus() >= 500 && cluster.config().passive_check.count_5xx) {
    reportBackendFailure(backend);
  } else {
    cluster.reportSuccess(backend);
  }
  recordExchange(stream.status());
  std::unique_ptr<upstream::Connection> lease = std::move(stream.lease());
  bool requestDone = stream.requestComplete;
  if (stream.upstreamReusable() && requestDone && lease->output().empty() && lease->clean()) {
    lease->parser().resume();
    stream.cluster().release(std::move(lease));
  } else {
    stream.cluster().retire(std::move(lease));
  }
  // A response that came before the whole request leaves request bytes we will never parse.
  bool close = stream.closeAfterResponse() || !requestDone || draining_;
  stream_.reset();
  if (close) {
    closeAfterFlush_ = true;
    if (out_.empty()) lingerThenClose();
    return;
  }
  if (readsPaused_ && out_.pending() < kLowWatermark) resumeClientReads();
  continueAfterExchange();
}

void Connection::continueAfterExchange() {
  if (processing_ || !fd_.valid() || closeAfterFlush_) return;
  if (in_.readable() > 0) {
    processInput();  // the next pipelined request
  } else {
    goIdle();
  }
}

void Connection::failExchange(const Error& error) {
  if (!stream_) return;
  if (stream_->responseStarted() && !stream_->withdrawResponse()) {
    // Part of the response is out: the only honest signal left is cutting the connection.
    core::log::warn("response cut short", {{"route", stream_->route().name},
                                           {"request_id", currentRequestId()},
                                           {"reason", error.message}});
    record_.error = core::wireCode(error.code);
    if (stream_->lease()) record_.backend = &stream_->lease()->backend();
    recordExchange(stream_->status());
    close();
    return;
  }
  // A body-less request is as good as read: its message completes without more bytes.
  bool requestDone = stream_->requestComplete || !stream_->requestHasBody;
  bool keepAlive = !stream_->closeAfterResponse();
  if (auto& lease = stream_->lease()) stream_->cluster().retire(std::move(lease));
  reply(error, !requestDone || !keepAlive || draining_);
  stream_.reset();
  continueAfterExchange();
}

void Connection::reply(const Error& error, bool closeAfter) {
  if (!record_.open) beginRecord(false);  // refused before its head was complete: its own id
  record_.error = core::wireCode(error.code);
  if (error.code == ErrorCode::Internal) {
    core::log::error("internal error", {{"message", error.message}, {"request_id", currentRequestId()}});
  }
  writeLocalResponse(makeErrorResponse(error, currentRequestId()), closeAfter);
}

void Connection::writeLocalResponse(LocalResponse response, bool closeAfter) {
  // A route's response plugins see gateway-made answers too (a 429 gets security headers).
  if (stream_ && stream_->hasPlugins() && !stream_->responseStarted()) {
    stream_->runResponsePhase(response);
  } else if (!stream_ && !worker_.snapshot().unrouted.plugins.empty()) {
    runUnroutedResponsePhase(response);
  }
  appendResponse(out_, response,
                 {.closeConnection = closeAfter,
                  .headRequest = record_.methodName == "HEAD",
                  .http10KeepAlive = parser_.versionMinor() == 0});
  recordExchange(response.status);
  if (closeAfter) {
    closeAfterFlush_ = true;
    stream_.reset();
  }
  if (!flushClient()) return;
  if (closeAfter && out_.empty()) lingerThenClose();
}

void Connection::runUnroutedResponsePhase(LocalResponse& response) {
  const config::Snapshot& snapshot = worker_.snapshot();
  ClientView client;
  client.versionMinor = parser_.versionMinor();
  client.headRequest = record_.methodName == "HEAD";
  // The request may be unreadable (that is often why no route took it): plugins get only what
  // is certain about it.
  Stream unrouted(worker_, *this, snapshot.unrouted, snapshot.unroutedIndex(), out_, client,
                  lastSeq_);
  unrouted.captureRequest(record_.methodName, {}, {}, {}, false, {}, clientIp_,
                          currentRequestId());
  unrouted.runResponsePhase(response);
}

void Connection::rejectRequest(llhttp_errno_t err) {
  const bool overBodyLimit =
      err == HPE_USER && parser_.violation() == http::HeadViolation::None && bodyTooLarge_;
  const Error error = overBodyLimit ? Error::downstream(ErrorCode::PayloadTooLarge,
                                                        "request body exceeds the limit")
                                    : http::describeRefusal(parser_, err);
  headPending_ = false;
  if (stream_ && stream_->responseStarted() && !stream_->withdrawResponse()) {
    close();
    return;
  }
  // The backend may hold part of this request; its connection goes, never back to the pool.
  if (stream_ && stream_->lease()) stream_->cluster().retire(std::move(stream_->lease()));
  if (stream_ && stream_->hasPlugins() && stream_->answer()) {
    // A plugin refused a streamed body piece: its answer, and the rest of the body is not read.
    LocalResponse response = std::move(*stream_->answer());
    stream_->answer().reset();
    writeLocalResponse(std::move(response), true);
    return;
  }
  reply(error, true);
}

bool Connection::flushClient() {
  auto status = out_.flush(fd_.get());
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
    writeEvent_.reset(event_new(worker_.base(), fd_.get(), EV_WRITE | EV_PERSIST,
                                &Connection::onWritable, this));
  }
  writeArmed_ = true;
  event_add(writeEvent_.get(), worker_.idleTimeout());
}

void Connection::handleWrite(short what) {
  if (what & EV_TIMEOUT) {
    close();  // the client stopped reading
    return;
  }
  if (!flushClient()) return;
  if (!out_.empty()) return;
  if (closeAfterFlush_) {
    lingerThenClose();
    return;
  }
  if (stream_) {
    if (auto& lease = stream_->lease()) lease->resumeReads();
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
  event_add(readEvent_.get(), stream_ && !stream_->requestComplete ? worker_.bodyTimeout() : nullptr);
}

void Connection::setReadTimeout(const timeval* timeout) {
  if (readsPaused_) return;
  event_add(readEvent_.get(), timeout);
  if (!timeout) event_remove_timer(readEvent_.get());
}

void Connection::goIdle() {
  if (draining_) {
    if (out_.empty()) close();
    else closeAfterFlush_ = true;
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
  stream_.reset();
  ::shutdown(fd_.get(), SHUT_WR);
  readsPaused_ = false;
  event_add(readEvent_.get(), worker_.timeouts().get(kLinger));
}

std::string_view Connection::currentRequestId(
    char (&buffer)[core::Worker::kRequestIdLength]) const {
  if (stream_ && !stream_->requestId().empty()) return stream_->requestId();
  worker_.formatRequestId(lastSeq_, buffer);
  return {buffer, sizeof buffer};
}

std::string Connection::currentRequestId() const {
  if (stream_ && !stream_->requestId().empty()) return std::string(stream_->requestId());
  return worker_.formatRequestId(lastSeq_);
}

}  // namespace gw::proxy
