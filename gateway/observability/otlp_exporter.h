#pragma once
// OTLP/HTTP JSON export of one span per request (https://opentelemetry.io/docs/specs/otlp/).
// Workers hand finished spans over with a short mutex hold (best in batches, see SpanBatch); a
// sender thread groups them into ExportTraceServiceRequest documents and POSTs them over a plain
// blocking socket with timeouts, so a slow or dead collector never reaches the event loops.
// Only http:// endpoints are supported.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gateway/core/error.h"
#include "gateway/observability/trace_context.h"

namespace gw::observability {

// One server span: the gateway's hop of a request.
struct SpanRecord {
  TraceId trace_id;
  SpanId span_id = 0;
  SpanId parent_span_id = 0;  // 0: the gateway started the trace
  std::string name;           // "GET api": method + route name (never the raw path)
  uint64_t start_unix_nanos = 0;
  uint64_t end_unix_nanos = 0;
  int status_code = 0;  // HTTP status; >= 500 marks the span as an error
  // Attributes, exported under their OpenTelemetry semantic-convention names; empty ones are
  // left out.
  std::string method;          // http.request.method
  std::string path;            // url.path (without the query: it may carry secrets)
  std::string route;           // http.route
  std::string server_address;  // server.address
  std::string client_address;  // client.address
  std::string upstream;        // gatewayd.upstream
  std::string request_id;      // gatewayd.request_id
};

struct OtlpEndpoint {
  std::string host;  // name or IP literal, without IPv6 brackets
  uint16_t port = 80;
  std::string path;         // "/v1/traces" when the URL has none
  std::string host_header;  // as written in the URL (with brackets and port), for Host:
};

// "http://host[:port][/path]"; host an IPv4 literal, [IPv6] literal or a name (resolved later, on
// the sender thread). Meant for the config loader too, so bad URLs fail at load time.
core::Result<OtlpEndpoint> parseOtlpEndpoint(std::string_view url);

struct OtlpExporterOptions {
  OtlpEndpoint endpoint;
  std::string service_name = "gatewayd";
  std::size_t batch_size = 512;                    // spans per POST
  std::chrono::milliseconds flush_interval{1000};  // a partial batch waits at most this long
  std::size_t queue_capacity = 8192;  // spans queued or being sent; beyond it they are dropped
  std::chrono::milliseconds io_timeout{2000};    // connect, each send and each receive
  std::chrono::milliseconds stop_timeout{5000};  // stop() gives up flushing after this
};

// Appends one ExportTraceServiceRequest JSON document holding spans to out (exposed for tests).
void appendExportRequestJson(std::string& out, std::string_view service_name,
                             const std::vector<SpanRecord>& spans);

class OtlpExporter {
 public:
  explicit OtlpExporter(OtlpExporterOptions options);
  ~OtlpExporter();  // stop()
  OtlpExporter(const OtlpExporter&) = delete;
  OtlpExporter& operator=(const OtlpExporter&) = delete;

  // Starts the sender thread. Spans enqueued before wait in the queue.
  void start();
  // Sends what is queued (bounded by stop_timeout; the rest counts as dropped) and joins.
  // Idempotent.
  void stop();

  // Any thread. Never blocks beyond a short mutex hold; false (and dropped+1) when the queue is
  // full or the exporter is stopped.
  bool enqueue(SpanRecord&& span);
  // Any thread: moves all of spans under one lock, drops (and counts) what does not fit, and
  // leaves spans empty with its capacity kept for reuse. Returns how many were accepted.
  std::size_t enqueueBatch(std::vector<SpanRecord>& spans);

  uint64_t exported() const { return exported_.load(std::memory_order_relaxed); }
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void run();
  // One POST of batch; true on a 2xx answer.
  bool post(const std::vector<SpanRecord>& batch);

  const OtlpExporterOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<SpanRecord> queue_;  // guarded by mutex_
  std::size_t sending_ = 0;        // guarded by mutex_: taken by the sender, counts towards the cap
  bool stopping_ = false;          // guarded by mutex_
  bool started_ = false;           // touched by the owning thread only
  std::thread sender_;
  std::string body_;     // sender thread only: reused request body
  std::string request_;  // sender thread only: reused request head
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> dropped_{0};
};

// Per-worker front of an exporter: collects spans without any lock and hands them over every
// `every` spans, so the request path pays one lock per batch instead of one per request. The
// owner calls flush() from a periodic worker timer (e.g. every 100 ms) and before the worker
// exits, so a quiet worker's spans still leave. Not thread-safe (one worker).
class SpanBatch {
 public:
  SpanBatch(OtlpExporter& exporter, std::size_t every = 64);
  void add(SpanRecord&& span);
  void flush();
  std::size_t pending() const { return spans_.size(); }

 private:
  OtlpExporter& exporter_;
  std::size_t every_;
  std::vector<SpanRecord> spans_;
};

}  // namespace gw::observability
