#include "gateway/observability/trace_context.h"


#include <array>

namespace gw::observability {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Lower-case hex digit value, or -1 (upper case is invalid in traceparent).
int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Parses exactly n (<= 16) lower-hex digits.
bool parseHex(std::string_view s, uint64_t& out) {
  uint64_t v = 0;
  for (char c : s) {
    int d = hexValue(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  out = v;
  return true;
}

void writeHex(uint64_t v, char* out, int digits) {
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = kHexDigits[v & 0xf];
    v >>= 4;
  }
}

bool isLcAlpha(char c) { return c >= 'a' && c <= 'z'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isKeyChar(char c) {
  return isLcAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}
bool isOws(char c) { return c == ' ' || c == '\t'; }

// simple-key       = lcalpha 0*255( keychar )
// multi-tenant-key = tenant-id "@" system-id
// tenant-id        = ( lcalpha / DIGIT ) 0*240( keychar )
// system-id        = lcalpha 0*13( keychar )
bool validKey(std::string_view key) {
  auto at = key.find('@');
  auto tail_ok = [](std::string_view s) {
    for (char c : s.substr(1)) {
      if (!isKeyChar(c)) return false;
    }
    return true;
  };
  if (at == std::string_view::npos) {
    return !key.empty() && key.size() <= 256 && isLcAlpha(key[0]) && tail_ok(key);
  }
  std::string_view tenant = key.substr(0, at);
  std::string_view system = key.substr(at + 1);
  return !tenant.empty() && tenant.size() <= 241 && (isLcAlpha(tenant[0]) || isDigit(tenant[0])) &&
         tail_ok(tenant) && !system.empty() && system.size() <= 14 && isLcAlpha(system[0]) &&
         tail_ok(system);
}

// value = 0*255(chr) nblk-chr ; chr = %x20 / nblk-chr ; nblk-chr = %x21-7E except ',' and '='
bool validValue(std::string_view value) {
  if (value.empty() || value.size() > 256 || value.back() == ' ') return false;
  for (char c : value) {
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
  }
  return true;
}

}  // namespace

std::optional<TraceParent> parseTraceParent(std::string_view v) {
  if (v.size() < kTraceParentLen) return std::nullopt;
  uint64_t version = 0;
  if (!parseHex(v.substr(0, 2), version) || version == 0xff || v[2] != '-') return std::nullopt;
  if (version == 0 ? v.size() != kTraceParentLen
                   : v.size() > kTraceParentLen && v[kTraceParentLen] != '-') {
    return std::nullopt;
  }
  TraceParent tp;
  tp.version = static_cast<uint8_t>(version);
  uint64_t flags = 0;
  if (!parseHex(v.substr(3, 16), tp.trace_id.hi) || !parseHex(v.substr(19, 16), tp.trace_id.lo) ||
      v[35] != '-' || !parseHex(v.substr(36, 16), tp.parent_id) || v[52] != '-' ||
      !parseHex(v.substr(53, 2), flags)) {
    return std::nullopt;
  }
  if (!tp.trace_id.valid() || tp.parent_id == 0) return std::nullopt;
  tp.flags = static_cast<uint8_t>(flags);
  return tp;
}

bool validTraceState(std::string_view value) {
  std::array<std::string_view, 32> keys;
  std::size_t count = 0;
  while (true) {
    std::size_t comma = value.find(',');
    std::string_view member = value.substr(0, comma);
    while (!member.empty() && isOws(member.front())) member.remove_prefix(1);
    while (!member.empty() && isOws(member.back())) member.remove_suffix(1);
    if (!member.empty()) {
      std::size_t eq = member.find('=');
      if (eq == std::string_view::npos) return false;
      std::string_view key = member.substr(0, eq);
      if (!validKey(key) || !validValue(member.substr(eq + 1))) return false;
      if (count == keys.size()) return false;
      for (std::size_t i = 0; i < count; ++i) {
        if (keys[i] == key) return false;
      }
      keys[count++] = key;
    }
    if (comma == std::string_view::npos) return true;
    value.remove_prefix(comma + 1);
  }
}

void formatTraceId(const TraceId& id, char out[kTraceIdHexLen]) {
  writeHex(id.hi, out, 16);
  writeHex(id.lo, out + 16, 16);
}

void formatSpanId(SpanId id, char out[kSpanIdHexLen]) { writeHex(id, out, 16); }

void formatTraceParent(const TraceId& trace_id, SpanId span_id, bool sampled,
                       char out[kTraceParentLen]) {
  out[0] = '0';
  out[1] = '0';
  out[2] = '-';
  formatTraceId(trace_id, out + 3);
  out[35] = '-';
  formatSpanId(span_id, out + 36);
  out[52] = '-';
  out[53] = '0';
  out[54] = sampled ? '1' : '0';
}

TraceId TraceIds::newTraceId() {
  TraceId id;
  do {
    id.hi = random_.next();
    id.lo = random_.next();
  } while (!id.valid());
  return id;
}

SpanId TraceIds::newSpanId() {
  SpanId id;
  do {
    id = random_.next();
  } while (id == 0);
  return id;
}

TraceHop startHop(std::string_view incoming_traceparent, TraceIds& ids) {
  TraceHop hop;
  if (auto tp = parseTraceParent(incoming_traceparent)) {
    hop.trace_id = tp->trace_id;
    hop.parent_span_id = tp->parent_id;
    hop.sampled = tp->sampled();
    hop.continued = true;
  } else {
    hop.trace_id = ids.newTraceId();
  }
  hop.span_id = ids.newSpanId();
  return hop;
}

}  // namespace gw::observability
