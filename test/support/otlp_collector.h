#pragma once
// A stand-in OpenTelemetry collector for the tests: an HTTP/1.1 server on 127.0.0.1 port 0, in its
// own thread, that takes OTLP/HTTP JSON POSTs to /v1/traces, records the spans they carry and
// answers 200 {} (or a status / silence the test asks for). Every wait is bounded.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gw::it {

struct CollectedSpan {
  std::string service_name;  // resource attribute service.name
  std::string scope_name;
  std::string trace_id;
  std::string span_id;
  std::string parent_span_id;  // empty for a root span
  std::string name;
  int kind = 0;
  uint64_t start_unix_nanos = 0;
  uint64_t end_unix_nanos = 0;
  int status_code = 0;  // OTLP status code: 0 unset, 1 ok, 2 error
  // stringValue as is; intValue (string or number on the wire) in decimal.
  std::map<std::string, std::string> attributes;
};

class OtlpCollector {
 public:
  OtlpCollector() = default;
  ~OtlpCollector();  // stop()
  OtlpCollector(const OtlpCollector&) = delete;
  OtlpCollector& operator=(const OtlpCollector&) = delete;

  // Binds 127.0.0.1:0 and starts serving; false if the socket could not be set up.
  bool start();
  void stop();
  uint16_t port() const { return port_; }
  std::string endpoint() const;  // "http://127.0.0.1:<port>/v1/traces"

  // Waits until at least n spans arrived or timeout passed; returns every span received so far
  // (fewer than n on timeout), in arrival order.
  std::vector<CollectedSpan> waitForSpans(std::size_t n, std::chrono::milliseconds timeout);
  std::vector<CollectedSpan> spans() const;
  std::size_t requests() const;  // POSTs to /v1/traces, parsed or not
  // What the collector found wrong with requests (bad JSON, wrong Content-Type, ...).
  std::vector<std::string> problems() const;

  // Status for later answers (default 200).
  void setStatus(int status);
  // true: read requests (spans are still recorded) but never answer them.
  void setSilent(bool silent);

 private:
  struct Conn;
  void run();
  // Parses one complete request in c.in; false when more bytes are needed.
  bool handleRequest(Conn& c);
  void record(const std::string& body);

  int listen_fd_ = -1;
  int wake_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;

  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<CollectedSpan> spans_;   // guarded by mutex_
  std::vector<std::string> problems_;  // guarded by mutex_
  std::size_t requests_ = 0;           // guarded by mutex_
  int status_ = 200;                   // guarded by mutex_
  bool silent_ = false;                // guarded by mutex_
};

}  // namespace gw::it
