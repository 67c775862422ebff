// schema_validation's body path: a JSON Schema compiled as the loader compiles it (compileSchema:
// the load-time checks and the RapidJSON #825 rewrite), a worker's compiled form of it, and a
// request body (also read as a query string) validated through the plugin's hooks as the proxy
// drives them.
//
// Input: when it starts with '{', the schema's JSON text up to the first NUL byte, then the body
// (both fuzzed: a schema an operator could write, a body any client could send). Otherwise byte 0
// picks one of the built-in schemas below (all at the largest max_depth the config accepts) and
// the rest is the body.
//
// Invariants (any break aborts; a hang or an allocation past -timeout / -rss_limit_mb is a
// finding too):
//   - compileSchema refuses exactly when it says why;
//   - the verdict is a function of the body: validating it twice on the same worker's schemas
//     gives the same verdict (RapidJSON's regexes keep scratch state between searches);
//   - a body judged valid is well-formed UTF-8 JSON to an independent parse, and one judged
//     malformed is not;
//   - the plugin lets a JSON request through exactly when its body is valid, and otherwise
//     answers with an error of its own.

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/schema_validation/schema_validation.h"
#include "test/fuzz/fuzz_check.h"
#include "test/support/plugin_context.h"

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
    FUZZ_REQUIRE(target->config.body, "a built-in schema does not compile");
    target->config.maxDepth = 256;  // the largest max_depth the config accepts
    sv::ParamRule page{"page", sv::ParamRule::Type::Integer, true, 1, 100, {}, ""};
    sv::ParamRule sort{"sort", sv::ParamRule::Type::String, false, {}, {}, {"asc", "desc"}, ""};
    sv::ParamRule q{"q", sv::ParamRule::Type::String, false, {}, {}, {}, "^[a-z]+(x|y)*$"};
    target->config.query = {page, sort, q};
    target->schemas = std::make_unique<sv::WorkerSchemas>(target->config);
    targets.push_back(std::move(target));
  }
  return targets;
}

bool sameVerdict(const sv::BodyVerdict& a, const sv::BodyVerdict& b) {
  return a.kind == b.kind && a.offset == b.offset && a.keyword == b.keyword &&
         a.schemaPath == b.schemaPath && a.instancePath == b.instancePath &&
         a.parseError == b.parseError;
}

void check(const sv::Config& config, sv::WorkerSchemas& schemas, std::string_view body) {
  const sv::BodyVerdict verdict = schemas.validateBody(body);
  FUZZ_REQUIRE(sameVerdict(verdict, schemas.validateBody(body)),
               "the same body got two different verdicts");
  (void)sv::describe(verdict, config.maxDepth);
  rapidjson::Document independent;
  independent.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(
      body.data(), body.size());
  // RapidJSON's streams read a NUL byte as the end of the input; JSON has no raw NUL anywhere.
  const bool wellFormed = !independent.HasParseError() && body.find('\0') == body.npos;
  if (verdict.kind == sv::BodyVerdict::Kind::Valid) {
    FUZZ_REQUIRE(wellFormed, "a body that is not JSON was judged valid");
  }
  if (verdict.kind == sv::BodyVerdict::Kind::InvalidJson) {
    FUZZ_REQUIRE(!wellFormed, "well-formed JSON was judged malformed");
  }

  // Through the plugin's hooks, with a query the rules accept, as a JSON POST.
  gw::test::TestContext ctx;
  ctx.info.method = "POST";
  ctx.info.query = "page=1";
  ctx.requestHeaders().add("Content-Type", "application/json");
  ctx.requestHeaders().add("Content-Length", std::to_string(body.size()));
  ctx.info.hasBody = !body.empty();
  sv::SchemaValidationPlugin plugin(config, schemas);
  FUZZ_REQUIRE(plugin.onRequestHeaders(ctx) == gw::plugin::Status::Continue && ctx.bufferLimit,
               "a JSON request was not asked for its body");
  const gw::plugin::Status status = plugin.onRequestBody(ctx, body, true);
  const bool passed =
      status == gw::plugin::Status::Continue && !ctx.failedWith && !ctx.repliedStatus;
  FUZZ_REQUIRE(passed == (verdict.kind == sv::BodyVerdict::Kind::Valid),
               "the plugin's answer disagrees with the body's verdict");
  FUZZ_REQUIRE(passed || (status == gw::plugin::Status::Respond && ctx.failedWith),
               "a refused body was not answered with an error");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.front() == '{') {
    const std::size_t nul = input.find('\0');
    const std::string_view body = nul == std::string_view::npos ? "" : input.substr(nul + 1);
    sv::Config config;
    std::string error;
    config.body = sv::compileSchema(input.substr(0, nul), error);
    FUZZ_REQUIRE((config.body == nullptr) == !error.empty(),
                 "compileSchema refused without a reason, or gave one and accepted");
    if (!config.body) return 0;
    sv::WorkerSchemas schemas(config);
    check(config, schemas, body);
    return 0;
  }
  static const std::vector<std::unique_ptr<Target>> targets = makeTargets();
  Target& target = *targets[static_cast<uint8_t>(input.front()) % targets.size()];
  const std::string_view body = input.substr(1);
  check(target.config, *target.schemas, body);
  (void)target.schemas->checkQuery(body);
  (void)sv::isJsonMediaType(body);
  return 0;
}
