#include "gateway/proxy/response_relay.h"

#include <charconv>
#include <cstring>

#include "gateway/http/headers.h"

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

ResponseRelay::ResponseRelay(core::OutQueue& clientOut, ClientView client, ResponsePhases* phases)
    : clientOut_(clientOut), client_(client), phases_(phases), closeAfter_(!client.keepAlive) {}

void ResponseRelay::replaceUpstreamResponse(const LocalResponse& response) {
  status_ = response.status;
  // The upstream's body, if any, is still read (so its connection can be reused) but dropped.
  replaced_ = true;
  framing_ = BodyFraming::None;
  appendResponse(clientOut_, response,
                 {.closeConnection = closeAfter_,
                  .headRequest = client_.headRequest,
                  .http10KeepAlive = client_.versionMinor == 0});
}

int ResponseRelay::onHeadersComplete() {
  const http::ResponseHead head =
      http::judgeResponseHead(parser(), client_.headRequest, informationalCount_);
  switch (head.kind) {
    case http::ResponseHead::Kind::Refused:
      refusal_ = head.refusal;
      break;
    case http::ResponseHead::Kind::Informational:
      relayInformational();
      break;
    case http::ResponseHead::Kind::Final:
      if (judge_ && judge_->retryStatus(parser().statusCode())) {
        retryRequested_ = true;
        return HPE_PAUSED;
      }
      status_ = parser().statusCode();
      upstreamStatus_ = status_;
      started_ = true;
      headMark_ = clientOut_.queuedTotal();
      // A bodyless head's own framing fields are ignored; bytes after it are not ours, and the
      // connection that sent them is not reused.
      appendResponseHead();
      break;
  }
  return head.parserResult();
}

void ResponseRelay::relayInformational() {
  // RFC 9110 §15.2: a proxy forwards the 1xx it did not ask for itself (103 Early Hints lets a
  // browser preload), except to an HTTP/1.0 client, which cannot read them.
  if (client_.versionMinor >= 1) {
    appendStatusLine(parser().statusCode(), parser().statusText(base()));
    forEachForwardedField([&](std::string_view name, std::string_view value,
                              http::FieldName kind) {
      if (kind != http::FieldName::ContentLength) appendField(clientOut_, name, value);
    });
    clientOut_.append("\r\n");
  }
  informational_ = true;  // the final response follows on the same connection
}

template <typename Emit>
http::ConnectionTokens ResponseRelay::forEachForwardedField(Emit&& emit) {
  const http::Parser& parser = this->parser();
  const char* base = this->base();
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

void ResponseRelay::appendResponseHead() {
  const http::Parser& parser = this->parser();
  const char* base = this->base();
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

  // The head goes out in pieces: room for all of them (what the upstream sent, our framing
  // and what plugins usually add) is made once.
  clientOut_.reserve(parser.headBytes() + (phases_ ? 1024 : 128));
  FieldList* edited = phases_ ? &phases_->upstreamHeadFields() : nullptr;
  if (edited) {
    edited->clear();
  } else {
    appendStatusLine(status_, parser.statusText(base));
  }
  const http::ConnectionTokens connection = forEachForwardedField(
      [&](std::string_view name, std::string_view value, http::FieldName kind) {
        if (edited) {
          edited->add(name, value, kind);  // plugins see the length (a cache's bound)
        } else if (!framedByUs(kind)) {
          appendField(clientOut_, name, value);
        }
      });
  // Reuse needs a framed response and a backend that did not ask to close.
  upstreamReusable_ = parser.keepAlive() && !connection.close() && !parser.bodyUntilEof();
  if (edited) {
    LocalResponse replacement;
    if (phases_->filterUpstreamHead(status_, replacement) == plugin::Status::Respond) {
      replaceUpstreamResponse(replacement);
      return;
    }
    appendStatusLine(status_, parser.statusText(base));
    // Room for every field; what a Content-Length we frame ourselves leaves unused is given back.
    if (const std::size_t most = edited->serializedSize()) {
      char* fields = clientOut_.appendRaw(most);
      const auto written = static_cast<std::size_t>(
          edited->serializeTo(fields, framedByUs(http::FieldName::ContentLength)) - fields);
      if (written < most) clientOut_.truncate(clientOut_.queuedTotal() - (most - written));
    }
  }
  appendFraming();
}

bool ResponseRelay::withdraw() {
  if (!started_ || onWire()) return false;
  clientOut_.truncate(headMark_);
  started_ = false;
  framing_ = BodyFraming::None;
  chunkOpen_ = false;
  replaced_ = false;
  return true;
}

bool ResponseRelay::framedByUs(http::FieldName kind) const {
  // A body's length is written by appendFraming() from what llhttp parsed: neither the
  // backend's own field nor a plugin's edit frames what the client reads. A 204 has no length
  // to announce at all (RFC 9110 §8.6); HEAD and 304 keep theirs, which describes the content.
  return kind == http::FieldName::ContentLength && (framing_ != BodyFraming::None || status_ == 204);
}

void ResponseRelay::appendFraming() {
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

void ResponseRelay::appendStatusLine(int status, std::string_view reason) {
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

int ResponseRelay::onBody(const char* data, std::size_t length) {
  if (replaced_) return 0;
  if (phases_) phases_->filterUpstreamBody({data, length}, false);
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

int ResponseRelay::onChunkHeader(uint64_t length) {
  if (informational_ || framing_ != BodyFraming::Chunked || length == 0) return 0;
  appendChunkSize(clientOut_, length);
  chunkOpen_ = true;
  return 0;
}

int ResponseRelay::onChunkComplete() {
  if (chunkOpen_) {
    clientOut_.append("\r\n");
    chunkOpen_ = false;
  }
  return 0;
}

int ResponseRelay::onMessageComplete() {
  if (informational_) return 0;  // the real response follows on the same connection
  if (phases_ && !replaced_) phases_->filterUpstreamBody({}, true);
  if (framing_ == BodyFraming::Chunked) clientOut_.append("0\r\n\r\n");
  complete_ = true;
  // Stop here: any byte after the response is not ours to parse.
  return HPE_PAUSED;
}

}  // namespace gw::proxy
