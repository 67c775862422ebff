#include "plugins/schema_validation/schema_validation.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/pointer.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <charconv>
#include <unordered_set>

#include "gateway/observability/metrics.h"
#include "gateway/http/headers.h"

namespace gw::plugins::schema_validation {

namespace {

using rapidjson::Value;

// Load-time walk over every place draft-04 keeps a subschema (RapidJSON compiles exactly these,
// plus $ref targets), checking what RapidJSON would otherwise ignore silently and applying the
// #825 rewrite.
class SchemaWalker {
 public:
  explicit SchemaWalker(SchemaSource& source) : source_(source) {}

  bool walk(Value& schema, const std::string& at) {
    if (!schema.IsObject() || !visited_.insert(&schema).second) return true;
    if (auto* pattern = member(schema, "pattern"); pattern && pattern->IsString()) {
      if (!checkRegex(pattern->GetString(), at + "/pattern")) return false;
    }
    if (auto* ref = member(schema, "$ref"); ref && ref->IsString() && !followRef(*ref, at)) {
      return false;
    }
    if (auto* patterns = member(schema, "patternProperties"); patterns && patterns->IsObject()) {
      for (auto& m : patterns->GetObject()) {
        if (!checkRegex(m.name.GetString(), at + "/patternProperties")) return false;
      }
      // Issue #825: the crashing shape. Equivalent rewrite; see schema_validation.h.
      if (auto* additional = member(schema, "additionalProperties");
          additional && additional->IsFalse()) {
        auto& alloc = source_.document.GetAllocator();
        additional->SetObject();
        additional->AddMember("not", Value(rapidjson::kObjectType), alloc);
        source_.rewritten.push_back(additional);
      }
    }
    for (const char* key : {"properties", "patternProperties", "definitions", "dependencies"}) {
      if (auto* map = member(schema, key); map && map->IsObject()) {
        for (auto& m : map->GetObject()) {
          if (!walk(m.value, at + "/" + key + "/" + m.name.GetString())) return false;
        }
      }
    }
    for (const char* key : {"additionalProperties", "additionalItems", "items", "not"}) {
      if (auto* sub = member(schema, key); sub && !walk(*sub, at + "/" + key)) return false;
    }
    for (const char* key : {"items", "allOf", "anyOf", "oneOf"}) {
      if (auto* list = member(schema, key); list && list->IsArray()) {
        for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
          if (!walk((*list)[i], at + "/" + key + "/" + std::to_string(i))) return false;
        }
      }
    }
    return true;
  }

  std::string error;

 private:
  static Value* member(Value& object, const char* name) {
    auto it = object.FindMember(name);
    return it == object.MemberEnd() ? nullptr : &it->value;
  }

  bool checkRegex(const char* source, const std::string& at) {
    if (Regex(source).IsValid()) return true;
    error = "schema " + at + ": pattern \"" + source +
            "\" is not supported by RapidJSON's regex dialect (literals, ., [], [^], ?, *, +, "
            "{n,m}, |, (), ^, $ and backslash escapes of those)";
    return false;
  }

  // Without a remote provider RapidJSON ignores a $ref it cannot resolve, which would quietly
  // accept anything: refuse it at load instead.
  bool followRef(const Value& ref, const std::string& at) {
    const std::string_view text(ref.GetString(), ref.GetStringLength());
    if (text.empty() || text.front() != '#') {
      error = "schema " + at + ": $ref \"" + std::string(text) +
              "\" points outside this schema; only local references (\"#/...\") are supported";
      return false;
    }
    rapidjson::Pointer pointer(text.data(), text.size());
    Value* target = pointer.IsValid() ? pointer.Get(source_.document) : nullptr;
    if (!target) {
      error = "schema " + at + ": $ref \"" + std::string(text) + "\" does not resolve";
      return false;
    }
    return walk(*target, std::string(text));
  }

  SchemaSource& source_;
  std::unordered_set<const Value*> visited_;
};

std::string uriFragment(const rapidjson::Pointer& pointer) {
  rapidjson::StringBuffer out;
  pointer.StringifyUriFragment(out);
  return {out.GetString(), out.GetSize()};
}

// Feeds parser events to the validator until it rejects, then only finishes the parse, so a
// malformed body is INVALID_JSON even if an earlier member already broke the schema.
class ValidatingHandler {
 public:
  ValidatingHandler(rapidjson::SchemaValidator& validator, const rapidjson::MemoryStream& stream,
                    int maxDepth)
      : validator_(validator), stream_(stream), maxDepth_(maxDepth) {}

  bool Null() {
    return feed([&] { return validator_.Null(); });
  }
  bool Bool(bool b) {
    return feed([&] { return validator_.Bool(b); });
  }
  bool Int(int i) {
    return feed([&] { return validator_.Int(i); });
  }
  bool Uint(unsigned u) {
    return feed([&] { return validator_.Uint(u); });
  }
  bool Int64(int64_t i) {
    return feed([&] { return validator_.Int64(i); });
  }
  bool Uint64(uint64_t u) {
    return feed([&] { return validator_.Uint64(u); });
  }
  bool Double(double d) {
    return feed([&] { return validator_.Double(d); });
  }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return feed([&] { return validator_.RawNumber(s, n, copy); });
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return feed([&] { return validator_.String(s, n, copy); });
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    return feed([&] { return validator_.Key(s, n, copy); });
  }
  bool StartObject() {
    return open() && feed([&] { return validator_.StartObject(); });
  }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return feed([&] { return validator_.EndObject(n); });
  }
  bool StartArray() {
    return open() && feed([&] { return validator_.StartArray(); });
  }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return feed([&] { return validator_.EndArray(n); });
  }

  bool rejected() const { return rejected_; }
  bool tooDeep() const { return tooDeepAt_.has_value(); }
  std::size_t tooDeepAt() const { return tooDeepAt_.value_or(0); }

 private:
  template <typename Event>
  bool feed(Event&& event) {
    if (!rejected_ && !event()) rejected_ = true;
    return true;
  }
  bool open() {
    if (++depth_ <= maxDepth_) return true;
    tooDeepAt_ = stream_.Tell();  // the reader reports a '{' or '[' before consuming it
    return false;                 // stops the parse
  }

  rapidjson::SchemaValidator& validator_;
  const rapidjson::MemoryStream& stream_;
  int maxDepth_;
  int depth_ = 0;
  bool rejected_ = false;
  std::optional<std::size_t> tooDeepAt_;
};

// A string_view as the NUL-terminated stream GenericRegex reads (a NUL inside ends it early;
// checkValue refuses such values first).
struct ViewStream {
  using Ch = char;
  std::string_view text;
  std::size_t pos = 0;
  Ch Peek() const { return pos < text.size() ? text[pos] : '\0'; }
  Ch Take() { return pos < text.size() ? text[pos++] : '\0'; }
  std::size_t Tell() const { return pos; }
};

std::unique_ptr<Regex> compileRule(const ParamRule& rule) {
  return rule.pattern.empty() ? nullptr : std::make_unique<Regex>(rule.pattern.c_str());
}

}  // namespace

std::shared_ptr<const SchemaSource> compileSchema(std::string_view json, std::string& error) {
  auto source = std::make_shared<SchemaSource>();
  source->document.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (source->document.HasParseError()) {
    error = "malformed JSON at byte " + std::to_string(source->document.GetErrorOffset()) + ": " +
            rapidjson::GetParseError_En(source->document.GetParseError());
    return nullptr;
  }
  if (!source->document.IsObject()) {
    error = "a JSON Schema must be a JSON object";
    return nullptr;
  }
  SchemaWalker walker(*source);
  if (!walker.walk(source->document, "#")) {
    error = std::move(walker.error);
    return nullptr;
  }
  return source;
}

WorkerSchemas::WorkerSchemas(const Config& config) : config_(config) {
  if (config.body) schema_ = std::make_unique<rapidjson::SchemaDocument>(config.body->document);
  for (const ParamRule& rule : config.query) queryRegexes_.push_back(compileRule(rule));
  for (const ParamRule& rule : config.headers) headerRegexes_.push_back(compileRule(rule));
}

BodyVerdict WorkerSchemas::validateBody(std::string_view body) const {
  BodyVerdict verdict;
  if (!schema_) return verdict;
  rapidjson::SchemaValidator validator(*schema_);
  rapidjson::MemoryStream stream(body.data(), body.size());
  ValidatingHandler handler(validator, stream, config_.maxDepth);
  rapidjson::Reader reader;
  // Iterative: the parser's own nesting lives on the heap, not the worker's stack.
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  const rapidjson::ParseResult parsed = reader.Parse<kFlags>(stream, handler);
  if (handler.tooDeep()) {
    verdict.kind = BodyVerdict::Kind::TooDeep;
    verdict.offset = handler.tooDeepAt();
    return verdict;
  }
  if (parsed.IsError() || stream.Tell() != body.size()) {
    // MemoryStream reads a NUL byte as the end: bytes after it would reach the upstream unchecked.
    verdict.kind = BodyVerdict::Kind::InvalidJson;
    verdict.offset = parsed.IsError() ? parsed.Offset() : stream.Tell();
    verdict.parseError =
        parsed.IsError() ? rapidjson::GetParseError_En(parsed.Code()) : "unexpected NUL byte";
    return verdict;
  }
  if (!handler.rejected()) return verdict;
  verdict.kind = BodyVerdict::Kind::Invalid;
  verdict.keyword = validator.GetInvalidSchemaKeyword();
  const rapidjson::Pointer schemaPointer = validator.GetInvalidSchemaPointer();
  verdict.schemaPath = uriFragment(schemaPointer);
  verdict.instancePath = uriFragment(validator.GetInvalidDocumentPointer());
  if (verdict.keyword == "not") {
    // A rewritten `additionalProperties: false` (#825): report it as the author wrote it.
    const Value* at = schemaPointer.Get(config_.body->document);
    const auto& rewritten = config_.body->rewritten;
    if (std::find(rewritten.begin(), rewritten.end(), at) != rewritten.end()) {
      verdict.keyword = "additionalProperties";
      verdict.schemaPath = uriFragment(
          rapidjson::Pointer(schemaPointer.GetTokens(), schemaPointer.GetTokenCount() - 1));
    }
  }
  return verdict;
}

std::optional<std::string> WorkerSchemas::checkValue(const ParamRule& rule, const Regex* regex,
                                                     std::string_view kind,
                                                     std::string_view value) const {
  const std::string prefix = std::string(kind) + " '" + rule.name + "' failed keyword=";
  if (rule.type == ParamRule::Type::Integer) {
    int64_t number = 0;
    const char* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(value.data(), end, number);
    if (ec != std::errc() || ptr != end || value.empty() || value.front() == '+') {
      return prefix + "type: must be an integer";
    }
    if (rule.minimum && number < *rule.minimum) {
      return prefix + "minimum: must be at least " + std::to_string(*rule.minimum);
    }
    if (rule.maximum && number > *rule.maximum) {
      return prefix + "maximum: must be at most " + std::to_string(*rule.maximum);
    }
  }
  if (!rule.allowed.empty() &&
      std::find(rule.allowed.begin(), rule.allowed.end(), value) == rule.allowed.end()) {
    std::string list;
    for (const std::string& allowed : rule.allowed) list += (list.empty() ? "" : ", ") + allowed;
    return prefix + "enum: must be one of: " + list;
  }
  if (regex) {
    ViewStream stream{value};
    if (value.find('\0') != std::string_view::npos || !regex->Search(stream)) {
      return prefix + "pattern: must match \"" + rule.pattern + "\"";
    }
  }
  return std::nullopt;
}

std::optional<std::string> WorkerSchemas::checkQuery(std::string_view query) const {
  std::string decoded;
  for (std::size_t i = 0; i < config_.query.size(); ++i) {
    const ParamRule& rule = config_.query[i];
    bool seen = false;
    // Every occurrence is checked: upstreams disagree on which of repeated parameters wins.
    for (std::size_t pos = 0; pos <= query.size();) {
      std::size_t amp = query.find('&', pos);
      if (amp == std::string_view::npos) amp = query.size();
      const std::string_view pair = query.substr(pos, amp - pos);
      pos = amp + 1;
      const std::size_t eq = pair.find('=');
      const std::string_view rawName = pair.substr(0, eq);
      const std::string_view rawValue =
          eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      if (!percentDecode(rawName, decoded) || decoded != rule.name) continue;
      seen = true;
      if (!percentDecode(rawValue, decoded)) {
        return "query parameter '" + rule.name + "' failed keyword=encoding: malformed " +
               "percent-encoding";
      }
      if (auto failure = checkValue(rule, queryRegexes_[i].get(), "query parameter", decoded)) {
        return failure;
      }
    }
    if (!seen && rule.required) {
      return "query parameter '" + rule.name + "' failed keyword=required: is missing";
    }
  }
  return std::nullopt;
}

std::optional<std::string> WorkerSchemas::checkHeaders(const plugin::HeaderMap& headers) const {
  for (std::size_t i = 0; i < config_.headers.size(); ++i) {
    const ParamRule& rule = config_.headers[i];
    bool seen = false;
    std::optional<std::string> failure;
    headers.forEach([&](std::string_view name, std::string_view value) {
      if (!http::iequals(name, rule.name)) return true;
      seen = true;
      failure = checkValue(rule, headerRegexes_[i].get(), "header", value);
      return !failure;
    });
    if (failure) return failure;
    if (!seen && rule.required)
      return "header '" + rule.name + "' failed keyword=required: is missing";
  }
  return std::nullopt;
}

bool isJsonMediaType(std::string_view contentType) {
  std::string_view type = contentType.substr(0, contentType.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  constexpr std::string_view kApplication = "application/";
  if (type.size() <= kApplication.size() ||
      !http::iequals(type.substr(0, kApplication.size()), kApplication)) {
    return false;
  }
  const std::string_view subtype = type.substr(kApplication.size());
  if (http::iequals(subtype, "json")) return true;
  constexpr std::string_view kSuffix = "+json";
  return subtype.size() > kSuffix.size() &&
         http::iequals(subtype.substr(subtype.size() - kSuffix.size()), kSuffix);
}

bool percentDecode(std::string_view in, std::string& out) {
  out.clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] != '%') {
      out += in[i];
    } else {
      if (i + 2 >= in.size()) return false;
      const int hi = hex(in[i + 1]);
      const int lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return true;
}

std::string describe(const BodyVerdict& verdict, int maxDepth) {
  switch (verdict.kind) {
    case BodyVerdict::Kind::Valid:
      return "valid";
    case BodyVerdict::Kind::InvalidJson:
      return "malformed JSON at byte " + std::to_string(verdict.offset) + ": " + verdict.parseError;
    case BodyVerdict::Kind::TooDeep:
      return "body failed keyword=max_depth: nests deeper than " + std::to_string(maxDepth) +
             " levels at byte " + std::to_string(verdict.offset);
    case BodyVerdict::Kind::Invalid:
      return "body failed keyword=" + verdict.keyword + " schema_path=" + verdict.schemaPath +
             " instance_path=" + verdict.instancePath;
  }
  return {};
}

plugin::Status SchemaValidationPlugin::reject(plugin::Context& ctx, core::ErrorCode code,
                                              std::string message) {
  Counters& c = schemas_.counters;
  if (code == core::ErrorCode::UnsupportedMediaType) ++c.unsupportedMediaType;
  if (code == core::ErrorCode::InvalidJson) ++c.invalidJson;
  if (code == core::ErrorCode::ValidationFailed) ++c.validationFailed;
  ++ctx.routeMetrics().schema_validation_failures;
  ctx.fail(core::Error::downstream(code, std::move(message)));
  return plugin::Status::Respond;
}

plugin::Status SchemaValidationPlugin::onRequestHeaders(plugin::Context& ctx) {
  if (!config_.query.empty()) {
    if (auto failure = schemas_.checkQuery(ctx.request().query)) {
      return reject(ctx, core::ErrorCode::ValidationFailed, std::move(*failure));
    }
  }
  plugin::HeaderMap& headers = ctx.requestHeaders();
  if (auto failure = schemas_.checkHeaders(headers)) {
    return reject(ctx, core::ErrorCode::ValidationFailed, std::move(*failure));
  }
  if (!config_.body) {
    ++schemas_.counters.passed;
    return plugin::Status::Continue;
  }
  // A request says it has a body with Content-Length or Transfer-Encoding; POST/PUT/PATCH are
  // expected to carry one, so an empty one is checked (and fails unless the schema allows it).
  const std::string_view method = ctx.request().method;
  const auto length = headers.get("Content-Length");
  const bool hasBody = (length && *length != "0") || headers.get("Transfer-Encoding") ||
                       method == "POST" || method == "PUT" || method == "PATCH";
  if (!hasBody) {
    ++schemas_.counters.passed;
    return plugin::Status::Continue;
  }
  const auto contentType = headers.get("Content-Type");
  if (!contentType || !isJsonMediaType(*contentType)) {
    return reject(ctx, core::ErrorCode::UnsupportedMediaType,
                  "Content-Type must be application/json or application/*+json, got " +
                      (contentType ? "'" + std::string(*contentType) + "'" : std::string("none")));
  }
  checkBody_ = true;
  ctx.bufferRequestBody(config_.maxBodyBytes);
  return plugin::Status::Continue;
}

plugin::Status SchemaValidationPlugin::onRequestBody(plugin::Context& ctx, plugin::BodyView body,
                                                     bool end) {
  if (!checkBody_) return plugin::Status::Continue;
  if (!end) {
    pending_.append(body);
    return plugin::Status::Continue;
  }
  if (!pending_.empty()) {
    pending_.append(body);
    body = pending_;
  }
  const BodyVerdict verdict = schemas_.validateBody(body);
  switch (verdict.kind) {
    case BodyVerdict::Kind::Valid:
      ++schemas_.counters.passed;
      return plugin::Status::Continue;
    case BodyVerdict::Kind::InvalidJson:
      return reject(ctx, core::ErrorCode::InvalidJson, describe(verdict, config_.maxDepth));
    case BodyVerdict::Kind::TooDeep:
    case BodyVerdict::Kind::Invalid:
      break;
  }
  return reject(ctx, core::ErrorCode::ValidationFailed, describe(verdict, config_.maxDepth));
}

}  // namespace gw::plugins::schema_validation
