#include "gateway/proxy/stream.h"

#include <charconv>
#include <cstring>

#include "gateway/core/worker.h"
#include "gateway/http/headers.h"
#include "gateway/proxy/background_fetch.h"

namespace gw::proxy {

namespace {

constexpr std::string_view kVia = "Via: 1.1 gatewayd\r\n";

// Appends "<hex length>\r\n".
void appendChunkSize(core::OutQueue& out, uint64_t length) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[length & 0xf];
    length >>= 4;
  } while (length != 0);
  char* dst = out.appendRaw(static_cast<std::size_t>(n) + 2);
  for (int i = 0; i < n; ++i) dst[i] = digits[n - 1 - i];
  dst[n] = '\r';
  dst[n + 1] = '\n';
}

void appendField(core::OutQueue& out, std::string_view name, std::string_view value) {
  char* dst = out.appendRaw(name.size() + value.size() + 4);
  std::memcpy(dst, name.data(), name.size());
  dst += name.size();
  *dst++ = ':';
  *dst++ = ' ';
  std::memcpy(dst, value.data(), value.size());
  dst += value.size();
  *dst++ = '\r';
  *dst = '\n';
}

}  // namespace

Stream::Stream(core::Worker& worker, ExchangeOwner& owner, const config::RouteConfig& route,
               std::size_t routeIndex, core::OutQueue& clientOut, ClientView client,
               uint64_t requestSeq)
    : worker_(worker),
      owner_(owner),
      route_(route),
      cluster_(worker.cluster(route.upstream)),
      timeouts_(worker.routeTimeouts(routeIndex)),
      clientOut_(clientOut),
      client_(client),
      requestSeq_(requestSeq),
      routeIndex_(routeIndex),
      heads_(worker.heads()),
      upstreamHead_(heads_.take()) {
  closeAfter_ = !client.keepAlive;
  if (!route.plugins.empty()) {
    plugins_ = worker.pluginExchanges().take();
    if (!plugins_) plugins_ = std::make_unique<PluginExchange>();
    plugins_->reset(route, worker.pluginStates(routeIndex));
  }
}

void PluginExchange::reset(const config::RouteConfig& route,
                           std::span<plugin::WorkerState* const> states) {
  chain.start(route.plugins, states);
  requestFields.clear();
  upstreamResponseFields.clear();
  responseFields = &upstreamResponseFields;
  answer.reset();
  notes = {};
  bufferLimit = 0;
  // A large buffered body is not worth keeping around for the next request.
  if (bufferedBody.capacity() > 64 * 1024) std::string().swap(bufferedBody);
  bufferedBody.clear();
}

Stream::~Stream() {
  if (plugins_) {
    plugins_->chain.finish(*this);
    worker_.pluginExchanges().give(std::move(plugins_));
  }
  if (lease_) cluster_.retire(std::move(lease_));
  upstreamHead_.clear();
  heads_.give(std::move(upstreamHead_));
}

void Stream::captureRequest(std::string_view method, std::string_view host, std::string_view path,
                            std::string_view query, bool hasQuery, std::string_view forwardHost,
                            std::string_view clientIp, std::string_view requestId) {
  PluginExchange& p = *plugins_;
  p.method = method;
  p.host = host;
  p.path = path;
  p.query = query;
  p.hasQuery = hasQuery;
  p.forwardHost = forwardHost;
  p.clientIp = clientIp;
  p.requestId = requestId;
  p.info = {p.method,   p.path,      p.query,       p.host,
            p.clientIp, route_.name, p.forwardHost, requestHasBody};
}

void Stream::reply(int status, std::string body, std::string_view contentType) {
  plugins_->answer = makeResponse(status, std::move(body), contentType, plugins_->requestId);
}

void Stream::replyWith(int status, std::span<const Field> fields, std::string body) {
  plugins_->answer = makeResponseWith(status, fields, std::move(body));
}

void Stream::fail(core::Error error) {
  plugins_->answer = makeErrorResponse(error, plugins_->requestId);
}

void Stream::bufferRequestBody(std::size_t limit) {
  plugins_->bufferLimit = std::max<std::size_t>(1, std::min(limit, route_.body_bytes));
}

bool Stream::bufferBody(std::string_view bytes) {
  std::string& body = plugins_->bufferedBody;
  if (body.size() + bytes.size() > plugins_->bufferLimit) return false;
  body += bytes;
  return true;
}

bool Stream::fetchInBackground(plugin::BackgroundRequest request) {
  return worker_.backgroundFetches().start(*this, std::move(request));
}

std::span<uint64_t> Stream::counters() { return worker_.metrics().routes[routeIndex_].counters; }

int64_t Stream::nowMs() const { return worker_.nowMs(); }

plugin::Dispatcher& Stream::dispatcher() { return worker_.dispatcher(); }

void Stream::runResponsePhase(LocalResponse& response) {
  status_ = response.status;
  plugins_->responseFields = &response.headers;
  plugins_->chain.runResponseHeaders(*this);
  if (plugins_->answer) {
    // A plugin replaced the response (a cache serving its stored copy instead of an error):
    // every plugin sees the replacement from the start, once; a second replacement is ignored.
    response = std::move(*plugins_->answer);
    plugins_->answer.reset();
    status_ = response.status;
    plugins_->chain.runResponseHeaders(*this);
    plugins_->answer.reset();
  }
  plugins_->responseFields = &plugins_->upstreamResponseFields;
}

void Stream::replaceUpstreamResponse() {
  LocalResponse response = std::move(*plugins_->answer);
  plugins_->answer.reset();
  runResponsePhase(response);
  // The upstream's body, if any, is still read (so its connection can be reused) but dropped.
  replaced_ = true;
  framing_ = BodyFraming::None;
  appendResponse(clientOut_, response,
                 {.closeConnection = closeAfter_,
                  .headRequest = client_.headRequest,
                  .http10KeepAlive = client_.versionMinor == 0});
}

int Stream::onHeadersComplete() {
  const http::Parser& parser = lease_->parser();
  const http::ResponseHead head =
      http::judgeResponseHead(parser, client_.headRequest, informationalCount_);
  switch (head.kind) {
    case http::ResponseHead::Kind::Refused:
      protocolViolation_ = head.refusal;
      break;
    case http::ResponseHead::Kind::Informational:
      relayInformational(parser);
      break;
    case http::ResponseHead::Kind::Final:
      status_ = parser.statusCode();
      upstreamStatus_ = status_;
      responseStarted_ = true;
      headMark_ = clientOut_.queuedTotal();
      // A bodyless head's own framing fields are ignored; bytes after it are not ours, and the
      // connection that sent them is not reused.
      appendResponseHead(parser, lease_->input().base());
      break;
  }
  return head.parserResult();
}

void Stream::relayInformational(const http::Parser& parser) {
  // RFC 9110 §15.2: a proxy forwards the 1xx it did not ask for itself (103 Early Hints lets a
  // browser preload), except to an HTTP/1.0 client, which cannot read them.
  if (client_.versionMinor >= 1) {
    const char* base = lease_->input().base();
    appendStatusLine(parser.statusCode(), parser.statusText(base));
    forEachForwardedField(parser, base, [&](std::string_view name, std::string_view value,
                                            http::FieldName kind) {
      if (kind != http::FieldName::ContentLength) appendField(clientOut_, name, value);
    });
    clientOut_.append("\r\n");
  }
  informational_ = true;  // the final response follows on the same connection
}

template <typename Emit>
http::ConnectionTokens Stream::forEachForwardedField(const http::Parser& parser, const char* base,
                                                     Emit&& emit) {
  // Pass 1: classify once (on the stack for any sane head), and collect Connection options.
  constexpr std::size_t kClassified = 128;
  http::FieldName kinds[kClassified];
  http::ConnectionTokens connection;
  for (std::size_t i = 0; i < parser.fieldCount(); ++i) {
    http::FieldName kind = http::classifyField(parser.fieldName(base, i));
    if (i < kClassified) kinds[i] = kind;
    if (kind == http::FieldName::Connection) connection.add(parser.fieldValue(base, i));
  }
  // Pass 2: hop-by-hop fields and the ones the Connection header nominates end at this hop.
  const bool nominated = !connection.others().empty();
  for (std::size_t i = 0; i < parser.fieldCount(); ++i) {
    const std::string_view name = parser.fieldName(base, i);
    const http::FieldName kind = i < kClassified ? kinds[i] : http::classifyField(name);
    if (http::isHopByHop(kind)) continue;
    if (nominated && connection.nominates(name)) continue;
    emit(name, parser.fieldValue(base, i), kind);
  }
  return connection;
}

void Stream::appendResponseHead(const http::Parser& parser, const char* base) {
  informational_ = false;
  const bool bodyless = client_.headRequest || status_ == 204 || status_ == 304;
  if (bodyless) {
    framing_ = BodyFraming::None;
  } else if (parser.chunked() || !parser.hasContentLength()) {
    framing_ = client_.versionMinor >= 1 ? BodyFraming::Chunked : BodyFraming::UntilClose;
  } else {
    framing_ = BodyFraming::Raw;
    responseLength_ = parser.contentLength();
  }
  if (framing_ == BodyFraming::UntilClose) closeAfter_ = true;

  FieldList* edited = hasPlugins() ? &plugins_->upstreamResponseFields : nullptr;
  if (edited) {
    edited->clear();
  } else {
    appendStatusLine(status_, parser.statusText(base));
  }
  const http::ConnectionTokens connection = forEachForwardedField(
      parser, base, [&](std::string_view name, std::string_view value, http::FieldName kind) {
        if (edited) {
          edited->add(name, value);  // plugins see the length (a cache's bound)
        } else if (!framedByUs(kind)) {
          appendField(clientOut_, name, value);
        }
      });
  // Reuse needs a framed response and a backend that did not ask to close.
  upstreamReusable_ = parser.keepAlive() && !connection.close() && !parser.bodyUntilEof();
  if (edited) {
    plugins_->chain.runResponseHeaders(*this);
    if (plugins_->answer) {
      replaceUpstreamResponse();
      return;
    }
    appendStatusLine(status_, parser.statusText(base));
    for (std::size_t i = 0; i < edited->size(); ++i) {
      auto [name, value] = edited->at(i);
      if (!framedByUs(http::classifyField(name))) appendField(clientOut_, name, value);
    }
  }
  appendFraming();
}

bool Stream::withdrawResponse() {
  if (!responseStarted_ || responseOnWire()) return false;
  clientOut_.truncate(headMark_);
  responseStarted_ = false;
  framing_ = BodyFraming::None;
  chunkOpen_ = false;
  replaced_ = false;
  return true;
}

bool Stream::framedByUs(http::FieldName kind) const {
  // A body's length is written by appendFraming() from what llhttp parsed: neither the
  // backend's own field nor a plugin's edit frames what the client reads. A 204 has no length
  // to announce at all (RFC 9110 §8.6); HEAD and 304 keep theirs, which describes the content.
  return kind == http::FieldName::ContentLength && (framing_ != BodyFraming::None || status_ == 204);
}

void Stream::appendFraming() {
  clientOut_.append(kVia);
  if (framing_ == BodyFraming::Chunked) {
    clientOut_.append("Transfer-Encoding: chunked\r\n");
  } else if (framing_ == BodyFraming::Raw) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, responseLength_).ptr;
    appendField(clientOut_, "Content-Length", {digits, static_cast<std::size_t>(end - digits)});
  }
  if (closeAfter_) {
    clientOut_.append("Connection: close\r\n\r\n");
  } else if (client_.versionMinor == 0) {
    clientOut_.append("Connection: keep-alive\r\n\r\n");
  } else {
    clientOut_.append("\r\n");
  }
}

void Stream::appendStatusLine(int status, std::string_view reason) {
  char* dst = clientOut_.appendRaw(15 + reason.size());
  std::memcpy(dst, "HTTP/1.1 ", 9);
  dst[9] = static_cast<char>('0' + status / 100);
  dst[10] = static_cast<char>('0' + status / 10 % 10);
  dst[11] = static_cast<char>('0' + status % 10);
  dst[12] = ' ';
  std::memcpy(dst + 13, reason.data(), reason.size());
  dst[13 + reason.size()] = '\r';
  dst[14 + reason.size()] = '\n';
}

int Stream::onBody(const char* data, std::size_t length) {
  if (replaced_) return 0;
  if (plugins_) plugins_->chain.runResponseBody(*this, {data, length}, false);
  if (framing_ == BodyFraming::Chunked && !chunkOpen_) {
    // A close-delimited upstream body: each piece becomes one chunk.
    appendChunkSize(clientOut_, length);
    clientOut_.borrow(data, length);
    clientOut_.append("\r\n");
    return 0;
  }
  clientOut_.borrow(data, length);
  return 0;
}

int Stream::onChunkHeader(uint64_t length) {
  if (informational_ || framing_ != BodyFraming::Chunked || length == 0) return 0;
  appendChunkSize(clientOut_, length);
  chunkOpen_ = true;
  return 0;
}

int Stream::onChunkComplete() {
  if (chunkOpen_) {
    clientOut_.append("\r\n");
    chunkOpen_ = false;
  }
  return 0;
}

int Stream::onMessageComplete() {
  if (informational_) return 0;  // the real response follows on the same connection
  if (plugins_ && !replaced_) plugins_->chain.runResponseBody(*this, {}, true);
  if (framing_ == BodyFraming::Chunked) clientOut_.append("0\r\n\r\n");
  responseComplete_ = true;
  // Stop here: any byte after the response is not ours to parse.
  return HPE_PAUSED;
}

}  // namespace gw::proxy
