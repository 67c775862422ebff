// traceparent / tracestate (W3C Trace Context) as a client sends them: whatever arrives, the
// gateway's hop is well formed, continues exactly the trace a valid traceparent names, and
// starts a new one otherwise; a valid traceparent survives formatting unchanged.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/observability/trace_context.h"
#include "test/fuzz/fuzz_check.h"

using namespace gw::observability;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // One input feeds both fields, as one request carries both: traceparent up to the first
  // newline, tracestate after it.
  const std::size_t newline = input.find('\n');
  const std::string_view traceParent = input.substr(0, newline);
  const std::string_view traceState =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

  const auto parsed = parseTraceParent(traceParent);
  if (parsed) {
    FUZZ_REQUIRE(parsed->trace_id.valid() && parsed->parent_id != 0,
                 "a traceparent with an all-zero id was accepted");
    FUZZ_REQUIRE(parsed->version != 0xff, "version ff was accepted");
    FUZZ_REQUIRE(parsed->version != 0 || traceParent.size() == kTraceParentLen,
                 "a version 00 traceparent of the wrong length was accepted");
    char formatted[kTraceParentLen];
    formatTraceParent(parsed->trace_id, parsed->parent_id, parsed->sampled(), formatted);
    const auto again = parseTraceParent({formatted, sizeof formatted});
    FUZZ_REQUIRE(again && again->trace_id == parsed->trace_id &&
                     again->parent_id == parsed->parent_id && again->sampled() == parsed->sampled(),
                 "formatting a parsed traceparent does not give it back");
    if (parsed->version == 0 && (parsed->flags & ~kFlagSampled) == 0) {
      FUZZ_REQUIRE(std::string_view(formatted, sizeof formatted) == traceParent,
                   "a canonical version 00 traceparent is not reproduced byte for byte");
    }
  }

  static TraceIds ids(1);
  const TraceHop hop = startHop(traceParent, ids);
  FUZZ_REQUIRE(hop.continued == parsed.has_value(), "continued a trace that was not valid");
  FUZZ_REQUIRE(hop.span_id != 0 && hop.trace_id.valid(), "the gateway's ids are not valid");
  if (parsed) {
    FUZZ_REQUIRE(hop.trace_id == parsed->trace_id && hop.parent_span_id == parsed->parent_id &&
                     hop.sampled == parsed->sampled(),
                 "the hop does not continue the incoming trace");
  } else {
    FUZZ_REQUIRE(hop.parent_span_id == 0 && hop.sampled, "a new trace has a parent");
  }
  char upstream[kTraceParentLen];
  hop.formatUpstream(upstream);
  const auto sent = parseTraceParent({upstream, sizeof upstream});
  FUZZ_REQUIRE(sent && sent->version == 0 && sent->trace_id == hop.trace_id &&
                   sent->parent_id == hop.span_id,
               "the traceparent sent upstream does not parse back to the gateway's hop");

  if (validTraceState(traceState)) {
    // What is forwarded as tracestate goes into a header line: no control byte, no line break.
    for (const char c : traceState) {
      FUZZ_REQUIRE(c == ' ' || c == '\t' || (c > 0x20 && c < 0x7f),
                   "a tracestate with a control or non-ASCII byte was accepted");
    }
  }
  return 0;
}
