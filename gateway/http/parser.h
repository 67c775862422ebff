#pragma once
// The only wrapper around llhttp (compiled in strict mode; no lenient flags are ever set).
// It records where the start line and header fields lie in the caller's input buffer (as offsets,
// so the buffer may grow while a head is incomplete), enforces the head limits, and hands body
// bytes and message boundaries to a Handler. Views returned by the accessors are valid only while
// the caller keeps the head's bytes in place — the proxy uses them during onHeadersComplete.

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "gateway/core/error.h"
#include "gateway/core/recycler.h"

namespace gw::http {

// Where one header field's name and value lie in the input buffer.
struct FieldSpan {
  uint32_t nameOffset = 0;
  uint32_t nameLength = 0;
  uint32_t valueOffset = 0;
  uint32_t valueLength = 0;
};
using FieldListRecycler = core::Recycler<std::vector<FieldSpan>>;

struct HeadLimits {
  std::size_t requestLineBytes = 8 * 1024;
  std::size_t headerBytes = 32 * 1024;
  std::size_t headerCount = 100;
};

// Why a head was refused beyond llhttp's own verdict.
enum class HeadViolation : uint8_t {
  None,
  RequestLineTooLong,
  HeadersTooLarge,
  TooManyHeaders,
  LineFolding,  // obs-fold: llhttp 8 accepts it, RFC 9112 lets us refuse it, and we do
  EmptyFieldName,       // ": value": llhttp 8 accepts a field without a name
  MissingVersion,       // "GET /path" + CRLF, the HTTP/0.9 form
  ChunkExtensionsTooLong,  // more than kMaxChunkExtensionBytes of chunk extensions in a message
};

// Chunk extensions are parsed and dropped (never forwarded), but a peer could send them without
// end; past this many bytes in one message the message is refused (as Node.js does since
// CVE-2024-22019).
constexpr std::size_t kMaxChunkExtensionBytes = 16 * 1024;

// RFC 9110 §9.2.2: repeating one of these requests has the effect of sending it once, so a
// request that may have reached the backend can be sent again only if its method is one.
constexpr bool isIdempotent(llhttp_method_t method) {
  return method == HTTP_GET || method == HTTP_HEAD || method == HTTP_OPTIONS ||
         method == HTTP_TRACE || method == HTTP_PUT || method == HTTP_DELETE;
}

class Parser;

// A backend may send a few 1xx before its answer; an endless stream of them is refused.
constexpr int kMaxInformationalResponses = 16;

// What a response head just parsed is, for a client that never asks for an upgrade (RFC 9110
// §15.2, RFC 9112 §6.3). Refused: a status below 100, a 101, a 1xx announcing content (its raw
// bytes would come before the next head), or one 1xx too many. A final head is bodyless for HEAD,
// 204 and 304 whatever its fields say.
struct ResponseHead {
  enum class Kind : uint8_t { Refused, Informational, Final };
  Kind kind = Kind::Final;
  bool bodyless = false;
  std::string_view refusal;  // why, when Refused
  // The on_headers_complete result that makes llhttp parse what the head announced (1: no body).
  int parserResult() const {
    return kind == Kind::Refused ? HPE_USER : (kind == Kind::Informational || bodyless) ? 1 : 0;
  }
};
// `informationalSoFar` counts this response's 1xx heads; the caller keeps it per exchange.
ResponseHead judgeResponseHead(const Parser& parser, bool headRequest, int& informationalSoFar);

// What a message the parser refused deserves: 414 or 431 past a head limit, 400 otherwise,
// with a message that names the cause. The one mapping for the proxy and the admin listener;
// for a response parser, the message says why a backend's answer was refused.
core::Error describeRefusal(const Parser& parser, llhttp_errno_t error);

class Parser {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // Return 0 to go on, 1 for "this message has no body" (responses to HEAD), or HPE_PAUSED.
    virtual int onHeadersComplete() = 0;
    // Return 0, or HPE_USER to stop with an error the handler recorded.
    virtual int onBody(const char* data, std::size_t length) = 0;
    virtual int onChunkHeader(uint64_t /*length*/) { return 0; }
    virtual int onChunkComplete() { return 0; }
    // Return 0 or HPE_PAUSED.
    virtual int onMessageComplete() = 0;
  };

  struct Outcome {
    llhttp_errno_t error;
    std::size_t consumed;  // bytes of the input taken (all of them unless paused or failed)
  };

  // `fieldLists` (may be null) lends the per-message field list, so idle parsers hold none.
  Parser(llhttp_type_t type, Handler* handler, const HeadLimits& limits,
         FieldListRecycler* fieldLists = nullptr);
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Parses [data, data + length). `base` is the start of the buffer holding data; the head
  // offsets recorded are relative to it.
  Outcome execute(const char* base, const char* data, std::size_t length);
  // Continue after a pause returned by a callback.
  void resume();
  // Tells the parser the peer closed: completes close-delimited bodies or reports truncation.
  llhttp_errno_t finish();
  void reset();

  // Message metadata, valid from onHeadersComplete on.
  uint8_t versionMajor() const { return parser_.http_major; }
  uint8_t versionMinor() const { return parser_.http_minor; }
  bool keepAlive() const { return llhttp_should_keep_alive(&parser_) != 0; }
  bool chunked() const { return (parser_.flags & F_CHUNKED) != 0; }
  bool hasContentLength() const { return (parser_.flags & F_CONTENT_LENGTH) != 0; }
  bool hasTransferEncoding() const { return (parser_.flags & F_TRANSFER_ENCODING) != 0; }
  uint64_t contentLength() const { return parser_.content_length; }
  llhttp_method_t method() const { return static_cast<llhttp_method_t>(parser_.method); }
  // The current request's method was read (llhttp refuses an unknown one; until then method()
  // still holds the previous request's).
  bool methodKnown() const { return methodKnown_; }
  int statusCode() const { return parser_.status_code; }
  bool upgrade() const { return parser_.upgrade != 0; }
  // True when the body ends only when the peer closes (responses without length).
  bool bodyUntilEof() const { return llhttp_message_needs_eof(&parser_) != 0; }
  HeadViolation violation() const { return violation_; }
  const HeadLimits& limits() const { return limits_; }
  bool isRequest() const { return parser_.type == HTTP_REQUEST; }
  // The head broke a limit of ours (not the protocol): the peer's answer is legal, only too big.
  bool overLimit() const {
    return violation_ == HeadViolation::HeadersTooLarge ||
           violation_ == HeadViolation::TooManyHeaders ||
           violation_ == HeadViolation::RequestLineTooLong;
  }
  // A head has begun and is not complete yet: its bytes must stay where they are, or move
  // together with rebase().
  bool inHead() const { return inHead_; }
  // Where the current head begins in the caller's buffer.
  std::size_t headStart() const { return headStart_; }
  // The caller moved the buffer's bytes `shift` places toward its start (see
  // IoBuffer::compactKeeping): the recorded positions of the head follow them.
  void rebase(std::size_t shift);
  // llhttp's description of the last error ("" when a callback stopped it).
  const char* reason() const {
    const char* text = llhttp_get_error_reason(&parser_);
    return text ? text : "";
  }
  // Bytes of the current head seen so far (start line + fields), for limits and diagnostics.
  std::size_t headBytes() const { return headBytes_; }

  std::string_view target(const char* base) const { return view(base, target_); }
  std::string_view statusText(const char* base) const { return view(base, status_); }
  std::size_t fieldCount() const { return fields_.size(); }
  std::string_view fieldName(const char* base, std::size_t i) const {
    return {base + fields_[i].nameOffset, fields_[i].nameLength};
  }
  std::string_view fieldValue(const char* base, std::size_t i) const {
    return {base + fields_[i].valueOffset, fields_[i].valueLength};
  }
  // Drops the per-message field list's memory (idle connections hold none).
  void shrink();
  // Response parsers live with a pooled connection; each exchange that leases it takes over.
  void setHandler(Handler* handler) { handler_ = handler; }

 private:
  struct Span {
    uint32_t offset = 0;
    uint32_t length = 0;
  };
  static std::string_view view(const char* base, Span s) { return {base + s.offset, s.length}; }
  void extend(Span& span, const char* at, std::size_t length);
  void extend(uint32_t& offset, uint32_t& length, const char* at, std::size_t n);
  int checkHeadSize(const char* at, std::size_t length);
  int violate(HeadViolation v);

  static int onMessageBegin(llhttp_t* p);
  static int onUrl(llhttp_t* p, const char* at, std::size_t length);
  static int onHeaderFieldComplete(llhttp_t* p);
  static int onMethodComplete(llhttp_t* p);
  static int onChunkExtension(llhttp_t* p, const char* at, std::size_t length);
  static int onStatus(llhttp_t* p, const char* at, std::size_t length);
  static int onHeaderField(llhttp_t* p, const char* at, std::size_t length);
  static int onHeaderValue(llhttp_t* p, const char* at, std::size_t length);
  static int onHeaderValueComplete(llhttp_t* p);
  static int onHeadersCompleteCb(llhttp_t* p);
  static int onBodyCb(llhttp_t* p, const char* at, std::size_t length);
  static int onChunkHeaderCb(llhttp_t* p);
  static int onChunkCompleteCb(llhttp_t* p);
  static int onMessageCompleteCb(llhttp_t* p);
  static const llhttp_settings_t* settings();

  llhttp_t parser_;
  Handler* handler_;
  const HeadLimits& limits_;
  const char* base_ = nullptr;
  const char* end_ = nullptr;  // of the input the current execute() runs on
  Span target_;
  Span status_;
  FieldListRecycler* fieldLists_;
  std::vector<FieldSpan> fields_;
  bool inValue_ = false;
  bool inHead_ = false;
  bool methodKnown_ = false;
  HeadViolation violation_ = HeadViolation::None;
  std::size_t headBytes_ = 0;
  std::size_t chunkExtensionBytes_ = 0;  // in the current message
  std::size_t headStart_ = 0;  // offset of the first byte of the current head
  bool begunInExecute_ = false;  // a message began in the current execute() call
  bool pausedAtBegin_ = false;   // ...and then another one: execute() restarts at it
};

}  // namespace gw::http
