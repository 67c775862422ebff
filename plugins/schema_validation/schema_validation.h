#pragma once
// schema_validation: rejects requests whose JSON body does not match a JSON Schema (draft-04, via
// RapidJSON's schema.h), or whose query parameters / headers break simple per-name rules, before
// the upstream is contacted. A valid request passes untouched (the body byte for byte).
//
// Two RapidJSON 1.1.0 (Debian) defects shape this unit:
// - Issue #825: in Schema::Key, a member that matches only a patternProperties pattern under
//   `additionalProperties: false` leaves Context::valueSchema unset, so the validator pushes
//   nothing (first member) or a stale schema (later members) for the value and its schema stack
//   goes out of step: wrong verdicts, and a segfault once such a value is an object. Driving the
//   validator through Document::Accept instead of the SAX reader emits the same events and crashes
//   the same way. So compileSchema() rewrites that shape at load into the equivalent
//   `additionalProperties: {"not": {}}`, which takes RapidJSON's well-trodden schema branch, and
//   the verdict maps the "not" failure back to the keyword the author wrote.
// - internal::GenericRegex::Search mutates `mutable` scratch members, so one compiled regex (and
//   a SchemaDocument holding `pattern`s) must not be used by two threads. Compiled schemas and
//   regexes therefore live in per-worker state (WorkerSchemas), built from the immutable Config.

#include <rapidjson/document.h>
#include <rapidjson/schema.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"
#include "plugins/schema_validation/validation_budget.h"

namespace gw::plugins::schema_validation {

// The answers to a request body the plugin refuses.
inline constexpr core::ErrorCode kUnsupportedMediaType{415, "UNSUPPORTED_MEDIA_TYPE"};
inline constexpr core::ErrorCode kInvalidJson{400, "INVALID_JSON"};
inline constexpr core::ErrorCode kValidationFailed{400, "VALIDATION_FAILED"};
inline constexpr core::ErrorCode kBodyTooComplex{413, "BODY_TOO_COMPLEX"};

// The plugin's one counter (number 0): requests refused, whatever the reason.
inline constexpr observability::CounterFamily kCounterFamilies[] = {
    {"gatewayd_schema_validation_failures_total",
     "Requests rejected by schema validation, by route.",
     "",
     {}},
};

using Regex = rapidjson::internal::GenericRegex<rapidjson::UTF8<>>;

inline constexpr std::size_t kDefaultMaxBodyBytes = std::size_t{1} << 20;
// Deep nesting costs stack in RapidJSON's parallel validators (allOf/anyOf/... under a recursive
// $ref): bounded here so no body can exhaust a worker's stack.
inline constexpr int kDefaultMaxDepth = 64;

// Bounds on a schema, each refused at load with its place (see SchemaChecker in the .cpp):
inline constexpr std::size_t kMaxSchemaBytes = std::size_t{1} << 20;  // JSON text (a file)
inline constexpr std::size_t kMaxSchemaObjects = 5000;  // RapidJSON compiles in O(objects^2)
inline constexpr int kMaxSchemaDepth = 128;             // JSON nesting: RapidJSON recurses on it
inline constexpr std::size_t kMaxRefChain = 32;         // $ref to a $ref to ...: recursion too
// allOf/anyOf/oneOf/not/dependencies inside each other for one value: each level nests a
// validator, and the stack a body level costs grows with it.
inline constexpr int kMaxCombinatorNesting = 32;

// The work and memory one body's validation may take (see validation_budget.h): past either, the
// request is refused with 413 BODY_TOO_COMPLEX. A step is 1 to 3 ns of CPU: the worst body found
// holds a worker for about 0.15 s at the default (docs/plugins.md has the measurement).
inline constexpr uint64_t kDefaultMaxValidationSteps = 50'000'000;
inline constexpr std::size_t kDefaultMaxValidationBytes = std::size_t{16} << 20;

// A JSON Schema after the load-time checks and the #825 rewrite. Immutable; shared by workers.
struct SchemaSource {
  rapidjson::Document document;
  // `additionalProperties` values rewritten from false to {"not": {}} (see the file comment).
  std::vector<const rapidjson::Value*> rewritten;
};

// Parses and checks a draft-04 schema: JSON syntax and the bounds above; every subschema is an
// object; every `pattern` / patternProperties key compiles with RapidJSON's regex dialect; $ref
// is local, resolves to an object and loops neither by itself nor through allOf/anyOf/oneOf/not.
// Applies the #825 rewrite. On failure returns null and says why in `error`.
std::shared_ptr<const SchemaSource> compileSchema(std::string_view json, std::string& error);

// One query parameter or header rule. `pattern` is kept as text: each worker compiles its own.
struct ParamRule {
  enum class Type : uint8_t { String, Integer };
  std::string name;
  Type type = Type::String;
  bool required = false;
  std::optional<int64_t> minimum;
  std::optional<int64_t> maximum;
  std::vector<std::string> allowed;  // enum; empty = any
  std::string pattern;               // RapidJSON regex dialect, searched like JSON Schema's
};

struct Config final : plugin::RouteConfig {
  std::shared_ptr<const SchemaSource> body;  // null: bodies are not checked
  std::size_t maxBodyBytes = kDefaultMaxBodyBytes;
  int maxDepth = kDefaultMaxDepth;
  uint64_t maxValidationSteps = kDefaultMaxValidationSteps;
  std::size_t maxValidationBytes = kDefaultMaxValidationBytes;
  std::vector<ParamRule> query;
  std::vector<ParamRule> headers;
};

// What the metrics issue will export; one list, counted per worker (no atomics needed).
#define GW_SCHEMA_VALIDATION_COUNTERS(X) \
  X(passed)                              \
  X(unsupportedMediaType)                \
  X(invalidJson)                         \
  X(validationFailed)                    \
  X(tooComplex)

struct Counters {
#define GW_SCHEMA_VALIDATION_COUNTER(name) uint64_t name = 0;
  GW_SCHEMA_VALIDATION_COUNTERS(GW_SCHEMA_VALIDATION_COUNTER)
#undef GW_SCHEMA_VALIDATION_COUNTER
};

// A body's verdict. Pointers are JSON Pointers in URI-fragment form ("#", "#/items/0/qty").
struct BodyVerdict {
  enum class Kind : uint8_t { Valid, InvalidJson, TooDeep, NulCharacter, Invalid, TooComplex };
  Kind kind = Kind::Valid;
  std::size_t offset = 0;  // all but Valid and Invalid: byte offset into the body
  ValidationBudget::Exhausted::What exhausted{};  // TooComplex: which bound ran out,
  uint64_t limit = 0;                             // and its value
  std::string parseError;  // InvalidJson
  std::string keyword;     // Invalid
  std::string schemaPath;
  std::string instancePath;
};

// The per-worker compiled form of a Config (see the file comment for why per worker).
class WorkerSchemas final : public plugin::WorkerState {
 public:
  explicit WorkerSchemas(const Config& config);

  BodyVerdict validateBody(std::string_view body) const;
  // The first rule a query string / header set breaks, as an error message; nullopt if none.
  std::optional<std::string> checkQuery(std::string_view query) const;
  std::optional<std::string> checkHeaders(const plugin::HeaderMap& headers) const;

  Counters counters;

 private:
  std::optional<std::string> checkValue(const ParamRule& rule, const Regex* regex,
                                        std::string_view kind, std::string_view value) const;

  const Config& config_;
  std::unique_ptr<rapidjson::SchemaDocument> schema_;
  std::vector<std::unique_ptr<Regex>> queryRegexes_;   // parallel to config_.query; null: none
  std::vector<std::unique_ptr<Regex>> headerRegexes_;  // parallel to config_.headers
};

// application/json or application/<token>+json, parameters allowed, case-insensitive.
bool isJsonMediaType(std::string_view contentType);

// Decodes %XX (and '+' as space, as forms send it). False on a malformed escape.
bool percentDecode(std::string_view in, std::string& out);

// The stable message texts (documented in docs/plugins.md).
std::string describe(const BodyVerdict& verdict, int maxDepth);

class SchemaValidationPlugin final : public plugin::Plugin {
 public:
  SchemaValidationPlugin(const Config& config, WorkerSchemas& schemas, plugin::Slots slots = {})
      : config_(config), schemas_(schemas), slots_(slots) {}

  // Checks query and headers, then the Content-Type, then asks for the whole body.
  plugin::Status onRequestHeaders(plugin::Context& ctx) override;
  // Validates the buffered body (end = true); pieces before the end are collected.
  plugin::Status onRequestBody(plugin::Context& ctx, plugin::BodyView body, bool end) override;

 private:
  plugin::Status reject(plugin::Context& ctx, core::ErrorCode code, std::string message);

  const Config& config_;
  WorkerSchemas& schemas_;
  plugin::Slots slots_;
  bool checkBody_ = false;
  std::string pending_;  // only if the core hands the body over in several pieces
};

}  // namespace gw::plugins::schema_validation
