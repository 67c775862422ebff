// The cache's reading of what a backend and a client say about freshness: Cache-Control (and the
// targeted CDN-Cache-Control), Pragma, Age, Date, Expires and Last-Modified, delta-seconds and
// the three HTTP-date forms, then the RFC 9111 decisions over them (storable? fresh? how old?),
// conditional requests (If-None-Match, If-Modified-Since) and Range / If-Range.
//
// Input (text, so seeds stay readable):
//   line 1:   "<status> <request time> <response delay> <then> <policy bits>": when the request
//             was sent (unix seconds, clamped to 1970..2106), how long the answer took and how
//             long after it the cache is asked (seconds, clamped to [0, 2^31]): the gateway's own
//             clock, never a peer's; missing or unreadable numbers take defaults
//   then      the response's fields, one "Name: value" per line,
//   a blank line, then the request's fields.
//
// Invariants (any break aborts; UBSan catches overflow in the age arithmetic):
//   - delta-seconds and every duration or age computed is in [0, 2^31];
//   - an HTTP-date parsed and formatted again parses to the same second;
//   - the current age never decreases as time passes;
//   - nothing marked no-cache (by the response, unless the policy ignores it, or by the request)
//     is served without asking the origin;
//   - a partial Range answer lies inside the body and says so in its Content-Range.

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/cache/cache_control.h"
#include "plugins/cache/conditional.h"
#include "plugins/cache/fields.h"
#include "plugins/cache/freshness.h"
#include "plugins/cache/http_date.h"
#include "plugins/cache/range.h"
#include "test/fuzz/fuzz_check.h"

namespace gw::fuzz {
namespace {

using namespace plugins::cache;

constexpr int64_t kDefaultNow = 1'800'000'000;  // 2027-01-15

struct Input {
  int status = 200;
  int64_t requestTime = kDefaultNow - 2;
  int64_t responseDelay = 1;
  int64_t then = 1;
  uint32_t policyBits = 0;
  int64_t responseTime = 0;  // requestTime + responseDelay
  int64_t now = 0;           // responseTime + then
  std::vector<Field> response;
  std::vector<Field> request;
};

template <typename T>
void readNumber(std::string_view& line, T& out) {
  while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  T value{};
  const auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), value);
  if (error == std::errc()) out = value;
  line.remove_prefix(static_cast<std::size_t>(end - line.data()));
}

Input parse(std::string_view text) {
  Input input;
  const std::size_t firstEnd = text.find('\n');
  std::string_view first = text.substr(0, firstEnd);
  readNumber(first, input.status);
  readNumber(first, input.requestTime);
  readNumber(first, input.responseDelay);
  readNumber(first, input.then);
  readNumber(first, input.policyBits);
  input.requestTime = std::clamp<int64_t>(input.requestTime, 0, UINT32_MAX);
  input.responseTime = input.requestTime + std::clamp<int64_t>(input.responseDelay, 0, kDeltaMax);
  input.now = input.responseTime + std::clamp<int64_t>(input.then, 0, kDeltaMax);
  std::vector<Field>* fields = &input.response;
  std::string_view rest = firstEnd == std::string_view::npos ? "" : text.substr(firstEnd + 1);
  while (!rest.empty()) {
    const std::size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? "" : rest.substr(end + 1);
    if (line.empty()) {
      fields = &input.request;
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    fields->push_back(
        {std::string(line.substr(0, colon)), std::string(trimOws(line.substr(colon + 1)))});
  }
  return input;
}

Policy policyOf(uint32_t bits) {
  Policy policy;
  if (bits & 1) policy.targetedField = "CDN-Cache-Control";
  if (bits & 2) policy.defaultTtl = 3600;
  policy.heuristic = (bits & 4) == 0;
  policy.ignoreNoStore = (bits & 8) != 0;
  policy.ignorePrivate = (bits & 16) != 0;
  policy.ignoreNoCache = (bits & 32) != 0;
  policy.storeSetCookie = (bits & 64) != 0;
  policy.honourRequestDirectives = (bits & 128) == 0;
  if (bits & 256) policy.staleIfErrorDefault = 60;
  return policy;
}

bool inRange(int64_t seconds) { return seconds >= 0 && seconds <= kDeltaMax; }
bool inRange(const std::optional<int64_t>& seconds) { return !seconds || inRange(*seconds); }

// Every field value through every reader, whatever its name: each must hold on any text.
void readEveryWay(std::string_view value, int64_t now) {
  FUZZ_REQUIRE(inRange(parseDeltaSeconds(value)), "delta-seconds out of [0, 2^31]");
  if (const auto date = parseHttpDate(value, now)) {
    // formatHttpDate covers years 1970..9999 (IMF-fixdate has four year digits).
    constexpr int64_t kYear10000 = 253402300800;
    if (*date >= 0 && *date < kYear10000) {
      FUZZ_REQUIRE(parseHttpDate(formatHttpDate(*date), now) == date,
                   "an HTTP-date formatted again does not parse to the same second");
    }
  }
  ResponseDirectives response;
  parseResponseCacheControl(value, response);
  for (const auto& seconds :
       {response.maxAge, response.sMaxage, response.staleWhileRevalidate, response.staleIfError}) {
    FUZZ_REQUIRE(inRange(seconds), "a response directive's seconds out of [0, 2^31]");
  }
  ResponseDirectives targeted;
  parseTargetedCacheControl(value, targeted);
  FUZZ_REQUIRE(inRange(targeted.maxAge) && inRange(targeted.sMaxage),
               "a targeted directive's seconds out of [0, 2^31]");
  RequestDirectives request;
  parseRequestCacheControl(value, request);
  applyPragma(value, request);
  for (const auto& seconds :
       {request.maxAge, request.maxStaleSeconds, request.minFresh, request.staleIfError}) {
    FUZZ_REQUIRE(inRange(seconds), "a request directive's seconds out of [0, 2^31]");
  }
}

}  // namespace
}  // namespace gw::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace gw::fuzz;
  const Input input = parse({reinterpret_cast<const char*>(data), size});
  const Policy policy = policyOf(input.policyBits);
  for (const Field& field : input.response) readEveryWay(field.value, input.now);
  for (const Field& field : input.request) readEveryWay(field.value, input.now);

  const FieldSpan response(input.response);
  const FieldSpan request(input.request);
  const StoredMeta meta =
      analyseResponse(input.status, response, input.requestTime, input.responseTime, policy);
  FUZZ_REQUIRE(
      inRange(meta.lifetime) && inRange(meta.correctedInitialAge) && inRange(meta.ageValue),
      "a lifetime or age out of [0, 2^31]");
  const RequestDirectives directives = requestDirectives(request, policy);

  const int64_t age = currentAge(meta, input.now);
  FUZZ_REQUIRE(inRange(age), "the current age is out of [0, 2^31]");
  for (const int64_t later : {int64_t{1}, int64_t{3600}, int64_t{1} << 32}) {
    if (input.now > INT64_MAX - later) break;
    FUZZ_REQUIRE(currentAge(meta, input.now + later) >= age, "the age went down as time passed");
  }

  const bool authorization = firstValue(request, "Authorization").has_value();
  storability("GET", authorization, directives, meta, policy);
  const Decision decision = evaluate(meta, directives, input.now, policy);
  if (decision == Decision::Fresh || decision == Decision::ServeStale ||
      decision == Decision::StaleWhileRevalidate) {
    FUZZ_REQUIRE((!meta.cc.noCache || policy.ignoreNoCache) && !directives.noCache,
                 "no-cache (response or request) was served without asking the origin");
  }
  staleIfErrorAllows(meta, directives, input.now, policy);
  answersNotModified("GET", request, meta);
  if (const auto ifNoneMatch = firstValue(request, "If-None-Match")) {
    ifNoneMatchMatches(*ifNoneMatch, meta.etag);
  }

  constexpr uint64_t kBodyLength = 1000;
  const RangeAnswer range = answerRange("GET", firstValue(request, "Range"),
                                        firstValue(request, "If-Range"), kBodyLength, meta);
  if (range.kind == RangeAnswer::Kind::Partial) {
    FUZZ_REQUIRE(
        range.length > 0 && range.first < kBodyLength && range.length <= kBodyLength - range.first,
        "a partial answer reaches outside the body");
    const std::string expected = "bytes " + std::to_string(range.first) + "-" +
                                 std::to_string(range.first + range.length - 1) + "/" +
                                 std::to_string(kBodyLength);
    FUZZ_REQUIRE(range.contentRange == expected, "Content-Range does not describe the slice");
  }
  return 0;
}
