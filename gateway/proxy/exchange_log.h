#pragma once
// The log phase of one exchange on a client connection: what the metrics, the access log line
// and the trace span say of it. Begun when the request head is complete (or when a request is
// refused before that), given what the exchange learns on its way (route, backend, error), and
// finished exactly once with the status the client got.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/http/parser.h"
#include "gateway/observability/trace_context.h"
#include "gateway/proxy/generation.h"
#include "gateway/upstream/cluster.h"

namespace gw::proxy {

class ExchangeLog {
 public:
  // Who and what the finished exchange was, as only the connection knows it.
  struct Identity {
    std::string_view requestId;
    std::string_view clientIp;
    std::span<const std::string_view> pluginFields;  // by slot; empty when no plugin ran
  };

  bool open() const { return open_; }
  // `headParsed`: the request head is complete, so its method, target and fields can be read
  // from `base` (the buffer the parser's views point into). `queuedTotal`: the client output
  // queue's total so far, so the response's bytes are told apart from earlier ones.
  // The exchange is counted and logged on `generation`, held until finish().
  void begin(Generation& generation, const http::Parser& parser, const char* base, bool headParsed,
             uint64_t queuedTotal);
  // What begin() was given (valid while open()).
  Generation& generation() const { return *generation_; }
  // The gateway's hop of the W3C trace, continuing the client's `traceParent` if it sent one.
  void startTrace(std::string_view traceParent, observability::TraceIds& ids);
  bool traced() const { return trace_.has_value(); }
  bool traceContinued() const { return trace_ && trace_->continued; }
  // The traceparent sent upstream ("" when tracing is off).
  std::string_view upstreamTraceParent() const {
    return trace_ ? std::string_view(traceParent_, sizeof traceParent_) : std::string_view();
  }

  void setRoute(std::size_t routeIndex) { route_ = routeIndex; }
  void setError(std::string_view wireCode) { error_ = wireCode; }
  // The backend of the last try, and how many tries the request took.
  void setBackend(const upstream::Backend* backend, uint32_t attempts) {
    backend_ = backend;
    attempts_ = attempts;
  }
  void setUpstreamMicros(int64_t us) { upstreamUs_ = us; }
  std::string_view methodName() const { return methodName_; }

  // Whether finish() will write a line or a span, the only places that name the request.
  bool needsIdentity() const;
  // Counts the exchange in the route's metrics, writes its access log line and exports its span
  // (each when on), then forgets what only this exchange had.
  void finish(int status, uint64_t requestBytes, uint64_t queuedTotal, const Identity& who);

 private:
  void writeAccessLine(int status, uint64_t requestBytes, uint64_t responseBytes,
                       int64_t durationUs, const Identity& who);
  void exportSpan(int status, int64_t durationUs, const Identity& who);
  std::string_view upstreamName() const;  // "" when no route took it

  Generation::Hold generation_;
  int64_t startUs_ = 0;           // wall clock (loop-cached): the log's time, the span's start
  int64_t startMonotonicUs_ = 0;  // core::monotonicUs(): durations
  uint64_t queuedAtStart_ = 0;
  std::size_t route_ = 0;        // metrics index: the route, or the unrouted slot
  int method_ = 0;               // observability method index
  std::string_view methodName_;  // "" when the request was refused before its method was read
  bool open_ = false;
  // For the access log only (copied when it is on; the strings keep their capacity).
  std::string target_;  // as received: path?query
  std::string userAgent_;
  std::vector<std::pair<std::string, std::string>> loggedHeaders_;
  std::string_view error_;  // wire code of the gateway's own error answer
  const upstream::Backend* backend_ = nullptr;
  uint32_t attempts_ = 0;
  int64_t upstreamUs_ = -1;
  std::optional<observability::TraceHop> trace_;
  char traceParent_[observability::kTraceParentLen] = {};
};

}  // namespace gw::proxy
