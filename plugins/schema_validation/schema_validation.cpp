#include "plugins/schema_validation/schema_validation.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/pointer.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "gateway/http/headers.h"
#include "gateway/observability/metrics.h"
#include "plugins/schema_validation/validation_budget.h"

namespace gw::plugins::schema_validation {

namespace {

using rapidjson::Value;

std::string uriFragment(const rapidjson::Pointer& pointer) {
  rapidjson::StringBuffer out;
  pointer.StringifyUriFragment(out);
  return {out.GetString(), out.GetSize()};
}

// "a number", "a list", ...: what a JSON value is, for messages.
std::string kindOf(const Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "a list";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      return "a number";
  }
  return "a value";
}

Value* member(Value& object, const char* name) {
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// The JSON Pointer of a local `$ref` (a string starting with '#'), as RapidJSON's SchemaDocument
// follows it; nothing for anything else (no $ref, not a string, remote, or not a valid pointer).
std::optional<rapidjson::Pointer> localRef(const Value& object) {
  const auto it = object.FindMember("$ref");
  if (it == object.MemberEnd() || !it->value.IsString()) return std::nullopt;
  const std::string_view text(it->value.GetString(), it->value.GetStringLength());
  if (text.empty() || text.front() != '#') return std::nullopt;
  rapidjson::Pointer pointer(text.data(), text.size());
  if (!pointer.IsValid()) return std::nullopt;
  return pointer;
}

// Load-time checks of a schema against what RapidJSON 1.1.0 does with it, refusing, with the
// place, every shape that would crash a worker or silently accept anything:
// - GenericSchemaDocument compiles every object anywhere in the document, and follows a local
//   $ref whose target holds a $ref at once, recursively, reading each target as an object: a $ref
//   loop overflows the stack, a $ref to a non-object trips an assertion. Its recursion follows
//   the document's nesting, and it looks schemas up by a linear search (quadratic in objects).
// - Its validator trusts every subschema position (allOf/anyOf/oneOf entries, not, items, ...)
//   to hold a compiled schema: a number there leaves a null or uninitialised pointer.
// - Each value creates a validator per allOf/anyOf/oneOf/not/dependencies subschema, nested
//   inside the one that created it and recursing once per level: a loop of those through $ref
//   recurses without end on any body, and a long chain multiplies the stack a body level costs.
// It also applies the #825 rewrite (see schema_validation.h) and checks patterns and $refs.
class SchemaChecker {
 public:
  explicit SchemaChecker(SchemaSource& source) : source_(source) {}

  bool check() { return scanDocument() && walkSchemas() && checkCombinatorNesting(); }

  std::string error;

 private:
  bool fail(const std::string& at, const std::string& why) {
    error = "schema " + at + ": " + why;
    return false;
  }

  // Every container of the document: nesting, object count and $ref chains, without recursion
  // (the document is not yet known to be shallow) and without a path string per value.
  bool scanDocument() {
    struct Visit {
      const Value* value;
      std::size_t parent;  // index in `visits`; the root is its own parent
      std::string token;
      int depth;
    };
    std::vector<Visit> visits;
    visits.push_back({&source_.document, 0, "", 0});
    const auto pathOf = [&](std::size_t at) {
      std::vector<const std::string*> tokens;
      for (; at != 0; at = visits[at].parent) tokens.push_back(&visits[at].token);
      std::string path = "#";
      for (auto it = tokens.rbegin(); it != tokens.rend(); ++it) path += "/" + **it;
      return path;
    };
    std::size_t objects = 0;
    for (std::size_t i = 0; i < visits.size(); ++i) {
      const Value& value = *visits[i].value;
      const int depth = visits[i].depth;
      if (depth > kMaxSchemaDepth) {
        return fail(pathOf(i), "nests deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
      }
      if (value.IsArray()) {
        for (rapidjson::SizeType k = 0; k < value.Size(); ++k) {
          if (value[k].IsObject() || value[k].IsArray()) {
            visits.push_back({&value[k], i, std::to_string(k), depth + 1});
          }
        }
      } else if (value.IsObject()) {
        if (++objects > kMaxSchemaObjects) {
          return fail(pathOf(i), "the schema has more than " + std::to_string(kMaxSchemaObjects) +
                                     " JSON objects (RapidJSON compiles each one, in time "
                                     "growing with the square of their number)");
        }
        if (!checkRefChain(value, pathOf(i))) return false;
        for (const auto& m : value.GetObject()) {
          if (m.value.IsObject() || m.value.IsArray()) {
            visits.push_back({&m.value, i, m.name.GetString(), depth + 1});
          }
        }
      }
    }
    return true;
  }

  bool checkRefChain(const Value& object, const std::string& at) {
    std::vector<const Value*> chain{&object};
    std::string links = at;
    for (auto pointer = localRef(object); pointer; pointer = localRef(*chain.back())) {
      const Value* target = pointer->Get(source_.document);
      if (!target) return true;  // never resolved; refused below where a schema is expected
      links += " -> " + uriFragment(*pointer);
      if (!target->IsObject()) {
        return fail(at, "$ref " + links + " points to " + kindOf(*target) +
                            ", not to a schema (a JSON object)");
      }
      if (std::find(chain.begin(), chain.end(), target) != chain.end()) {
        return fail(at, "$ref loop " + links + ": a $ref must lead to a schema");
      }
      if (chain.size() > kMaxRefChain) {
        return fail(at, "$ref chain " + links + " is longer than " + std::to_string(kMaxRefChain) +
                            " links");
      }
      chain.push_back(target);
    }
    return true;
  }

  // Every place draft-04 keeps a subschema, from the root and `definitions` (RapidJSON compiles
  // exactly these, plus $ref targets), iteratively: a $ref chain may lead anywhere.
  bool walkSchemas() {
    std::vector<std::pair<Value*, std::string>> pending{{&source_.document, "#"}};
    while (!pending.empty()) {
      auto [schema, at] = std::move(pending.back());
      pending.pop_back();
      if (!schema->IsObject()) {
        return fail(at, "a schema must be a JSON object, got " + kindOf(*schema));
      }
      if (!paths_.emplace(schema, at).second) continue;
      if (!walkSchema(*schema, at, pending)) return false;
    }
    return true;
  }

  using Pending = std::vector<std::pair<Value*, std::string>>;

  bool walkSchema(Value& schema, const std::string& at, Pending& pending) {
    if (auto* pattern = member(schema, "pattern")) {
      if (!pattern->IsString()) return fail(at + "/pattern", "must be a string");
      if (!checkRegex(pattern->GetString(), at + "/pattern")) return false;
    }
    if (auto* ref = member(schema, "$ref")) {
      Value* target = followRef(*ref, at);
      if (!target) return false;
      pending.emplace_back(target, ref->GetString());
    }
    // RapidJSON validates with the $ref's target instead of this object: its keywords below are
    // checked, but its subschemas never run for the same value.
    const bool replaced = localRef(schema).has_value();
    if (auto* patterns = member(schema, "patternProperties")) {
      if (!patterns->IsObject()) return fail(at + "/patternProperties", "must be an object");
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
    for (const char* key : {"properties", "patternProperties", "definitions"}) {
      if (auto* map = member(schema, key)) {
        if (!map->IsObject()) return fail(at + "/" + key, "must be an object");
        for (auto& m : map->GetObject()) {
          pending.emplace_back(&m.value, at + "/" + key + "/" + m.name.GetString());
        }
      }
    }
    if (auto* dependencies = member(schema, "dependencies")) {
      if (!dependencies->IsObject()) return fail(at + "/dependencies", "must be an object");
      for (auto& m : dependencies->GetObject()) {
        const std::string where = at + "/dependencies/" + m.name.GetString();
        if (m.value.IsObject()) {
          pending.emplace_back(&m.value, where);
          if (!replaced) sameValue_.emplace_back(&schema, &m.value);
        } else if (!m.value.IsArray()) {
          return fail(where, "must be a schema or a list of property names");
        }
      }
    }
    for (const char* key : {"additionalProperties", "additionalItems"}) {
      if (auto* sub = member(schema, key); sub && !sub->IsBool()) {
        pending.emplace_back(sub, at + "/" + key);
      }
    }
    if (auto* items = member(schema, "items")) {
      if (items->IsArray()) {
        for (rapidjson::SizeType i = 0; i < items->Size(); ++i) {
          pending.emplace_back(&(*items)[i], at + "/items/" + std::to_string(i));
        }
      } else {
        pending.emplace_back(items, at + "/items");
      }
    }
    if (auto* negated = member(schema, "not")) {
      pending.emplace_back(negated, at + "/not");
      if (!replaced) sameValue_.emplace_back(&schema, negated);
    }
    for (const char* key : {"allOf", "anyOf", "oneOf"}) {
      if (auto* list = member(schema, key)) {
        if (!list->IsArray() || list->Empty()) {
          return fail(at + "/" + key, "must be a non-empty list of schemas");
        }
        for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
          pending.emplace_back(&(*list)[i], at + "/" + key + "/" + std::to_string(i));
          if (!replaced) sameValue_.emplace_back(&schema, &(*list)[i]);
        }
      }
    }
    return true;
  }

  bool checkRegex(const char* source, const std::string& at) {
    if (Regex(source).IsValid()) return true;
    return fail(at, "pattern \"" + std::string(source) +
                        "\" is not supported by RapidJSON's regex dialect (literals, ., [], [^], "
                        "?, *, +, {n,m}, |, (), ^, $ and backslash escapes of those)");
  }

  // Without a remote provider RapidJSON ignores a $ref it cannot resolve, which would quietly
  // accept anything: refuse it at load instead. The target is walked as a schema.
  Value* followRef(const Value& ref, const std::string& at) {
    if (!ref.IsString()) {
      fail(at + "/$ref", "must be a string");
      return nullptr;
    }
    const std::string_view text(ref.GetString(), ref.GetStringLength());
    if (text.empty() || text.front() != '#') {
      fail(at, "$ref \"" + std::string(text) +
                   "\" points outside this schema; only local references (\"#/...\") are "
                   "supported");
      return nullptr;
    }
    rapidjson::Pointer pointer(text.data(), text.size());
    Value* target = pointer.IsValid() ? pointer.Get(source_.document) : nullptr;
    if (!target) fail(at, "$ref \"" + std::string(text) + "\" does not resolve");
    return target;
  }

  // The schema RapidJSON validates a value with at `schema`: the end of its $ref chain.
  const Value* resolved(const Value* schema) const {
    for (auto pointer = localRef(*schema); pointer; pointer = localRef(*schema)) {
      const Value* target = pointer->Get(source_.document);
      if (!target || !target->IsObject()) break;  // refused by the walk
      schema = target;
    }
    return schema;
  }

  // The allOf/anyOf/oneOf/not/dependencies edges (through $ref) must form no loop, and no chain
  // longer than kMaxCombinatorNesting: a depth-first search keeping each schema's longest chain.
  bool checkCombinatorNesting() {
    std::unordered_map<const Value*, std::vector<const Value*>> next;
    for (const auto& [from, to] : sameValue_) next[resolved(from)].push_back(resolved(to));
    constexpr int kOnPath = -1;
    std::unordered_map<const Value*, int> longest;  // kOnPath while being explored
    for (const auto& link : sameValue_) {  // in walk order, so the place reported is stable
      const Value* start = resolved(link.first);
      if (longest.contains(start)) continue;
      std::vector<std::pair<const Value*, std::size_t>> path{{start, 0}};
      longest[start] = kOnPath;
      while (!path.empty()) {
        auto& [node, edge] = path.back();
        const auto found = next.find(node);
        const std::size_t edges = found == next.end() ? 0 : found->second.size();
        if (edge == edges) {
          int chain = 0;
          if (found != next.end()) {
            for (const Value* child : found->second) chain = std::max(chain, longest[child] + 1);
          }
          if (chain > kMaxCombinatorNesting) {
            return fail(paths_[node], "allOf/anyOf/oneOf/not/dependencies nest " +
                                          std::to_string(chain) +
                                          " levels deep for one value "
                                          "(at most " +
                                          std::to_string(kMaxCombinatorNesting) + ")");
          }
          longest[node] = chain;
          path.pop_back();
          continue;
        }
        const Value* child = found->second[edge++];
        const auto [it, fresh] = longest.try_emplace(child, kOnPath);
        if (fresh) {
          path.emplace_back(child, 0);
        } else if (it->second == kOnPath) {
          return fail(paths_[child],
                      "allOf/anyOf/oneOf/not/dependencies lead back to this "
                      "schema for the same value (through $ref): validating "
                      "would never end");
        }
      }
    }
    return true;
  }

  SchemaSource& source_;
  std::unordered_map<const Value*, std::string> paths_;           // each walked schema's first path
  std::vector<std::pair<const Value*, const Value*>> sameValue_;  // schema -> subschema
};

// Feeds parser events to the validator until it rejects, then only finishes the parse, so a
// malformed body is INVALID_JSON even if an earlier member already broke the schema. Each event
// fed is charged to the budget first (which throws once it is spent).
class ValidatingHandler {
 public:
  ValidatingHandler(BudgetedValidator& validator, ValidationBudget& budget,
                    const rapidjson::MemoryStream& stream, int maxDepth)
      : validator_(validator), budget_(budget), stream_(stream), maxDepth_(maxDepth) {}

  bool Null() {
    return feed(0, [&] { return validator_.Null(); });
  }
  bool Bool(bool b) {
    return feed(0, [&] { return validator_.Bool(b); });
  }
  bool Int(int i) {
    return feed(0, [&] { return validator_.Int(i); });
  }
  bool Uint(unsigned u) {
    return feed(0, [&] { return validator_.Uint(u); });
  }
  bool Int64(int64_t i) {
    return feed(0, [&] { return validator_.Int64(i); });
  }
  bool Uint64(uint64_t u) {
    return feed(0, [&] { return validator_.Uint64(u); });
  }
  bool Double(double d) {
    return feed(0, [&] { return validator_.Double(d); });
  }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return feed(n, [&] { return validator_.RawNumber(s, n, copy); });
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return text(s, n, [&] { return validator_.String(s, n, copy); });
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    return text(s, n, [&] { return validator_.Key(s, n, copy); });
  }
  bool StartObject() {
    return open() && feed(0, [&] { return validator_.StartObject(); });
  }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return feed(0, [&] { return validator_.EndObject(n); });
  }
  bool StartArray() {
    return open() && feed(0, [&] { return validator_.StartArray(); });
  }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return feed(0, [&] { return validator_.EndArray(n); });
  }

  bool rejected() const { return rejected_; }
  bool tooDeep() const { return tooDeepAt_.has_value(); }
  std::size_t tooDeepAt() const { return tooDeepAt_.value_or(0); }
  // The closing quote of the first string or key holding U+0000, if it came before any other
  // verdict.
  std::optional<std::size_t> nulAt() const { return nulAt_; }

 private:
  // RapidJSON matches `pattern` and patternProperties on a NUL-terminated copy, so
  // "abc\u0000 DROP TABLE" passes ^[a-z]+$ and a key can pass a pattern and then add anything:
  // such a string or key is refused instead.
  template <typename Event>
  bool text(const char* s, std::size_t n, Event&& event) {
    if (!rejected_ && std::memchr(s, '\0', n) != nullptr) {
      nulAt_ = stream_.Tell() - 1;  // the reader has just consumed the closing quote
      rejected_ = true;
    }
    return feed(n, std::forward<Event>(event));
  }
  template <typename Event>
  bool feed(std::size_t bytes, Event&& event) {
    if (rejected_) return true;
    budget_.chargeEvent(bytes);
    if (!event()) rejected_ = true;
    return true;
  }
  bool open() {
    if (++depth_ <= maxDepth_) return true;
    tooDeepAt_ = stream_.Tell();  // the reader reports a '{' or '[' before consuming it
    return false;                 // stops the parse
  }

  BudgetedValidator& validator_;
  ValidationBudget& budget_;
  const rapidjson::MemoryStream& stream_;
  int maxDepth_;
  int depth_ = 0;
  bool rejected_ = false;
  std::optional<std::size_t> tooDeepAt_;
  std::optional<std::size_t> nulAt_;
};

// The verdict of a validation that ran to its end.
BodyVerdict judge(const Config& config, const BudgetedValidator& validator,
                  const ValidatingHandler& handler, const rapidjson::ParseResult& parsed,
                  std::size_t readTo, std::size_t size) {
  BodyVerdict verdict;
  if (handler.tooDeep()) {
    verdict.kind = BodyVerdict::Kind::TooDeep;
    verdict.offset = handler.tooDeepAt();
    return verdict;
  }
  if (parsed.IsError() || readTo != size) {
    // MemoryStream reads a NUL byte as the end: bytes after it would reach the upstream unchecked.
    verdict.kind = BodyVerdict::Kind::InvalidJson;
    verdict.offset = parsed.IsError() ? parsed.Offset() : readTo;
    verdict.parseError =
        parsed.IsError() ? rapidjson::GetParseError_En(parsed.Code()) : "unexpected NUL byte";
    return verdict;
  }
  if (handler.nulAt()) {
    verdict.kind = BodyVerdict::Kind::NulCharacter;
    verdict.offset = *handler.nulAt();
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
    const Value* at = schemaPointer.Get(config.body->document);
    const auto& rewritten = config.body->rewritten;
    if (std::find(rewritten.begin(), rewritten.end(), at) != rewritten.end()) {
      verdict.keyword = "additionalProperties";
      verdict.schemaPath = uriFragment(
          rapidjson::Pointer(schemaPointer.GetTokens(), schemaPointer.GetTokenCount() - 1));
    }
  }
  return verdict;
}

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
  if (json.size() > kMaxSchemaBytes) {
    error = "is larger than " + std::to_string(kMaxSchemaBytes) + " bytes of JSON";
    return nullptr;
  }
  auto source = std::make_shared<SchemaSource>();
  // Iterative: the nesting is checked only after the parse.
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  source->document.Parse<kFlags>(json.data(), json.size());
  if (source->document.HasParseError()) {
    error = "malformed JSON at byte " + std::to_string(source->document.GetErrorOffset()) + ": " +
            rapidjson::GetParseError_En(source->document.GetParseError());
    return nullptr;
  }
  if (!source->document.IsObject()) {
    error = "a JSON Schema must be a JSON object";
    return nullptr;
  }
  SchemaChecker checker(*source);
  if (!checker.check()) {
    error = std::move(checker.error);
    return nullptr;
  }
  // Compiled once here too, as each worker will: whatever RapidJSON does at compile time happens
  // under `gatewayd -t` first, so a file that passes -t starts.
  rapidjson::SchemaDocument{source->document};
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
  ValidationBudget budget(config_.maxValidationSteps, config_.maxValidationBytes);
  // In raw storage, destroyed only on the normal path: when the budget throws, RapidJSON's state
  // is half updated, so the validator is abandoned and `budget` frees every block it held.
  alignas(BudgetedValidator) unsigned char storage[sizeof(BudgetedValidator)];
  auto* validator = new (storage) BudgetedValidator(*schema_, &budget);
  rapidjson::MemoryStream stream(body.data(), body.size());
  ValidatingHandler handler(*validator, budget, stream, config_.maxDepth);
  rapidjson::Reader reader;
  // Iterative: the parser's own nesting lives on the heap, not the worker's stack.
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  rapidjson::ParseResult parsed;
  try {
    parsed = reader.Parse<kFlags>(stream, handler);
  } catch (const ValidationBudget::Exhausted& exhausted) {
    verdict.kind = BodyVerdict::Kind::TooComplex;
    verdict.exhausted = exhausted.what;
    verdict.limit = exhausted.what == ValidationBudget::Exhausted::What::Steps
                        ? config_.maxValidationSteps
                        : config_.maxValidationBytes;
    verdict.offset = stream.Tell();
    return verdict;
  }
  verdict = judge(config_, *validator, handler, parsed, stream.Tell(), body.size());
  validator->~BudgetedValidator();
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
  // A token: "application/x, application/a+json" is a list, not a JSON type.
  const std::string_view subtype = type.substr(kApplication.size());
  if (!http::isToken(subtype)) return false;
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
    case BodyVerdict::Kind::NulCharacter:
      return "body failed keyword=nul: a string or key holds U+0000, which schema patterns "
             "cannot check (the string ends at byte " +
             std::to_string(verdict.offset) + ")";
    case BodyVerdict::Kind::Invalid:
      return "body failed keyword=" + verdict.keyword + " schema_path=" + verdict.schemaPath +
             " instance_path=" + verdict.instancePath;
    case BodyVerdict::Kind::TooComplex:
      return verdict.exhausted == ValidationBudget::Exhausted::What::Steps
                 ? "body failed keyword=max_validation_steps: validating it takes more than " +
                       std::to_string(verdict.limit) + " steps (at byte " +
                       std::to_string(verdict.offset) + ")"
                 : "body failed keyword=max_validation_memory: validating it takes more than " +
                       std::to_string(verdict.limit) + " bytes of validator state (at byte " +
                       std::to_string(verdict.offset) + ")";
  }
  return {};
}

plugin::Status SchemaValidationPlugin::reject(plugin::Context& ctx, core::ErrorCode code,
                                              std::string message) {
  Counters& c = schemas_.counters;
  if (code == kUnsupportedMediaType) ++c.unsupportedMediaType;
  if (code == kInvalidJson) ++c.invalidJson;
  if (code == kValidationFailed) ++c.validationFailed;
  if (code == kBodyTooComplex) ++c.tooComplex;
  ctx.count(slots_.counters);
  ctx.fail(core::Error::downstream(code, std::move(message)));
  return plugin::Status::Respond;
}

plugin::Status SchemaValidationPlugin::onRequestHeaders(plugin::Context& ctx) {
  if (!config_.query.empty()) {
    if (auto failure = schemas_.checkQuery(ctx.request().query)) {
      return reject(ctx, kValidationFailed, std::move(*failure));
    }
  }
  plugin::HeaderMap& headers = ctx.requestHeaders();
  if (auto failure = schemas_.checkHeaders(headers)) {
    return reject(ctx, kValidationFailed, std::move(*failure));
  }
  if (!config_.body) {
    ++schemas_.counters.passed;
    return plugin::Status::Continue;
  }
  // The gateway's parser says whether a body follows (a Content-Length above 0, or chunked: the
  // fields a plugin sees never hold Transfer-Encoding, which is hop-by-hop); POST/PUT/PATCH are
  // expected to carry one, so an empty one is checked (and fails unless the schema allows it).
  const std::string_view method = ctx.request().method;
  const bool hasBody =
      ctx.request().hasBody || method == "POST" || method == "PUT" || method == "PATCH";
  if (!hasBody) {
    ++schemas_.counters.passed;
    return plugin::Status::Continue;
  }
  // Exactly one field: the body is checked as the type it names, and an upstream reading another
  // of several fields would parse something never checked.
  std::size_t contentTypes = 0;
  headers.forEach([&](std::string_view name, std::string_view) {
    if (http::iequals(name, "Content-Type")) ++contentTypes;
    return true;
  });
  if (contentTypes > 1) {
    return reject(
        ctx, kUnsupportedMediaType,
        "Content-Type must be given once, got " + std::to_string(contentTypes) + " fields");
  }
  const auto contentType = headers.get("Content-Type");
  if (!contentType || !isJsonMediaType(*contentType)) {
    return reject(ctx, kUnsupportedMediaType,
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
      return reject(ctx, kInvalidJson, describe(verdict, config_.maxDepth));
    case BodyVerdict::Kind::TooComplex:
      return reject(ctx, kBodyTooComplex, describe(verdict, config_.maxDepth));
    case BodyVerdict::Kind::TooDeep:
    case BodyVerdict::Kind::NulCharacter:
    case BodyVerdict::Kind::Invalid:
      break;
  }
  return reject(ctx, kValidationFailed, describe(verdict, config_.maxDepth));
}

}  // namespace gw::plugins::schema_validation
