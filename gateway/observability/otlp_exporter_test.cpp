#include "gateway/observability/otlp_exporter.h"

#include <doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "test/support/otlp_collector.h"

namespace gw::observability {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Polls a condition another thread makes true, for at most timeout.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
  auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::string hex(const TraceId& id) {
  char buf[kTraceIdHexLen];
  formatTraceId(id, buf);
  return {buf, sizeof(buf)};
}

std::string hex(SpanId id) {
  char buf[kSpanIdHexLen];
  formatSpanId(id, buf);
  return {buf, sizeof(buf)};
}

SpanRecord makeSpan(TraceIds& ids, int i) {
  SpanRecord s;
  s.trace_id = ids.newTraceId();
  s.span_id = ids.newSpanId();
  s.parent_span_id = i % 2 == 0 ? ids.newSpanId() : 0;
  s.name = "GET api";
  s.start_unix_nanos = 1'700'000'000'000'000'000ULL + static_cast<uint64_t>(i) * 1000;
  s.end_unix_nanos = s.start_unix_nanos + 123'456;
  s.status_code = i % 3 == 0 ? 502 : 200;
  s.method = "GET";
  s.path = "/api/items/" + std::to_string(i) + "?\"quoted\"\n";
  s.route = "api";
  s.server_address = "gw.example.com";
  s.client_address = "127.0.0.1";
  s.upstream = "backend-pool";
  s.request_id = "req-" + std::to_string(i);
  return s;
}

OtlpExporterOptions optionsFor(const std::string& url) {
  auto endpoint = parseOtlpEndpoint(url);
  REQUIRE(endpoint.ok());
  OtlpExporterOptions o;
  o.endpoint = *endpoint;
  o.service_name = "gatewayd-test";
  return o;
}

}  // namespace

TEST_CASE("parseOtlpEndpoint") {
  auto e = parseOtlpEndpoint("http://127.0.0.1:4318/v1/traces");
  REQUIRE(e.ok());
  CHECK(e->host == "127.0.0.1");
  CHECK(e->port == 4318);
  CHECK(e->path == "/v1/traces");
  CHECK(e->host_header == "127.0.0.1:4318");

  e = parseOtlpEndpoint("http://[::1]:4318");
  REQUIRE(e.ok());
  CHECK(e->host == "::1");
  CHECK(e->path == "/v1/traces");
  CHECK(e->host_header == "[::1]:4318");

  e = parseOtlpEndpoint("http://collector.internal/otlp/v1/traces");
  REQUIRE(e.ok());
  CHECK(e->host == "collector.internal");
  CHECK(e->port == 80);
  CHECK(e->path == "/otlp/v1/traces");

  for (const char* bad : {"https://127.0.0.1:4318/v1/traces", "127.0.0.1:4318", "http://",
                          "http://:4318/", "http://host:0/", "http://host:65536/", "http://host:/",
                          "http://host:12a/", "http://[::1/", "http://[::1]x/", "http://::1:4318/",
                          "http://user@host/", "http://host/a b", "http://host/a\r\nX: y"}) {
    CAPTURE(bad);
    CHECK_FALSE(parseOtlpEndpoint(bad).ok());
  }
  CHECK(parseOtlpEndpoint("https://h/").error().message.find("https") != std::string::npos);
}

TEST_CASE("OTLP export: the collector receives exactly what was sent") {
  it::OtlpCollector collector;
  REQUIRE(collector.start());
  auto options = optionsFor(collector.endpoint());
  options.batch_size = 7;  // several POSTs, the last one partial
  options.flush_interval = 50ms;
  OtlpExporter exporter(options);
  exporter.start();

  constexpr int kSpans = 25;
  TraceIds ids(1234);
  std::vector<SpanRecord> sent;
  for (int i = 0; i < kSpans; ++i) {
    sent.push_back(makeSpan(ids, i));
    SpanRecord copy = sent.back();
    CHECK(exporter.enqueue(std::move(copy)));
  }
  auto got = collector.waitForSpans(kSpans, 5000ms);
  REQUIRE(got.size() == kSpans);
  CHECK(collector.requests() >= 4);
  CHECK(collector.problems().empty());
  CHECK(eventually([&] { return exporter.exported() == kSpans; }));
  CHECK(exporter.failed() == 0);
  CHECK(exporter.dropped() == 0);

  for (int i = 0; i < kSpans; ++i) {
    const SpanRecord& s = sent[static_cast<std::size_t>(i)];
    const it::CollectedSpan& c = got[static_cast<std::size_t>(i)];  // one sender: order kept
    CAPTURE(i);
    CHECK(c.service_name == "gatewayd-test");
    CHECK(c.scope_name == "gatewayd");
    CHECK(c.trace_id == hex(s.trace_id));
    CHECK(c.span_id == hex(s.span_id));
    CHECK(c.parent_span_id == (s.parent_span_id ? hex(s.parent_span_id) : ""));
    CHECK(c.name == s.name);
    CHECK(c.kind == 2);
    CHECK(c.start_unix_nanos == s.start_unix_nanos);
    CHECK(c.end_unix_nanos == s.end_unix_nanos);
    CHECK(c.status_code == (s.status_code >= 500 ? 2 : 0));
    CHECK(c.attributes.size() == 8);
    CHECK(c.attributes.at("http.request.method") == s.method);
    CHECK(c.attributes.at("url.path") == s.path);
    CHECK(c.attributes.at("http.route") == s.route);
    CHECK(c.attributes.at("http.response.status_code") == std::to_string(s.status_code));
    CHECK(c.attributes.at("server.address") == s.server_address);
    CHECK(c.attributes.at("client.address") == s.client_address);
    CHECK(c.attributes.at("gatewayd.upstream") == s.upstream);
    CHECK(c.attributes.at("gatewayd.request_id") == s.request_id);
  }
  exporter.stop();
}

TEST_CASE("OTLP export: SpanBatch hands spans over in batches and on flush") {
  it::OtlpCollector collector;
  REQUIRE(collector.start());
  auto options = optionsFor(collector.endpoint());
  options.flush_interval = 20ms;
  OtlpExporter exporter(options);
  exporter.start();
  TraceIds ids(99);
  SpanBatch batch(exporter, 4);
  for (int i = 0; i < 10; ++i) batch.add(makeSpan(ids, i));
  CHECK(batch.pending() == 2);  // 8 handed over in two batches
  CHECK(collector.waitForSpans(8, 5000ms).size() == 8);
  batch.flush();
  CHECK(batch.pending() == 0);
  CHECK(collector.waitForSpans(10, 5000ms).size() == 10);
  CHECK(eventually([&] { return exporter.exported() == 10; }));
}

TEST_CASE("OTLP export: stop() flushes what is queued") {
  it::OtlpCollector collector;
  REQUIRE(collector.start());
  auto options = optionsFor(collector.endpoint());
  options.flush_interval = 60s;  // only stop() can send the partial batch
  OtlpExporter exporter(options);
  exporter.start();
  TraceIds ids(5);
  for (int i = 0; i < 3; ++i) CHECK(exporter.enqueue(makeSpan(ids, i)));
  auto begin = Clock::now();
  exporter.stop();
  CHECK(Clock::now() - begin < 5s);
  CHECK(exporter.exported() == 3);
  CHECK(collector.spans().size() == 3);
  CHECK_FALSE(exporter.enqueue(makeSpan(ids, 3)));  // stopped
  CHECK(exporter.dropped() == 1);
}

TEST_CASE("OTLP export: queue full drops and counts exactly") {
  it::OtlpCollector collector;
  REQUIRE(collector.start());
  auto options = optionsFor(collector.endpoint());
  options.queue_capacity = 10;
  options.flush_interval = 20ms;
  OtlpExporter exporter(options);  // not started: nothing drains the queue yet
  TraceIds ids(8);
  int accepted = 0;
  for (int i = 0; i < 15; ++i) accepted += exporter.enqueue(makeSpan(ids, i)) ? 1 : 0;
  CHECK(accepted == 10);
  CHECK(exporter.dropped() == 5);
  std::vector<SpanRecord> more;
  for (int i = 0; i < 4; ++i) more.push_back(makeSpan(ids, i));
  CHECK(exporter.enqueueBatch(more) == 0);
  CHECK(more.empty());
  CHECK(exporter.dropped() == 9);

  exporter.start();
  CHECK(collector.waitForSpans(10, 5000ms).size() == 10);
  CHECK(eventually([&] { return exporter.exported() == 10; }));
  more.push_back(makeSpan(ids, 0));
  CHECK(exporter.enqueueBatch(more) == 1);  // room again
  CHECK(collector.waitForSpans(11, 5000ms).size() == 11);
  CHECK(exporter.dropped() == 9);
  CHECK(exporter.failed() == 0);
}

TEST_CASE("OTLP export: collector down, erroring or silent -> failed, bounded") {
  TraceIds ids(3);

  SUBCASE("nothing listens") {
    // A port that was just free: bind, read the port, close.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    ::close(fd);
    auto options =
        optionsFor("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/v1/traces");
    options.flush_interval = 10ms;
    OtlpExporter exporter(options);
    exporter.start();
    for (int i = 0; i < 5; ++i) exporter.enqueue(makeSpan(ids, i));
    CHECK(eventually([&] { return exporter.failed() == 5; }));
    CHECK(exporter.exported() == 0);
    auto begin = Clock::now();
    exporter.stop();
    CHECK(Clock::now() - begin < 2s);
  }

  SUBCASE("collector answers 503") {
    it::OtlpCollector collector;
    REQUIRE(collector.start());
    collector.setStatus(503);
    auto options = optionsFor(collector.endpoint());
    options.flush_interval = 10ms;
    OtlpExporter exporter(options);
    exporter.start();
    for (int i = 0; i < 4; ++i) exporter.enqueue(makeSpan(ids, i));
    CHECK(eventually([&] { return exporter.failed() == 4; }));
    CHECK(exporter.exported() == 0);
  }

  SUBCASE("collector never answers: the receive timeout fires") {
    it::OtlpCollector collector;
    REQUIRE(collector.start());
    collector.setSilent(true);
    auto options = optionsFor(collector.endpoint());
    options.flush_interval = 10ms;
    options.io_timeout = 200ms;
    options.stop_timeout = 300ms;
    options.batch_size = 2;
    OtlpExporter exporter(options);
    exporter.start();
    for (int i = 0; i < 3; ++i) exporter.enqueue(makeSpan(ids, i));
    CHECK(eventually([&] { return exporter.failed() == 3; }, 3000ms));
    // stop() with ten more POSTs queued gives up after stop_timeout instead of hanging.
    for (int i = 0; i < 20; ++i) exporter.enqueue(makeSpan(ids, i));
    auto begin = Clock::now();
    exporter.stop();
    CHECK(Clock::now() - begin < 2s);
    CHECK(exporter.dropped() > 0);
    CHECK(exporter.failed() + exporter.dropped() + exporter.exported() == 23);
  }
}

TEST_CASE("appendExportRequestJson: shape of an empty and a root span") {
  std::vector<SpanRecord> spans(1);
  spans[0].trace_id = {1, 2};
  spans[0].span_id = 3;
  spans[0].name = "GET route-1";
  spans[0].start_unix_nanos = 10;
  spans[0].end_unix_nanos = 20;
  std::string out;
  appendExportRequestJson(out, "svc", spans);
  CHECK(out ==
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"svc\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"gatewayd\"},\"spans\":"
        "[{\"traceId\":\"00000000000000010000000000000002\",\"spanId\":\"0000000000000003\","
        "\"name\":\"GET route-1\",\"kind\":2,\"startTimeUnixNano\":\"10\",\"endTimeUnixNano\":"
        "\"20\",\"attributes\":[],\"status\":{}}]}]}]}");
}

TEST_CASE("appendExportRequestJson: bytes that are not UTF-8 become U+FFFD") {
  std::vector<SpanRecord> spans(1);
  spans[0].path =
      "/a\xff"
      "b\xc3\xa9\xed\xa0\x80\xe2\x82";  // bad, é, surrogate, truncated
  std::string out;
  appendExportRequestJson(out, "svc", spans);
  CHECK(out.find("\"url.path\",\"value\":{\"stringValue\":"
                 "\"/a\\ufffdb\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"}") !=
        std::string::npos);
}

}  // namespace gw::observability
