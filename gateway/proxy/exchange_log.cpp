#include "gateway/proxy/exchange_log.h"

#include <algorithm>
#include <array>

#include "gateway/core/clock.h"
#include "gateway/http/headers.h"
#include "gateway/observability/access_log.h"
#include "gateway/observability/metrics.h"
#include "gateway/proxy/worker_context.h"

namespace gw::proxy {

namespace {

// llhttp's method number -> the metrics' method label, computed once.
int metricsMethod(llhttp_method_t method) {
  static const auto kTable = [] {
    std::array<uint8_t, 64> table;
    table.fill(static_cast<uint8_t>(observability::WorkerMetrics::methodIndex("OTHER")));
    // Only numbers llhttp defines: llhttp_method_name() aborts on any other.
#define GW_METHOD_ENTRY(number, name, text) \
  if ((number) < table.size())              \
    table[number] = static_cast<uint8_t>(observability::WorkerMetrics::methodIndex(#text));
    HTTP_ALL_METHOD_MAP(GW_METHOD_ENTRY)
#undef GW_METHOD_ENTRY
    return table;
  }();
  const auto index = static_cast<std::size_t>(method);
  return index < kTable.size() ? kTable[index] : observability::WorkerMetrics::methodIndex("OTHER");
}

}  // namespace

void ExchangeLog::begin(Generation& generation, const http::Parser& parser, const char* base,
                        bool headParsed, uint64_t queuedTotal) {
  open_ = true;
  generation_ = Generation::Hold(generation);
  WorkerContext& worker = generation.worker();
  startUs_ = worker.nowUs();
  startMonotonicUs_ = core::monotonicUs();
  queuedAtStart_ = queuedTotal;
  route_ = generation.unroutedIndex();
  if (headParsed || parser.methodKnown()) {
    method_ = metricsMethod(parser.method());
    methodName_ = llhttp_method_name(parser.method());
  } else {
    method_ = observability::WorkerMetrics::methodIndex("OTHER");
    methodName_ = {};
  }
  if (!worker.accessLog()) return;
  target_.clear();
  userAgent_.clear();
  loggedHeaders_.clear();
  if (!headParsed) return;
  target_.assign(parser.target(base));
  const auto& wanted = generation.config().access_log.log_headers;
  for (std::size_t i = 0; i < parser.fieldCount(); ++i) {
    const std::string_view name = parser.fieldName(base, i);
    if (http::iequals(name, "User-Agent")) userAgent_.assign(parser.fieldValue(base, i));
    for (const std::string& w : wanted) {
      if (http::iequals(name, w)) loggedHeaders_.emplace_back(name, parser.fieldValue(base, i));
    }
  }
}

void ExchangeLog::startTrace(std::string_view traceParent, observability::TraceIds& ids) {
  trace_ = observability::startHop(traceParent, ids);
  trace_->formatUpstream(traceParent_);
}

bool ExchangeLog::needsIdentity() const {
  WorkerContext& worker = generation_->worker();
  return worker.accessLog() || (trace_ && worker.spans());
}

void ExchangeLog::finish(int status, uint64_t requestBytes, uint64_t queuedTotal,
                         const Identity& who) {
  open_ = false;
  WorkerContext& worker = generation_->worker();
  const int64_t durationUs = std::max<int64_t>(core::monotonicUs() - startMonotonicUs_, 0);
  const uint64_t responseBytes = queuedTotal - queuedAtStart_;
  observability::RouteMetrics& metrics = generation_->metrics().routes[route_];
  metrics.countRequest(method_, status);
  metrics.duration.observe(static_cast<uint64_t>(durationUs));
  metrics.request_bytes += requestBytes;
  metrics.response_bytes += responseBytes;
  if (worker.accessLog()) writeAccessLine(status, requestBytes, responseBytes, durationUs, who);
  if (trace_ && worker.spans()) exportSpan(status, durationUs, who);
  // What only this exchange had: the next one (or a request refused before it is parsed) starts
  // without them.
  error_ = {};
  backend_ = nullptr;
  attempts_ = 0;
  upstreamUs_ = -1;
  trace_.reset();
  generation_ = {};  // an idle keep-alive connection must not keep a replaced generation alive
}

std::string_view ExchangeLog::upstreamName() const {
  const Generation& generation = *generation_;
  if (route_ == generation.unroutedIndex()) return {};
  return generation.metricsLayout().upstreams[generation.config().routes[route_].upstream].name;
}

void ExchangeLog::writeAccessLine(int status, uint64_t requestBytes, uint64_t responseBytes,
                                  int64_t durationUs, const Identity& who) {
  observability::AccessLogRecord r;
  r.time_us = startUs_;
  r.request_id = who.requestId;
  if (trace_) {
    // Both are already in the traceparent sent upstream: 00-<trace id>-<span id>-<flags>.
    const std::string_view traceParent = upstreamTraceParent();
    r.trace_id = traceParent.substr(3, observability::kTraceIdHexLen);
    r.span_id = traceParent.substr(4 + observability::kTraceIdHexLen, observability::kSpanIdHexLen);
  }
  r.client = who.clientIp;
  r.method = methodName_;
  const std::string_view target = target_;
  const std::size_t question = target.find('?');
  r.path = target.substr(0, question);
  if (question != std::string_view::npos) r.query = target.substr(question + 1);
  r.route = generation_->metricsLayout().routes[route_];
  r.upstream = upstreamName();
  if (backend_) r.backend = backend_->authority;
  r.status = status;
  r.bytes_in = requestBytes;
  r.bytes_out = responseBytes;
  r.duration_us = durationUs;
  r.upstream_duration_us = upstreamUs_;
  r.attempts = attempts_;
  r.error = error_;
  r.plugin_fields = who.pluginFields;
  r.user_agent = userAgent_;
  observability::AccessLogHeader headers[16];
  std::size_t headerCount = 0;
  for (const auto& [name, value] : loggedHeaders_) {
    if (headerCount == std::size(headers)) break;
    headers[headerCount++] = {name, value};
  }
  r.headers = {headers, headerCount};
  WorkerContext& worker = generation_->worker();
  observability::AccessLogBuffer& log = *worker.accessLog();
  const int64_t nowMs = worker.nowMs();
  log.append(r, *generation_->accessLogFormat(), nowMs);
  if (log.due(nowMs)) log.flush();
}

void ExchangeLog::exportSpan(int status, int64_t durationUs, const Identity& who) {
  const observability::TraceHop& hop = *trace_;
  observability::SpanRecord span;
  span.trace_id = hop.trace_id;
  span.span_id = hop.span_id;
  span.parent_span_id = hop.parent_span_id;
  span.method = methodName_.empty() ? "_OTHER" : methodName_;
  span.route = generation_->metricsLayout().routes[route_];
  span.name = span.method + " " + span.route;
  span.start_unix_nanos = static_cast<uint64_t>(startUs_) * 1000;
  span.end_unix_nanos = static_cast<uint64_t>(startUs_ + durationUs) * 1000;
  span.status_code = status;
  span.path = std::string_view(target_).substr(0, target_.find('?'));
  span.client_address = who.clientIp;
  span.upstream = upstreamName();
  if (backend_) span.server_address = backend_->authority;
  span.request_id = who.requestId;
  generation_->worker().spans()->add(std::move(span));
}

}  // namespace gw::proxy
