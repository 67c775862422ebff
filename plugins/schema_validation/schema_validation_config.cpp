#include "plugins/schema_validation/schema_validation_config.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "gateway/config/file_text.h"
#include "gateway/config/node_reader.h"
#include "gateway/config/units.h"
#include "gateway/http/headers.h"
#include "plugins/schema_validation/schema_validation.h"

namespace gw::plugins::schema_validation {

namespace {

using config::describe;
using config::quote;

constexpr int kMaxDepthLimit =
    256;  // beyond this a worker's stack is at risk (see kDefaultMaxDepth)
// Below these nothing but trivial bodies validates; above, the bound is no bound.
constexpr int64_t kMinValidationSteps = 1000;
constexpr int64_t kMaxValidationStepsLimit = 1'000'000'000'000;
constexpr std::size_t kMinValidationBytes = 64 * 1024;

bool isInteger(std::string_view text, int64_t& out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

// YAML 1.2 core-schema float: [-+]? ( . digits | digits [ . digits? ] ) ( [eE] [-+]? digits )?
bool isFloat(std::string_view text) {
  std::size_t i = 0;
  auto digits = [&] {
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    return i > start;
  };
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  const bool whole = digits();
  bool fraction = false;
  if (i < text.size() && text[i] == '.') {
    ++i;
    fraction = digits();
  }
  if (!whole && !fraction) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    if (!digits()) return false;
  }
  return i == text.size();
}

class Parser {
 public:
  explicit Parser(std::vector<plugin::ConfigError>& errors) : errors_(errors) {}

  std::shared_ptr<const Config> parse(const YAML::Node& settings) {
    const std::size_t before = errors_.size();
    if (!settings.IsMap()) {
      error(settings,
            "schema_validation settings must be a mapping with at least one of schema, "
            "schema_file, query, headers; got " +
                describe(settings));
      return nullptr;
    }
    auto config = std::make_shared<Config>();
    std::optional<YAML::Node> schemaNode;  // copies: iterator pairs die with the iterator
    std::optional<YAML::Node> fileNode;
    for (auto it = settings.begin(); it != settings.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: the iterator hands out temporaries
      const YAML::Node value = it->second;
      const std::string name = key.IsScalar() ? key.Scalar() : std::string();
      if (name == "schema") {
        schemaNode = value;
        config->body = inlineSchema(value);
      } else if (name == "schema_file") {
        fileNode = key;
        config->body = fileSchema(value);
      } else if (name == "max_body_bytes") {
        readSize(value, name, 1, "1MiB", config->maxBodyBytes);
      } else if (name == "max_depth") {
        readInteger(value, name, 1, kMaxDepthLimit, config->maxDepth);
      } else if (name == "max_validation_steps") {
        readInteger(value, name, kMinValidationSteps, kMaxValidationStepsLimit,
                    config->maxValidationSteps);
      } else if (name == "max_validation_memory") {
        readSize(value, name, kMinValidationBytes, "16MiB", config->maxValidationBytes);
      } else if (name == "query" || name == "headers") {
        parseRules(value, name, name == "query" ? config->query : config->headers);
      } else {
        error(key, "unknown key " + quote(key.IsScalar() ? key.Scalar() : describe(key)) +
                       " in schema_validation; expected one of: schema, schema_file, "
                       "max_body_bytes, max_depth, max_validation_steps, max_validation_memory, "
                       "query, headers");
      }
    }
    if (schemaNode && fileNode) {
      error(*fileNode, "'schema' and 'schema_file' are exclusive: give one of them");
    }
    if (!config->body && !schemaNode && !fileNode && config->query.empty() &&
        config->headers.empty() && errors_.size() == before) {
      error(settings,
            "schema_validation needs at least one of schema, schema_file, query, "
            "headers");
    }
    if (errors_.size() != before) return nullptr;
    return config;
  }

 private:
  void error(const YAML::Node& node, std::string message) {
    config::addError(errors_, node, std::move(message));
  }

  // A size such as `example`, at least `min` bytes; a bad value is reported and `out` kept.
  void readSize(const YAML::Node& value, const std::string& name, std::size_t min,
                std::string_view example, std::size_t& out) {
    std::string why;
    const auto size = value.IsScalar() ? config::parseSize(value.Scalar(), why) : std::nullopt;
    if (!size || *size < min) {
      error(value, quote(name) + " must be a size" +
                       (min > 1 ? " of at least " + std::to_string(min) + " bytes" : "") +
                       " such as " + std::string(example) + (why.empty() ? "" : ": " + why));
    } else {
      out = *size;
    }
  }

  template <typename Int>
  void readInteger(const YAML::Node& value, const std::string& name, int64_t min, int64_t max,
                   Int& out) {
    int64_t number = 0;
    if (!value.IsScalar() || !isInteger(value.Scalar(), number) || number < min || number > max) {
      error(value, quote(name) + " must be an integer from " + std::to_string(min) + " to " +
                       std::to_string(max) + ", got " + describe(value));
    } else {
      out = static_cast<Int>(number);
    }
  }

  std::shared_ptr<const SchemaSource> inlineSchema(const YAML::Node& node) {
    if (!node.IsMap()) {
      error(node,
            "'schema' must be a mapping (a JSON Schema written in YAML), got " + describe(node));
      return nullptr;
    }
    rapidjson::Document json;
    jsonValues_ = 0;
    if (!toJson(node, json, json.GetAllocator())) return nullptr;
    rapidjson::StringBuffer text;
    rapidjson::Writer<rapidjson::StringBuffer> writer(text);
    json.Accept(writer);
    std::string why;
    auto source = compileSchema({text.GetString(), text.GetSize()}, why);
    if (!source) error(node, "'schema': " + why);
    return source;
  }

  std::shared_ptr<const SchemaSource> fileSchema(const YAML::Node& node) {
    if (!node.IsScalar() || node.Scalar().empty()) {
      error(node, "'schema_file' must be a file path, got " + describe(node));
      return nullptr;
    }
    const std::string& path = node.Scalar();
    std::string text;
    if (auto why = config::readFileBounded(path, kMaxSchemaBytes, text)) {
      error(node, "cannot read schema file " + quote(path) + ": " + *why +
                      " (relative paths are resolved from the working directory)");
      return nullptr;
    }
    std::string why;
    auto source = compileSchema(text, why);
    if (!source) error(node, "schema file " + quote(path) + ": " + why);
    return source;
  }

  // A YAML tree as JSON. Plain scalars follow YAML 1.2's core schema (null, booleans, numbers);
  // quoted scalars are always strings, so `enum: ["1"]` stays a string.
  bool toJson(const YAML::Node& node, rapidjson::Value& out,
              rapidjson::Document::AllocatorType& alloc) {
    // Every JSON value takes two bytes or more: past this the text is surely too large, and
    // building it (aliases repeat nodes) would be wasted.
    if (++jsonValues_ > kMaxSchemaBytes / 2) {
      error(node, "'schema' is larger than " + std::to_string(kMaxSchemaBytes) +
                      " bytes of JSON (aliases count at each use)");
      return false;
    }
    switch (node.Type()) {
      case YAML::NodeType::Map: {
        out.SetObject();
        for (auto it = node.begin(); it != node.end(); ++it) {
          if (!it->first.IsScalar()) {
            error(it->first, "schema keys must be strings, got " + describe(it->first));
            return false;
          }
          const std::string& key = it->first.Scalar();
          if (out.HasMember(key.c_str())) {
            error(it->first, "duplicate key " + quote(key) + " in 'schema'");
            return false;
          }
          rapidjson::Value value;
          if (!toJson(it->second, value, alloc)) return false;
          out.AddMember(rapidjson::Value(key.c_str(), alloc), value, alloc);
        }
        return true;
      }
      case YAML::NodeType::Sequence: {
        out.SetArray();
        for (const YAML::Node& item : node) {
          rapidjson::Value value;
          if (!toJson(item, value, alloc)) return false;
          out.PushBack(value, alloc);
        }
        return true;
      }
      case YAML::NodeType::Scalar:
        scalarToJson(node, out, alloc);
        return true;
      default:
        out.SetNull();
        return true;
    }
  }

  static void scalarToJson(const YAML::Node& node, rapidjson::Value& out,
                           rapidjson::Document::AllocatorType& alloc) {
    const std::string& text = node.Scalar();
    int64_t integer = 0;
    if (node.Tag() == "!") {
      out.SetString(text.c_str(), static_cast<rapidjson::SizeType>(text.size()), alloc);
    } else if (text == "null" || text == "Null" || text == "NULL" || text == "~") {
      out.SetNull();
    } else if (text == "true" || text == "True" || text == "TRUE") {
      out.SetBool(true);
    } else if (text == "false" || text == "False" || text == "FALSE") {
      out.SetBool(false);
    } else if (isInteger(text, integer)) {
      out.SetInt64(integer);
    } else if (isFloat(text)) {
      out.SetDouble(std::strtod(text.c_str(), nullptr));
    } else {
      out.SetString(text.c_str(), static_cast<rapidjson::SizeType>(text.size()), alloc);
    }
  }

  void parseRules(const YAML::Node& node, const std::string& what, std::vector<ParamRule>& out) {
    if (!node.IsMap()) {
      error(node, quote(what) + " must be a mapping of names to rules, got " + describe(node));
      return;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: the iterator hands out temporaries
      if (!key.IsScalar() || key.Scalar().empty() ||
          (what == "headers" && !http::isToken(key.Scalar()))) {
        error(key, "a " + std::string(what == "query" ? "query parameter" : "header") +
                       " name must be a non-empty " + (what == "query" ? "string" : "token") +
                       ", got " + describe(key));
        continue;
      }
      ParamRule rule;
      rule.name = key.Scalar();
      if (parseRule(it->second, rule)) out.push_back(std::move(rule));
    }
  }

  bool parseRule(const YAML::Node& node, ParamRule& rule) {
    if (!node.IsMap()) {
      error(node, "the rule for " + quote(rule.name) +
                      " must be a mapping (type, required, minimum, maximum, enum, pattern), got " +
                      describe(node));
      return false;
    }
    const std::size_t before = errors_.size();
    std::optional<YAML::Node> bounds;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: the iterator hands out temporaries
      const YAML::Node value = it->second;
      const std::string name = key.IsScalar() ? key.Scalar() : std::string();
      if (name == "type") {
        if (value.IsScalar() && value.Scalar() == "integer") {
          rule.type = ParamRule::Type::Integer;
        } else if (!value.IsScalar() || value.Scalar() != "string") {
          error(value, "'type' must be string or integer, got " + describe(value));
        }
      } else if (name == "required") {
        if (value.IsScalar() && (value.Scalar() == "true" || value.Scalar() == "false")) {
          rule.required = value.Scalar() == "true";
        } else {
          error(value, "'required' must be true or false, got " + describe(value));
        }
      } else if (name == "minimum" || name == "maximum") {
        int64_t bound = 0;
        if (!value.IsScalar() || !isInteger(value.Scalar(), bound)) {
          error(value, quote(name) + " must be an integer, got " + describe(value));
        } else {
          (name == "minimum" ? rule.minimum : rule.maximum) = bound;
          bounds = key;
        }
      } else if (name == "enum") {
        if (!value.IsSequence() || value.size() == 0) {
          error(value, "'enum' must be a non-empty list, got " + describe(value));
          continue;
        }
        for (const YAML::Node& item : value) {
          if (item.IsScalar()) {
            rule.allowed.push_back(item.Scalar());
          } else {
            error(item, "'enum' entries must be scalars, got " + describe(item));
          }
        }
      } else if (name == "pattern") {
        if (!value.IsScalar() || value.Scalar().empty()) {
          error(value, "'pattern' must be a non-empty string, got " + describe(value));
        } else if (!Regex(value.Scalar().c_str()).IsValid()) {
          error(value, "pattern " + quote(value.Scalar()) +
                           " is not supported by RapidJSON's regex dialect (literals, ., [], [^], "
                           "?, *, +, {n,m}, |, (), ^, $ and backslash escapes of those)");
        } else {
          rule.pattern = value.Scalar();
        }
      } else {
        error(key, "unknown key " + quote(key.IsScalar() ? key.Scalar() : describe(key)) +
                       " in the rule for " + quote(rule.name) +
                       "; expected one of: type, required, minimum, maximum, enum, pattern");
      }
    }
    if (bounds && rule.type != ParamRule::Type::Integer) {
      error(*bounds, "minimum/maximum need 'type: integer' in the rule for " + quote(rule.name));
    }
    if (rule.minimum && rule.maximum && *rule.minimum > *rule.maximum) {
      error(node, "minimum is greater than maximum in the rule for " + quote(rule.name));
    }
    return errors_.size() == before;
  }

  std::vector<plugin::ConfigError>& errors_;
  std::size_t jsonValues_ = 0;  // made by toJson for the current inline schema
};

}  // namespace

std::shared_ptr<const plugin::RouteConfig> Factory::parse(
    const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const {
  // yaml-cpp reports malformed trees by throwing; the loader's errors say where.
  try {
    return Parser(errors).parse(settings);
  } catch (const YAML::Exception& e) {
    errors.push_back({e.mark.line + 1, e.mark.column + 1, e.msg});
    return nullptr;
  }
}

std::unique_ptr<plugin::WorkerState> Factory::makeWorkerState(const plugin::RouteConfig& config,
                                                              plugin::Dispatcher&) const {
  return std::make_unique<WorkerSchemas>(static_cast<const Config&>(config));
}

std::unique_ptr<plugin::Plugin> Factory::create(const plugin::RouteConfig& config,
                                                plugin::WorkerState* state) const {
  return std::make_unique<SchemaValidationPlugin>(static_cast<const Config&>(config),
                                                  static_cast<WorkerSchemas&>(*state), slots());
}

}  // namespace gw::plugins::schema_validation
