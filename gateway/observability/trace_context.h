#pragma once
// W3C Trace Context (https://www.w3.org/TR/trace-context/): parsing the incoming traceparent,
// validating tracestate, generating ids and formatting the traceparent the gateway sends upstream.
// Everything here is allocation-free so it can run on every request.

#include <cstdint>
#include <optional>
#include <string_view>

#include "gateway/core/fast_random.h"

namespace gw::observability {

// 16 bytes, big-endian halves: hi holds the first 16 hex digits of the wire form.
struct TraceId {
  uint64_t hi = 0;
  uint64_t lo = 0;
  bool valid() const { return (hi | lo) != 0; }
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

// 8 bytes; 0 means "none" (all-zero ids are invalid on the wire).
using SpanId = uint64_t;

inline constexpr std::size_t kTraceIdHexLen = 32;
inline constexpr std::size_t kSpanIdHexLen = 16;
inline constexpr std::size_t kTraceParentLen = 55;  // version 00
inline constexpr uint8_t kFlagSampled = 0x01;

struct TraceParent {
  uint8_t version = 0;
  TraceId trace_id;
  SpanId parent_id = 0;
  uint8_t flags = 0;
  bool sampled() const { return (flags & kFlagSampled) != 0; }
};

// Nullopt when the header must be ignored (the caller then restarts the trace). Version 00 must be
// exactly 55 chars; a higher version may be longer if a '-' follows the flags, and only its first
// four fields are read. Hex must be lower-case; all-zero ids and version ff are invalid.
std::optional<TraceParent> parseTraceParent(std::string_view value);

// tracestate per the Level 1 recommendation: comma-separated list of at most 32 key=value members
// (empty / whitespace-only members allowed and not counted), keys simple or tenant@system, values
// 1..256 printable chars without ',' or '=' ending in a non-space, no duplicate keys.
bool validTraceState(std::string_view value);

// Lower-case hex, exactly 32 / 16 chars, no terminator.
void formatTraceId(const TraceId& id, char out[kTraceIdHexLen]);
void formatSpanId(SpanId id, char out[kSpanIdHexLen]);

// "00-<trace>-<span>-0x" into out (exactly 55 chars, no terminator). Only the sampled bit is
// emitted: version 00 says vendors must set flags they do not know to zero.
void formatTraceParent(const TraceId& trace_id, SpanId span_id, bool sampled,
                       char out[kTraceParentLen]);

// Id generator, one per worker: xoshiro256** seeded from getrandom(). Not thread-safe by design
// (no locks on the request path); never returns an all-zero id.
class TraceIds {
 public:
  TraceIds() = default;                                  // seeded from getrandom()
  explicit TraceIds(uint64_t seed) : random_(seed) {}  // deterministic, for tests
  TraceId newTraceId();
  SpanId newSpanId();

 private:
  core::FastRandom random_;
};

// The gateway's hop of a trace. With a valid incoming traceparent: same trace id, parent = the
// caller's id, caller's sampled flag, and the incoming tracestate may be forwarded unchanged.
// Without one (absent or invalid): a new trace, no parent, sampled (the gateway is the root and
// records every request it exports), and any incoming tracestate must be dropped.
struct TraceHop {
  TraceId trace_id;
  SpanId parent_span_id = 0;  // 0: the gateway started the trace
  SpanId span_id = 0;         // the gateway's own span; sent upstream as the parent-id
  bool sampled = true;
  bool continued = false;  // true: incoming traceparent was valid (tracestate may be kept)

  // The traceparent to send upstream (exactly 55 chars).
  void formatUpstream(char out[kTraceParentLen]) const {
    formatTraceParent(trace_id, span_id, sampled, out);
  }
};

TraceHop startHop(std::string_view incoming_traceparent, TraceIds& ids);

}  // namespace gw::observability
