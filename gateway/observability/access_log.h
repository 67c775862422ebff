#pragma once
// The JSON access log line: one object per exchange, keys in a fixed order, secrets masked before
// they reach the output. Formatting is pure (no locks, no syscalls) and allocation-free when the
// output string already has capacity, so a worker can run it for every request.

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/observability/log_sink.h"

namespace gw::observability {

struct AccessLogHeader {
  std::string_view name;
  std::string_view value;
};

// Filled by the engine when an exchange ends; borrows everything, owns nothing. Empty strings
// (and upstream_duration_us < 0) mean "not applicable" and are logged as null. Values from the
// client (request_id, path, query, user_agent, headers) are escaped; the others are the engine's
// own making (hex ids, IP literals, method tokens, configured names and authorities, static
// codes), never need escaping, and are written as they are.
struct AccessLogRecord {
  int64_t time_us = 0;  // unix time, microseconds
  std::string_view request_id;
  std::string_view trace_id;
  std::string_view span_id;
  std::string_view client;  // peer address, "ip:port"
  std::string_view method;
  std::string_view path;   // without the query
  std::string_view query;  // raw, without '?'; masked on output
  std::string_view route;
  std::string_view upstream;
  std::string_view backend;  // "host:port" or empty
  int status = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  int64_t duration_us = 0;
  int64_t upstream_duration_us = -1;  // -1: no upstream was involved
  uint32_t attempts = 0;              // tries toward the upstream; 0: none was made
  // The plugins' fields, by slot (AccessLogFormat's plugin fields): static strings, set by the
  // plugins' own code; empty (or missing) is null.
  std::span<const std::string_view> plugin_fields;
  std::string_view error;             // wire error code, e.g. "UPSTREAM_TIMEOUT"
  std::string_view user_agent;
  std::span<const AccessLogHeader> headers;  // the request headers the operator asked to log
};

// Built once from config; immutable afterwards and shared by all workers.
class AccessLogFormat {
 public:
  // Declaration order is the key order of the line; names are the JSON keys.
  enum class Field : uint8_t {
    Time,
    RequestId,
    TraceId,
    SpanId,
    Client,
    Method,
    Path,
    Route,
    Upstream,
    Backend,
    Status,
    BytesIn,
    BytesOut,
    DurationMs,
    UpstreamDurationMs,
    Attempts,
    Plugins,  // not a key itself: where the plugins' fields go, in their order
    Error,
    UserAgent,
    Headers,
  };
  static constexpr std::size_t kFieldCount = static_cast<std::size_t>(Field::Headers) + 1;

  // For the config loader: a configured field name -> one of the core's Fields, nullopt if
  // unknown (plugins' field names are the registry's).
  static std::optional<Field> fieldByName(std::string_view name);
  static std::string_view fieldName(Field field);

  // All fields on, the plugins' (names, by slot; static strings) included; masked headers:
  // authorization, proxy-authorization, cookie, set-cookie; masked query parameters: api_key,
  // token, password, access_token, secret.
  explicit AccessLogFormat(std::span<const std::string_view> pluginFields = {});

  // Exactly these (the core's or the plugins' field names), in the fixed order; names neither
  // knows were refused at load and are ignored here.
  void setFields(std::span<const std::string> names);
  bool has(std::string_view name) const;

  // Adds to the always-masked set; names compare case-insensitively.
  void addMaskedHeader(std::string_view name);
  // Replaces the default masked query parameter names; names compare case-insensitively after
  // percent-decoding the parameter name in the request.
  void setMaskedQueryParams(std::span<const std::string> names);

  bool headerMasked(std::string_view name) const;
  // The fields on, in order, each with its key text ready to copy: `{"time":`, `,"status":`.
  struct Key {
    Field field;
    uint8_t slot;  // Field::Plugins: which plugin field
    std::string text;
  };
  const std::vector<Key>& keys() const { return keys_; }
  bool queryParamMasked(std::string_view encodedName) const;

 private:
  void planKeys();

  std::bitset<kFieldCount> fields_;
  std::vector<std::string_view> pluginFields_;
  std::vector<bool> pluginOn_;
  std::vector<Key> keys_;
  std::vector<std::string> maskedHeaders_;      // lower-case
  std::vector<std::string> maskedQueryParams_;  // lower-case
};

// Appends one JSON object and '\n' to out. Invalid UTF-8 bytes become U+FFFD so the line always
// parses. Allocates only when out runs out of capacity.
void appendAccessLine(const AccessLogRecord& record, const AccessLogFormat& format,
                      std::string& out);

// A worker's pending access lines, handed to the shared sink in batches so the per-request cost
// is formatting only: no lock, no syscall. Owned and used by one worker thread; the sink must
// outlive it. The engine calls `if (buffer.due(now)) buffer.flush()` after each append and from
// a periodic timer, and flush() when the worker stops.
class AccessLogBuffer {
 public:
  static constexpr std::size_t kFlushBytes = 64 * 1024;
  static constexpr int64_t kMaxAgeMs = 200;

  explicit AccessLogBuffer(LogSink& sink);
  ~AccessLogBuffer();  // flushes
  AccessLogBuffer(const AccessLogBuffer&) = delete;
  AccessLogBuffer& operator=(const AccessLogBuffer&) = delete;

  // nowMs: any monotonic millisecond clock, the same one passed to due().
  void append(const AccessLogRecord& record, const AccessLogFormat& format, int64_t nowMs);
  // kFlushBytes pending, or the oldest pending line is kMaxAgeMs old.
  bool due(int64_t nowMs) const {
    return lines_ != 0 && (buffer_.size() >= kFlushBytes || nowMs - oldestMs_ >= kMaxAgeMs);
  }
  // Hands the pending lines to the sink (dropped and counted there if its queue is full) and
  // continues in a recycled string.
  void flush();
  std::size_t pendingLines() const { return lines_; }

 private:
  LogSink& sink_;
  std::string buffer_;
  std::size_t lines_ = 0;
  int64_t oldestMs_ = 0;
};

}  // namespace gw::observability
