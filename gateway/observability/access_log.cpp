#include "gateway/observability/access_log.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <limits>

namespace gw::observability {

namespace {

using Field = AccessLogFormat::Field;

constexpr std::array<std::string_view, AccessLogFormat::kFieldCount> kFieldNames = {
    "time",     "request_id", "trace_id",  "span_id",     "client",
    "method",   "path",       "route",     "upstream",    "backend",
    "status",   "bytes_in",   "bytes_out", "duration_ms", "upstream_duration_ms",
    "attempts", "",           "error",     "user_agent",  "headers",
};

constexpr std::string_view kMask = "***";

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view lowerB) {
  if (a.size() != lowerB.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lowerB[i]) return false;
  }
  return true;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes on the fly so "api%5Fkey" and "API_KEY" both match "api_key" without a scratch buffer.
bool decodedEqualsIgnoreCase(std::string_view encoded, std::string_view lowerTarget) {
  std::size_t j = 0;
  for (std::size_t i = 0; i < encoded.size(); ++i, ++j) {
    char c = encoded[i];
    if (c == '%' && i + 2 < encoded.size() && hexValue(encoded[i + 1]) >= 0 &&
        hexValue(encoded[i + 2]) >= 0) {
      c = static_cast<char>(hexValue(encoded[i + 1]) * 16 + hexValue(encoded[i + 2]));
      i += 2;
    } else if (c == '+') {
      c = ' ';
    }
    if (j >= lowerTarget.size() || lower(c) != lowerTarget[j]) return false;
  }
  return j == lowerTarget.size();
}

// Length of the well-formed UTF-8 sequence starting at s[0] (Unicode table 3-7: no overlongs,
// no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8SequenceLength(std::string_view s) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xbf) {
    return i < s.size() && byte(i) >= lo && byte(i) <= hi;
  };
  unsigned char b = byte(0);
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b == 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b == 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b >= 0xf1 && b <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// Printable ASCII other than '"' and '\\': copied as is. A table keeps the common byte to one load.
constexpr std::array<bool, 256> kVerbatim = [] {
  std::array<bool, 256> table{};
  for (int b = 0x20; b < 0x7f; ++b) table[b] = b != '"' && b != '\\';
  return table;
}();

// JSON string contents (no quotes). Unlike core::appendJsonEscaped this validates UTF-8: request
// data is attacker-controlled and one bad byte must not make the whole line unparseable.
void appendEscaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t run = 0;  // start of the pending run of bytes copied verbatim
  std::size_t i = 0;
  auto flushRun = [&] { out.append(text.data() + run, i - run); };
  while (i < text.size()) {
    auto b = static_cast<unsigned char>(text[i]);
    if (kVerbatim[b]) {
      ++i;
      continue;
    }
    if (b >= 0x80) {
      std::size_t n = utf8SequenceLength(text.substr(i));
      if (n != 0) {
        i += n;
        continue;
      }
    }
    flushRun();
    switch (b) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (b >= 0x80) {
          out.append("\\ufffd");
        } else {
          const char esc[6] = {'\\', 'u', '0', '0', kHex[b >> 4], kHex[b & 0xf]};
          out.append(esc, sizeof esc);
        }
    }
    run = ++i;
  }
  flushRun();
}

void appendString(std::string& out, std::string_view text) {
  out.push_back('"');
  appendEscaped(out, text);
  out.push_back('"');
}

void appendStringOrNull(std::string& out, std::string_view text) {
  if (text.empty()) {
    out.append("null");
  } else {
    appendString(out, text);
  }
}

// For the values the engine makes itself (see AccessLogRecord): no byte of them needs escaping,
// and skipping the scan is a good part of the line's cost.
void appendTrustedOrNull(std::string& out, std::string_view text) {
  if (text.empty()) {
    out.append("null");
    return;
  }
  out.push_back('"');
  out.append(text);
  out.push_back('"');
}

template <typename Int>
void appendInt(std::string& out, Int value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

// Microseconds as milliseconds with exactly three decimals.
void appendMillis(std::string& out, int64_t us) {
  us = std::max<int64_t>(us, 0);
  appendInt(out, us / 1000);
  const int frac = static_cast<int>(us % 1000);
  const char digits[4] = {'.', static_cast<char>('0' + frac / 100),
                          static_cast<char>('0' + frac / 10 % 10),
                          static_cast<char>('0' + frac % 10)};
  out.append(digits, sizeof digits);
}

void append2(char* at, int value) {
  at[0] = static_cast<char>('0' + value / 10 % 10);
  at[1] = static_cast<char>('0' + value % 10);
}

// RFC 3339 UTC with milliseconds. The "YYYY-MM-DDTHH:MM:SS" part changes once a second, so each
// thread keeps the last one; std::chrono's calendar is plain arithmetic (gmtime_r may lock).
void appendTime(std::string& out, int64_t unixUs) {
  struct Cached {
    int64_t second = std::numeric_limits<int64_t>::min();
    char text[19];
  };
  thread_local Cached cache;
  unixUs = std::max<int64_t>(unixUs, 0);
  const int64_t second = unixUs / 1'000'000;
  if (second != cache.second) {
    using namespace std::chrono;
    const sys_seconds t{seconds{second}};
    const sys_days day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss hms{t - day};
    const int y = static_cast<int>(ymd.year());
    char* p = cache.text;
    append2(p, y / 100);
    append2(p + 2, y % 100);
    p[4] = '-';
    append2(p + 5, static_cast<int>(static_cast<unsigned>(ymd.month())));
    p[7] = '-';
    append2(p + 8, static_cast<int>(static_cast<unsigned>(ymd.day())));
    p[10] = 'T';
    append2(p + 11, static_cast<int>(hms.hours().count()));
    p[13] = ':';
    append2(p + 14, static_cast<int>(hms.minutes().count()));
    p[16] = ':';
    append2(p + 17, static_cast<int>(hms.seconds().count()));
    cache.second = second;
  }
  const int ms = static_cast<int>(unixUs / 1000 % 1000);
  const char tail[6] = {'.',
                        static_cast<char>('0' + ms / 100),
                        static_cast<char>('0' + ms / 10 % 10),
                        static_cast<char>('0' + ms % 10),
                        'Z',
                        '"'};
  out.push_back('"');
  out.append(cache.text, sizeof cache.text);
  out.append(tail, sizeof tail);
}

// path?query with the value of every masked parameter replaced; parts keep their order and raw
// spelling. ';' separates too: some backends split on it, and masking more is the safe mistake.
void appendPath(std::string& out, const AccessLogRecord& record, const AccessLogFormat& format) {
  out.push_back('"');
  appendEscaped(out, record.path);
  if (!record.query.empty()) {
    out.push_back('?');
    std::string_view rest = record.query;
    for (;;) {
      const std::size_t amp = rest.find_first_of("&;");
      const std::string_view part = rest.substr(0, amp);
      const std::size_t eq = part.find('=');
      if (eq != std::string_view::npos && format.queryParamMasked(part.substr(0, eq))) {
        appendEscaped(out, part.substr(0, eq + 1));
        out.append(kMask);
      } else {
        appendEscaped(out, part);
      }
      if (amp == std::string_view::npos) break;
      out.push_back(rest[amp]);
      rest.remove_prefix(amp + 1);
    }
  }
  out.push_back('"');
}

void appendHeaders(std::string& out, const AccessLogRecord& record, const AccessLogFormat& format) {
  out.push_back('{');
  bool first = true;
  for (const AccessLogHeader& header : record.headers) {
    if (!first) out.push_back(',');
    first = false;
    appendString(out, header.name);
    out.push_back(':');
    appendString(out, format.headerMasked(header.name) ? kMask : header.value);
  }
  out.push_back('}');
}

void appendField(std::string& out, Field field, const AccessLogRecord& r,
                 const AccessLogFormat& format) {
  switch (field) {
    case Field::Time:
      appendTime(out, r.time_us);
      break;
    case Field::RequestId:
      appendStringOrNull(out, r.request_id);
      break;
    case Field::TraceId:
      appendTrustedOrNull(out, r.trace_id);
      break;
    case Field::SpanId:
      appendTrustedOrNull(out, r.span_id);
      break;
    case Field::Client:
      appendTrustedOrNull(out, r.client);
      break;
    case Field::Method:
      appendTrustedOrNull(out, r.method);
      break;
    case Field::Path:
      appendPath(out, r, format);
      break;
    case Field::Route:
      appendTrustedOrNull(out, r.route);
      break;
    case Field::Upstream:
      appendTrustedOrNull(out, r.upstream);
      break;
    case Field::Backend:
      appendTrustedOrNull(out, r.backend);
      break;
    case Field::Status:
      appendInt(out, r.status);
      break;
    case Field::BytesIn:
      appendInt(out, r.bytes_in);
      break;
    case Field::BytesOut:
      appendInt(out, r.bytes_out);
      break;
    case Field::DurationMs:
      appendMillis(out, r.duration_us);
      break;
    case Field::UpstreamDurationMs:
      if (r.upstream_duration_us < 0) {
        out.append("null");
      } else {
        appendMillis(out, r.upstream_duration_us);
      }
      break;
    case Field::Attempts:
      if (r.attempts == 0) {
        out.append("null");
      } else {
        appendInt(out, r.attempts);
      }
      break;
    case Field::Plugins:
      break;  // appendAccessLine() writes each plugin field by its slot
    case Field::Error:
      appendTrustedOrNull(out, r.error);
      break;
    case Field::UserAgent:
      appendStringOrNull(out, r.user_agent);
      break;
    case Field::Headers:
      appendHeaders(out, r, format);
      break;
  }
}

}  // namespace

std::optional<Field> AccessLogFormat::fieldByName(std::string_view name) {
  for (std::size_t i = 0; i < kFieldNames.size(); ++i) {
    if (kFieldNames[i] == name && static_cast<Field>(i) != Field::Plugins) {
      return static_cast<Field>(i);
    }
  }
  return std::nullopt;
}

std::string_view AccessLogFormat::fieldName(Field field) {
  return kFieldNames[static_cast<std::size_t>(field)];
}

AccessLogFormat::AccessLogFormat(std::span<const std::string_view> pluginFields)
    : pluginFields_(pluginFields.begin(), pluginFields.end()),
      pluginOn_(pluginFields.size(), true),
      maskedHeaders_{"authorization", "proxy-authorization", "cookie", "set-cookie"},
      maskedQueryParams_{"api_key", "token", "password", "access_token", "secret"} {
  fields_.set();
  planKeys();
}

void AccessLogFormat::setFields(std::span<const std::string> names) {
  fields_.reset();
  pluginOn_.assign(pluginFields_.size(), false);
  for (const std::string& name : names) {
    if (const auto field = fieldByName(name)) fields_.set(static_cast<std::size_t>(*field));
    for (std::size_t slot = 0; slot < pluginFields_.size(); ++slot) {
      if (pluginFields_[slot] == name) pluginOn_[slot] = true;
    }
  }
  planKeys();
}

bool AccessLogFormat::has(std::string_view name) const {
  if (const auto field = fieldByName(name)) return fields_.test(static_cast<std::size_t>(*field));
  for (std::size_t slot = 0; slot < pluginFields_.size(); ++slot) {
    if (pluginFields_[slot] == name) return pluginOn_[slot];
  }
  return false;
}

void AccessLogFormat::planKeys() {
  keys_.clear();
  const auto addKey = [&](Field field, std::size_t slot, std::string_view name) {
    std::string key = keys_.empty() ? "{\"" : ",\"";
    key += name;
    key += "\":";
    keys_.push_back({field, static_cast<uint8_t>(slot), std::move(key)});
  };
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    const auto field = static_cast<Field>(i);
    if (field == Field::Plugins) {
      for (std::size_t slot = 0; slot < pluginFields_.size(); ++slot) {
        if (pluginOn_[slot]) addKey(field, slot, pluginFields_[slot]);
      }
    } else if (fields_.test(i)) {
      addKey(field, 0, kFieldNames[i]);
    }
  }
}

void AccessLogFormat::addMaskedHeader(std::string_view name) {
  if (!headerMasked(name)) maskedHeaders_.push_back(lowered(name));
}

void AccessLogFormat::setMaskedQueryParams(std::span<const std::string> names) {
  maskedQueryParams_.clear();
  for (const std::string& name : names) maskedQueryParams_.push_back(lowered(name));
}

bool AccessLogFormat::headerMasked(std::string_view name) const {
  return std::any_of(maskedHeaders_.begin(), maskedHeaders_.end(),
                     [&](const std::string& m) { return equalsIgnoreCase(name, m); });
}

bool AccessLogFormat::queryParamMasked(std::string_view encodedName) const {
  return std::any_of(maskedQueryParams_.begin(), maskedQueryParams_.end(),
                     [&](const std::string& m) { return decodedEqualsIgnoreCase(encodedName, m); });
}

void appendAccessLine(const AccessLogRecord& record, const AccessLogFormat& format,
                      std::string& out) {
  if (format.keys().empty()) out.push_back('{');
  for (const AccessLogFormat::Key& key : format.keys()) {
    out.append(key.text);
    if (key.field != Field::Plugins) {
      appendField(out, key.field, record, format);
    } else {
      appendTrustedOrNull(out, key.slot < record.plugin_fields.size()
                                   ? record.plugin_fields[key.slot]
                                   : std::string_view());
    }
  }
  out.append("}\n");
}

AccessLogBuffer::AccessLogBuffer(LogSink& sink) : sink_(sink) {
  buffer_.reserve(kFlushBytes + kFlushBytes / 4);
}

AccessLogBuffer::~AccessLogBuffer() { flush(); }

void AccessLogBuffer::append(const AccessLogRecord& record, const AccessLogFormat& format,
                             int64_t nowMs) {
  if (lines_ == 0) oldestMs_ = nowMs;
  appendAccessLine(record, format, buffer_);
  ++lines_;
}

void AccessLogBuffer::flush() {
  if (lines_ == 0) return;
  // A rejected batch stays in buffer_ (the sink counted its lines as dropped).
  if (sink_.submit(std::move(buffer_), lines_)) buffer_ = sink_.takeSpare();
  buffer_.clear();
  lines_ = 0;
  if (buffer_.capacity() < kFlushBytes) buffer_.reserve(kFlushBytes + kFlushBytes / 4);
}

}  // namespace gw::observability
