#include "test/fuzz/http_reader.h"

#include <rapidjson/document.h>

#include "gateway/http/headers.h"

namespace gw::fuzz {

namespace {
Reader& self(llhttp_t* p) { return *static_cast<Reader*>(p->data); }
}  // namespace

std::string lower(std::string_view s) {
  std::string out;
  http::asciiLower(s, out);
  return out;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void addElements(std::string_view list, std::vector<std::string>& out) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view element = trimOws(list.substr(0, comma));
    if (!element.empty()) out.emplace_back(element);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
}

std::vector<std::string> connectionOptions(const Message& message) {
  std::vector<std::string> options;
  for (const auto& [name, value] : message.fields) {
    if (lower(name) == "connection") addElements(lower(value), options);
  }
  return options;
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
  for (const auto& entry : list) {
    if (entry == item) return true;
  }
  return false;
}

bool hopByHop(std::string_view lowerName) {
  for (std::string_view name : {"connection", "keep-alive", "te", "trailer", "transfer-encoding",
                                "upgrade", "proxy-connection", "proxy-authorization"}) {
    if (lowerName == name) return true;
  }
  return false;
}

bool isErrorBody(std::string_view body) {
  rapidjson::Document document;
  document.Parse(body.data(), body.size());
  if (document.HasParseError() || !document.IsObject()) return false;
  const auto error = document.FindMember("error");
  if (error == document.MemberEnd() || !error->value.IsObject()) return false;
  const auto code = error->value.FindMember("code");
  return code != error->value.MemberEnd() && code->value.IsString() &&
         code->value.GetStringLength() > 0;
}

std::size_t Message::count(std::string_view name) const {
  std::size_t n = 0;
  for (const auto& field : fields) n += http::iequals(field.first, name) ? 1 : 0;
  return n;
}

std::string_view Message::value(std::string_view name) const {
  for (const auto& field : fields) {
    if (http::iequals(field.first, name)) return field.second;
  }
  return {};
}

Reader::Reader(llhttp_type_t type, std::vector<bool> headAnswers) : Reader(type) {
  headAnswers_ = std::move(headAnswers);
}

Reader::Reader(llhttp_type_t type, bool headRequest) : headRequest_(headRequest) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &Reader::onMessageBegin;
  settings_.on_url = &Reader::onUrl;
  settings_.on_method = &Reader::onMethod;
  settings_.on_header_field = &Reader::onHeaderField;
  settings_.on_header_value = &Reader::onHeaderValue;
  settings_.on_header_value_complete = &Reader::onHeaderValueComplete;
  settings_.on_headers_complete = &Reader::onHeadersComplete;
  settings_.on_body = &Reader::onBody;
  settings_.on_message_complete = &Reader::onMessageComplete;
  llhttp_init(&parser_, type, &settings_);
  parser_.data = this;
}

llhttp_errno_t Reader::read(std::string_view bytes) {
  const char* at = bytes.data();
  const char* const end = at + bytes.size();
  llhttp_errno_t error = llhttp_execute(&parser_, at, bytes.size());
  // The gateway answers an Upgrade request as a plain one, so what follows is HTTP again.
  while (error == HPE_PAUSED_UPGRADE) {
    at = llhttp_get_error_pos(&parser_);
    llhttp_resume_after_upgrade(&parser_);
    error = llhttp_execute(&parser_, at, static_cast<std::size_t>(end - at));
  }
  consumed_ = bytes.size();
  if (error != HPE_OK) {
    const char* stop = llhttp_get_error_pos(&parser_);
    consumed_ = stop ? static_cast<std::size_t>(stop - bytes.data()) : 0;
  }
  return error;
}

llhttp_errno_t Reader::finish() { return llhttp_finish(&parser_); }

int Reader::onMessageBegin(llhttp_t* p) {
  Reader& r = self(p);
  r.messages_.emplace_back();
  r.inMessage_ = true;
  r.inHead_ = true;
  r.inValue_ = false;
  return 0;
}

int Reader::onUrl(llhttp_t* p, const char* at, std::size_t length) {
  self(p).messages_.back().target.append(at, length);
  return 0;
}

int Reader::onMethod(llhttp_t* p, const char* at, std::size_t length) {
  self(p).messages_.back().method.append(at, length);
  return 0;
}

int Reader::onHeaderField(llhttp_t* p, const char* at, std::size_t length) {
  Reader& r = self(p);
  if (!r.inHead_) return 0;
  auto& fields = r.messages_.back().fields;
  if (r.inValue_ || fields.empty()) fields.emplace_back();
  r.inValue_ = false;
  fields.back().first.append(at, length);
  return 0;
}

int Reader::onHeaderValue(llhttp_t* p, const char* at, std::size_t length) {
  Reader& r = self(p);
  if (!r.inHead_) return 0;
  r.inValue_ = true;
  r.messages_.back().fields.back().second.append(at, length);
  return 0;
}

int Reader::onHeaderValueComplete(llhttp_t* p) {
  self(p).inValue_ = true;  // an empty value has no on_header_value: the next name is a new field
  return 0;
}

int Reader::onHeadersComplete(llhttp_t* p) {
  Reader& r = self(p);
  r.inHead_ = false;
  Message& message = r.messages_.back();
  message.status = p->status_code;
  message.versionMajor = p->http_major;
  message.versionMinor = p->http_minor;
  message.chunked = (p->flags & F_CHUNKED) != 0;
  message.hasContentLength = (p->flags & F_CONTENT_LENGTH) != 0;
  if (p->type != HTTP_RESPONSE) return 0;
  bool answersHead = r.headRequest_;
  if (p->status_code >= 200) {
    const std::size_t index = r.finalResponses_++;
    if (index < r.headAnswers_.size()) answersHead = r.headAnswers_[index];
  }
  // RFC 9112 §6.3: the answer to HEAD, and every 1xx, 204 and 304, ends with its head.
  const bool bodyless = (answersHead && p->status_code >= 200) || p->status_code < 200 ||
                        p->status_code == 204 || p->status_code == 304;
  return bodyless ? 1 : 0;
}

int Reader::onBody(llhttp_t* p, const char* at, std::size_t length) {
  self(p).messages_.back().body.append(at, length);
  return 0;
}

int Reader::onMessageComplete(llhttp_t* p) {
  Reader& r = self(p);
  r.messages_.back().complete = true;
  r.messages_.back().keepAlive = llhttp_should_keep_alive(p) != 0;
  r.inMessage_ = false;
  return 0;
}

}  // namespace gw::fuzz
