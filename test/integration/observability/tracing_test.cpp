// W3C trace context through the real gatewayd: an incoming trace is continued with a new span for
// the gateway's hop, a missing or invalid one is started afresh, the hop is in the access log, and
// one span per request reaches an OTLP/HTTP collector.
#include <doctest.h>

#include <rapidjson/document.h>

#include <string>

#include "test/support/harness.h"
#include "test/support/otlp_collector.h"

using namespace gw::it;

namespace {

constexpr const char* kIncomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kIncomingParent = "00f067aa0ba902b7";

std::string config(const Backend& b, const std::string& tracing, const std::string& logPath) {
  return subst(R"yaml(workers: 1
access_log: {path: ${LOG}}
tracing: ${TRACING}
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends: [${B}]
routes:
  - name: api
    upstream: main
)yaml",
               {{"B", b.address()}, {"TRACING", tracing}, {"LOG", logPath}});
}

Echo echoOf(Gateway& gw, const std::string& headers) {
  Response r = Client(gw.port()).roundTrip(get("/items", headers));
  REQUIRE_MESSAGE(r.complete, r.error);
  REQUIRE(r.status == 200);
  Echo echo = parseEcho(r.body);
  REQUIRE(echo.valid);
  return echo;
}

bool isLowerHex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

TEST_CASE("tracing: continued, started and exported") {
  Backend b;
  OtlpCollector collector;
  REQUIRE(collector.start());
  TempDir dir;
  const std::string logPath = dir.path() + "/access.log";
  Gateway gw(config(b, "{otlp: {endpoint: '" + collector.endpoint() + "', flush_interval: 100ms}}",
                    logPath));

  // A valid incoming trace: same trace id, our span as the parent, tracestate kept.
  const std::string incoming =
      std::string("00-") + kIncomingTrace + "-" + kIncomingParent + "-01";
  Echo continued = echoOf(gw, "traceparent: " + incoming + "\r\ntracestate: vendor=abc\r\n");
  REQUIRE(continued.headerCount("traceparent") == 1);
  const std::string sent = *continued.header("traceparent");
  REQUIRE(sent.size() == 55);
  CHECK(sent.substr(0, 36) == std::string("00-") + kIncomingTrace + "-");
  const std::string ourSpan = sent.substr(36, 16);
  CHECK(ourSpan != kIncomingParent);
  CHECK(isLowerHex(ourSpan));
  CHECK(sent.substr(52) == "-01");
  CHECK(continued.header("tracestate") == "vendor=abc");

  // None: a new trace, sampled.
  Echo started = echoOf(gw, "");
  const std::string fresh = started.header("traceparent").value_or("");
  REQUIRE(fresh.size() == 55);
  CHECK(fresh.substr(0, 3) == "00-");
  CHECK(isLowerHex(fresh.substr(3, 32)));
  CHECK(fresh.substr(3, 32) != kIncomingTrace);
  CHECK(fresh.substr(52) == "-01");

  // Invalid (upper-case hex): replaced, and its tracestate dropped with it.
  Echo replaced = echoOf(gw, "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"
                             "\r\ntracestate: vendor=abc\r\n");
  const std::string renewed = replaced.header("traceparent").value_or("");
  CHECK(renewed.size() == 55);
  CHECK(renewed.find("4BF92F") == std::string::npos);
  CHECK_FALSE(replaced.header("tracestate"));

  // The access log names the gateway's hop.
  std::string firstLine;
  REQUIRE(waitFor([&] {
    const std::string text = readFile(logPath);
    firstLine = text.substr(0, text.find('\n'));
    return !firstLine.empty();
  }, 5000ms));
  rapidjson::Document line;
  REQUIRE_FALSE(line.Parse(firstLine.c_str()).HasParseError());
  CHECK(std::string(line["trace_id"].GetString()) == kIncomingTrace);
  CHECK(std::string(line["span_id"].GetString()) == ourSpan);

  // One span per request reaches the collector.
  const auto spans = collector.waitForSpans(3, 10000ms);
  REQUIRE(spans.size() == 3);
  const CollectedSpan& span = spans[0];
  CHECK(span.trace_id == kIncomingTrace);
  CHECK(span.span_id == ourSpan);
  CHECK(span.parent_span_id == kIncomingParent);
  CHECK(span.name == "GET api");
  CHECK(span.kind == 2);  // SPAN_KIND_SERVER
  CHECK(span.service_name == "gatewayd");
  CHECK(span.start_unix_nanos <= span.end_unix_nanos);
  CHECK(span.attributes.at("http.route") == "api");
  CHECK(span.attributes.at("http.response.status_code") == "200");
  CHECK(span.attributes.at("url.path") == "/items");
  CHECK(span.attributes.at("gatewayd.upstream") == "main");
  CHECK(span.attributes.at("server.address") == b.address());
  CHECK(spans[1].parent_span_id.empty());  // the gateway started that trace
  CHECK(spans[1].trace_id == fresh.substr(3, 32));
  CHECK(collector.problems().empty());

  // A request refused before its trace is read (here: a bad Connection header) carries no
  // trace in the log, not the one of the request before it on the same connection.
  Client reused(gw.port());
  REQUIRE(reused.roundTrip(get("/items")).status == 200);
  REQUIRE(reused.roundTrip(get("/items", "Connection: bad token\r\n")).status == 400);
  std::string lastLine;
  REQUIRE(waitFor([&] {
    const std::string text = readFile(logPath);
    const std::size_t end = text.size() > 1 ? text.rfind('\n', text.size() - 2) : 0;
    lastLine = text.substr(end == std::string::npos ? 0 : end + 1);
    return lastLine.find("\"status\":400") != std::string::npos;
  }, 5000ms));
  REQUIRE_FALSE(line.Parse(lastLine.c_str()).HasParseError());
  CHECK(line["trace_id"].IsNull());

  const std::string metrics = adminRequest(gw, "/metrics").body;
  CHECK(metricSample(metrics, "gatewayd_trace_spans_dropped_total") == 0);
  CHECK(waitFor([&] {
    return metricSample(adminRequest(gw, "/metrics").body,
                        "gatewayd_trace_spans_exported_total") == 4;  // the 400 had no trace
  }, 5000ms));
}

TEST_CASE("tracing: off, the client's trace context passes through untouched") {
  Backend b;
  TempDir dir;
  Gateway gw(config(b, "{enabled: false}", dir.path() + "/access.log"));
  const std::string upper = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";
  Echo echo = echoOf(gw, "traceparent: " + upper + "\r\ntracestate: vendor=abc\r\n");
  CHECK(echo.header("traceparent") == upper);
  CHECK(echo.header("tracestate") == "vendor=abc");
  CHECK_FALSE(echoOf(gw, "").header("traceparent"));
}

// RFC 9110 §7.6.1: a field the client's Connection header names ends at this hop, the trace
// fields included (found by test/fuzz/request_fuzz.cpp; corpus/request/connection-trace-fields).
TEST_CASE("tracing: trace fields the client's Connection header names are not forwarded") {
  const std::string incoming = std::string("00-") + kIncomingTrace + "-" + kIncomingParent + "-01";
  const std::string traceFields = "traceparent: " + incoming + "\r\ntracestate: vendor=abc\r\n";
  Backend b;
  TempDir dir;
  Gateway off(config(b, "{enabled: false}", dir.path() + "/off.log"));
  Gateway on(config(b, "{}", dir.path() + "/on.log"));

  // Tracing off: the client's fields would pass untouched, but not once Connection names them.
  Echo untouched = echoOf(off, "Connection: traceparent, tracestate\r\n" + traceFields);
  CHECK(untouched.headerCount("traceparent") == 0);
  CHECK(untouched.headerCount("tracestate") == 0);

  // Tracing on: the trace is continued, and the named tracestate is not forwarded.
  Echo continued = echoOf(on, "Connection: tracestate\r\n" + traceFields);
  REQUIRE(continued.headerCount("traceparent") == 1);
  CHECK(continued.header("traceparent")->substr(0, 36) ==
        std::string("00-") + kIncomingTrace + "-");
  CHECK(continued.headerCount("tracestate") == 0);
}
