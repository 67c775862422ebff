// libFuzzer target for plugins/schema_validation: a request body (and the same bytes as a query
// string) must never crash the validator, whatever the schema shape. The first input byte picks
// one of the schemas below; all run at the largest max_depth the config accepts.
// Build and run with scripts/fuzz.sh (clang++ -fsanitize=fuzzer,address,undefined).

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "plugins/schema_validation/schema_validation.h"

namespace sv = gw::plugins::schema_validation;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Target {
  sv::Config config;
  std::unique_ptr<sv::WorkerSchemas> schemas;
};

std::vector<std::unique_ptr<Target>> makeTargets() {
  const std::vector<std::string> schemas = {
      // The shipped example (nested #825 shape, $ref, patterns, ranges).
      readFile(GW_SOURCE_ROOT "/conf/schemas/example-order.json"),
      // The #825 shape at every level through a recursive $ref, with uniqueItems.
      R"({"type":"object","additionalProperties":false,
          "patternProperties":{"^i":{"$ref":"#"},"^s":{"type":"string"}},
          "properties":{"p":{"type":"array","items":{"$ref":"#"},"uniqueItems":true}}})",
      // Recursion through parallel validators (anyOf / oneOf / not): the stack-depth worst case.
      R"({"definitions":{"t":{"anyOf":[{"type":"array","items":{"$ref":"#/definitions/t"}},
          {"type":"object","additionalProperties":{"$ref":"#/definitions/t"}},
          {"type":["string","number","boolean","null"]}]}},
          "oneOf":[{"$ref":"#/definitions/t"},{"not":{"type":"object"}}]})",
      // The remaining draft-04 keywords.
      R"({"type":["object","array"],"dependencies":{"a":["b"],"c":{"required":["d"]}},
          "properties":{"e":{"enum":[1,"x",null,{"k":[1]}]},"f":{"pattern":"^(a|b)*c{1,3}$"},
          "g":{"multipleOf":0.5,"maximum":10,"exclusiveMaximum":true},
          "h":{"minLength":2,"maxLength":4,"format":"email"}},
          "minProperties":1,"maxProperties":5,"items":[{"type":"integer"}],
          "additionalItems":false,"uniqueItems":true,"allOf":[{"maxItems":4}]})",
  };
  std::vector<std::unique_ptr<Target>> targets;
  for (const std::string& text : schemas) {
    auto target = std::make_unique<Target>();
    std::string error;
    target->config.body = sv::compileSchema(text, error);
    if (!target->config.body) __builtin_trap();  // a broken fixture, not a finding
    target->config.maxDepth = 256;               // the largest max_depth the config accepts
    sv::ParamRule page{"page", sv::ParamRule::Type::Integer, true, 1, 100, {}, ""};
    sv::ParamRule sort{"sort", sv::ParamRule::Type::String, false, {}, {}, {"asc", "desc"}, ""};
    sv::ParamRule q{"q", sv::ParamRule::Type::String, false, {}, {}, {}, "^[a-z]+(x|y)*$"};
    target->config.query = {page, sort, q};
    target->schemas = std::make_unique<sv::WorkerSchemas>(target->config);
    targets.push_back(std::move(target));
  }
  return targets;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::unique_ptr<Target>> targets = makeTargets();
  if (size == 0) return 0;
  const Target& target = *targets[data[0] % targets.size()];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const sv::BodyVerdict verdict = target.schemas->validateBody(input);
  (void)sv::describe(verdict, target.config.maxDepth);
  (void)target.schemas->checkQuery(input);
  (void)sv::isJsonMediaType(input);
  return 0;
}
