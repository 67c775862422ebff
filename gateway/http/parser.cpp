#include "gateway/http/parser.h"

#include <cstring>
#include <string>

namespace gw::http {

namespace {
Parser& self(llhttp_t* p) { return *static_cast<Parser*>(p->data); }
}  // namespace

core::Error describeRefusal(const Parser& parser, llhttp_errno_t error) {
  using core::Error;
  using core::ErrorCode;
  auto bad = [](std::string message) {
    return Error::downstream(ErrorCode::BadRequest, std::move(message));
  };
  const HeadLimits& limits = parser.limits();
  switch (error == HPE_USER ? parser.violation() : HeadViolation::None) {
    case HeadViolation::RequestLineTooLong:
      return Error::downstream(
          ErrorCode::UriTooLong,
          "request line over the limit of " + std::to_string(limits.requestLineBytes) + " bytes");
    case HeadViolation::HeadersTooLarge:
      return Error::downstream(ErrorCode::HeadersTooLarge,
                               std::string(parser.isRequest() ? "request" : "response") +
                                   " head over the limit of " + std::to_string(limits.headerBytes) +
                                   " bytes");
    case HeadViolation::TooManyHeaders:
      return Error::downstream(
          ErrorCode::HeadersTooLarge,
          "more than " + std::to_string(limits.headerCount) + " header fields");
    case HeadViolation::LineFolding:
      return bad("obsolete line folding in a header field");
    case HeadViolation::EmptyFieldName:
      return bad("header field without a name");
    case HeadViolation::MissingVersion:
      return bad("request line without an HTTP version");
    case HeadViolation::ChunkExtensionsTooLong:
      return bad("chunk extensions over the limit of " + std::to_string(kMaxChunkExtensionBytes) +
                 " bytes");
    case HeadViolation::None:
      break;
  }
  return bad(std::string(parser.isRequest() ? "malformed request: " : "malformed response: ") +
             parser.reason());
}

ResponseHead judgeResponseHead(const Parser& parser, bool headRequest, int& informationalSoFar) {
  using Kind = ResponseHead::Kind;
  const int status = parser.statusCode();
  if (status < 100) return {Kind::Refused, false, "status code below 100"};
  if (status == 101) return {Kind::Refused, false, "101 Switching Protocols was not asked for"};
  if (status < 200) {
    if (parser.hasTransferEncoding() || parser.contentLength() > 0) {
      return {Kind::Refused, false, "1xx response with a body"};
    }
    if (++informationalSoFar > kMaxInformationalResponses) {
      return {Kind::Refused, false, "too many 1xx responses"};
    }
    return {Kind::Informational, true, {}};
  }
  return {Kind::Final, headRequest || status == 204 || status == 304, {}};
}

Parser::Parser(llhttp_type_t type, Handler* handler, const HeadLimits& limits,
               FieldListRecycler* fieldLists)
    : handler_(handler), limits_(limits), fieldLists_(fieldLists) {
  llhttp_init(&parser_, type, settings());
  parser_.data = this;
}

const llhttp_settings_t* Parser::settings() {
  static const llhttp_settings_t kSettings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = &Parser::onMessageBegin;
    s.on_url = &Parser::onUrl;
    s.on_header_field_complete = &Parser::onHeaderFieldComplete;
    s.on_method_complete = &Parser::onMethodComplete;
    s.on_chunk_extension_name = &Parser::onChunkExtension;
    s.on_chunk_extension_value = &Parser::onChunkExtension;
    s.on_status = &Parser::onStatus;
    s.on_header_field = &Parser::onHeaderField;
    s.on_header_value = &Parser::onHeaderValue;
    s.on_header_value_complete = &Parser::onHeaderValueComplete;
    s.on_headers_complete = &Parser::onHeadersCompleteCb;
    s.on_body = &Parser::onBodyCb;
    s.on_chunk_header = &Parser::onChunkHeaderCb;
    s.on_chunk_complete = &Parser::onChunkCompleteCb;
    s.on_message_complete = &Parser::onMessageCompleteCb;
    return s;
  }();
  return &kSettings;
}

Parser::Outcome Parser::execute(const char* base, const char* data, std::size_t length) {
  base_ = base;
  end_ = data + length;
  if (!inHead_) headStart_ = static_cast<std::size_t>(data - base);
  begunInExecute_ = false;
  llhttp_errno_t err = llhttp_execute(&parser_, data, length);
  // A second message began inside this call: restart there so its head is measured from its start.
  while (err == HPE_PAUSED && pausedAtBegin_) {
    pausedAtBegin_ = false;
    const char* at = llhttp_get_error_pos(&parser_);
    headStart_ = static_cast<std::size_t>(at - base);
    llhttp_resume(&parser_);
    err = llhttp_execute(&parser_, at, length - static_cast<std::size_t>(at - data));
  }
  if (err == HPE_OK) return {err, length};
  // A notification callback's refusal reaches us as HPE_CB_*: report every violation as HPE_USER.
  if (violation_ != HeadViolation::None) err = HPE_USER;
  const char* stop = llhttp_get_error_pos(&parser_);
  std::size_t consumed = stop ? static_cast<std::size_t>(stop - data) : 0;
  return {err, consumed};
}

void Parser::resume() {
  if (parser_.error == HPE_PAUSED_UPGRADE) {
    llhttp_resume_after_upgrade(&parser_);
  } else {
    llhttp_resume(&parser_);
  }
}

llhttp_errno_t Parser::finish() { return llhttp_finish(&parser_); }

void Parser::reset() {
  llhttp_reset(&parser_);
  inHead_ = false;
  violation_ = HeadViolation::None;
}

void Parser::rebase(std::size_t shift) {
  const auto down = static_cast<uint32_t>(shift);
  headStart_ -= shift;
  if (target_.length > 0) target_.offset -= down;
  if (status_.length > 0) status_.offset -= down;
  for (FieldSpan& field : fields_) {
    if (field.nameLength > 0) field.nameOffset -= down;
    if (field.valueLength > 0) field.valueOffset -= down;
  }
}

void Parser::shrink() {
  if (fields_.capacity() == 0) return;
  if (fieldLists_) {
    fields_.clear();
    fieldLists_->give(std::move(fields_));
  }
  fields_ = {};
}

void Parser::extend(Span& span, const char* at, std::size_t length) {
  extend(span.offset, span.length, at, length);
}

void Parser::extend(uint32_t& offset, uint32_t& length, const char* at, std::size_t n) {
  if (length == 0) offset = static_cast<uint32_t>(at - base_);
  length += static_cast<uint32_t>(n);
}

int Parser::violate(HeadViolation v) {
  violation_ = v;
  return HPE_USER;
}

int Parser::checkHeadSize(const char* at, std::size_t length) {
  headBytes_ = static_cast<std::size_t>(at + length - base_) - headStart_;
  if (headBytes_ > limits_.headerBytes) return violate(HeadViolation::HeadersTooLarge);
  return 0;
}

int Parser::onMessageBegin(llhttp_t* p) {
  Parser& s = self(p);
  s.inHead_ = true;
  s.inValue_ = false;
  s.target_ = {};
  s.status_ = {};
  s.fields_.clear();
  if (s.fields_.capacity() == 0 && s.fieldLists_) s.fields_ = s.fieldLists_->take();
  s.headBytes_ = 0;
  s.chunkExtensionBytes_ = 0;
  s.methodKnown_ = false;
  if (s.begunInExecute_) {
    s.pausedAtBegin_ = true;
    return HPE_PAUSED;
  }
  s.begunInExecute_ = true;
  return 0;
}

int Parser::onUrl(llhttp_t* p, const char* at, std::size_t length) {
  Parser& s = self(p);
  s.extend(s.target_, at, length);
  // A line end right after the target is the HTTP/0.9 form, which llhttp accepts and then waits
  // on for a byte that may never come: without a version there is no HTTP/1.x request.
  if (at + length < s.end_ && (at[length] == '\r' || at[length] == '\n')) {
    return s.violate(HeadViolation::MissingVersion);
  }
  if (s.target_.length + 16 > s.limits_.requestLineBytes) {
    return s.violate(HeadViolation::RequestLineTooLong);
  }
  return 0;
}

int Parser::onMethodComplete(llhttp_t* p) {
  self(p).methodKnown_ = true;
  return 0;
}

int Parser::onHeaderFieldComplete(llhttp_t* p) {
  Parser& s = self(p);
  // llhttp reports ": value" as a field with an empty name; no such field exists.
  if (s.fields_.empty() || s.fields_.back().nameLength == 0) {
    return s.violate(HeadViolation::EmptyFieldName);
  }
  return 0;
}

int Parser::onChunkExtension(llhttp_t* p, const char*, std::size_t length) {
  Parser& s = self(p);
  s.chunkExtensionBytes_ += length;
  if (s.chunkExtensionBytes_ > kMaxChunkExtensionBytes) {
    return s.violate(HeadViolation::ChunkExtensionsTooLong);
  }
  return 0;
}

int Parser::onStatus(llhttp_t* p, const char* at, std::size_t length) {
  Parser& s = self(p);
  s.extend(s.status_, at, length);
  return s.checkHeadSize(at, length);
}

int Parser::onHeaderField(llhttp_t* p, const char* at, std::size_t length) {
  Parser& s = self(p);
  if (s.inValue_ || s.fields_.empty()) {
    if (s.fields_.size() >= s.limits_.headerCount) return s.violate(HeadViolation::TooManyHeaders);
    s.fields_.emplace_back();
    s.inValue_ = false;
  }
  FieldSpan& field = s.fields_.back();
  s.extend(field.nameOffset, field.nameLength, at, length);
  return s.checkHeadSize(at, length);
}

int Parser::onHeaderValue(llhttp_t* p, const char* at, std::size_t length) {
  Parser& s = self(p);
  s.inValue_ = true;
  FieldSpan& field = s.fields_.back();
  // Pieces of one value lie end to end (the head's bytes stay put between reads), except for an
  // obs-fold: llhttp reports the continuation line apart, past the CRLF, and a continuation of
  // blanks alone would leave the CR as the value's last byte, out of reach of the '\n' check in
  // onHeaderValueComplete.
  if (field.valueLength > 0 && at != s.base_ + field.valueOffset + field.valueLength) {
    return s.violate(HeadViolation::LineFolding);
  }
  s.extend(field.valueOffset, field.valueLength, at, length);
  return s.checkHeadSize(at, length);
}

int Parser::onHeaderValueComplete(llhttp_t* p) {
  Parser& s = self(p);
  // An empty value never triggers on_header_value; the next name still starts a new field.
  s.inValue_ = true;
  if (s.fields_.empty()) return 0;
  FieldSpan& field = s.fields_.back();
  // llhttp keeps trailing OWS in the value; RFC 9112 excludes it from the field value.
  while (field.valueLength > 0 && (s.base_[field.valueOffset + field.valueLength - 1] == ' ' ||
                                   s.base_[field.valueOffset + field.valueLength - 1] == '\t')) {
    --field.valueLength;
  }
  // A folded value reaches us with its CRLF inside the span.
  if (field.valueLength > 0 &&
      std::memchr(s.base_ + field.valueOffset, '\n', field.valueLength) != nullptr) {
    return s.violate(HeadViolation::LineFolding);
  }
  return 0;
}

int Parser::onHeadersCompleteCb(llhttp_t* p) {
  Parser& s = self(p);
  s.inHead_ = false;
  return s.handler_->onHeadersComplete();
}

int Parser::onBodyCb(llhttp_t* p, const char* at, std::size_t length) {
  return self(p).handler_->onBody(at, length);
}

int Parser::onChunkHeaderCb(llhttp_t* p) {
  return self(p).handler_->onChunkHeader(p->content_length);
}

int Parser::onChunkCompleteCb(llhttp_t* p) { return self(p).handler_->onChunkComplete(); }

int Parser::onMessageCompleteCb(llhttp_t* p) { return self(p).handler_->onMessageComplete(); }

}  // namespace gw::http
