#include "gateway/observability/trace_context.h"

#include <doctest.h>

#include <string>
#include <unordered_set>

namespace gw::observability {
namespace {

std::string traceIdHex(const TraceId& id) {
  char buf[kTraceIdHexLen];
  formatTraceId(id, buf);
  return std::string(buf, sizeof(buf));
}

std::string spanIdHex(SpanId id) {
  char buf[kSpanIdHexLen];
  formatSpanId(id, buf);
  return std::string(buf, sizeof(buf));
}

}  // namespace

TEST_CASE("traceparent: the spec's examples parse") {
  auto tp = parseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  REQUIRE(tp);
  CHECK(tp->version == 0);
  CHECK(traceIdHex(tp->trace_id) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(spanIdHex(tp->parent_id) == "00f067aa0ba902b7");
  CHECK(tp->flags == 0x01);
  CHECK(tp->sampled());

  tp = parseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  REQUIRE(tp);
  CHECK_FALSE(tp->sampled());

  // Unknown flag bits are read (and masked by sampled()).
  tp = parseTraceParent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09");
  REQUIRE(tp);
  CHECK(tp->flags == 0x09);
  CHECK(tp->sampled());
}

TEST_CASE("traceparent: higher versions parse their first four fields") {
  constexpr std::string_view kBase = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto tp = parseTraceParent(kBase);
  REQUIRE(tp);
  CHECK(tp->version == 0xcc);
  CHECK(tp->sampled());

  tp = parseTraceParent(std::string(kBase) + "-what-the-future-holds");
  REQUIRE(tp);
  CHECK(traceIdHex(tp->trace_id) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(spanIdHex(tp->parent_id) == "00f067aa0ba902b7");

  CHECK(parseTraceParent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"));
  // Extra data must be separated from the flags by '-'.
  CHECK_FALSE(parseTraceParent(std::string(kBase) + "x"));
  CHECK_FALSE(parseTraceParent(std::string(kBase) + ".1"));
}

TEST_CASE("traceparent: invalid values are ignored") {
  const char* invalid[] = {
      "",
      "00",
      // version
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      // version 00 must be exactly 55 chars
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b77-01",
      " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
      // upper case hex
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
      // all-zero ids
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      // separators
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7--1",
      // non-hex
      "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
      // a higher version still needs 55 chars and valid fields
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
      "01-00000000000000000000000000000000-00f067aa0ba902b7-01-x",
  };
  for (const char* value : invalid) {
    CAPTURE(value);
    CHECK_FALSE(parseTraceParent(value));
  }
}

TEST_CASE("tracestate: valid lists") {
  const char* valid[] = {
      "",
      " ",
      ",",
      " , \t,",
      "rojo=00f067aa0ba902b7",
      "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
      "congo=ucfJifl5GOE , rojo=00f067aa0ba902b7",
      "foo=bar,,baz=qux",
      "foo=bar \t",
      "foo= bar",  // leading spaces belong to the value
      "a_-*/9=1",
      "tenant@system=v",
      "0tenant@s1=v",
      "foo=!\"#$%&'()*+-./0123456789:;<>?@[\\]^_`{|}~",
  };
  for (const char* value : valid) {
    CAPTURE(value);
    CHECK(validTraceState(value));
  }
  std::string key256(256, 'a');
  CHECK(validTraceState(key256 + "=v"));
  CHECK(validTraceState("k=" + std::string(256, 'v')));
  CHECK(validTraceState(std::string(241, 't') + "@" + std::string(14, 's') + "=v"));

  std::string members;
  for (int i = 0; i < 32; ++i) members.append("k").append(std::to_string(i)).append("=v,");  // not "k" + ...: GCC 12 -Wrestrict
  CHECK(validTraceState(members + ", ,"));  // empty members do not count towards the 32
}

TEST_CASE("tracestate: invalid lists") {
  const char* invalid[] = {
      "foo",
      "=bar",
      "foo=",
      "foo= ",
      "foo =bar",
      "Foo=bar",
      "1foo=bar",  // a simple key starts with a letter
      "foo.bar=baz",
      "foo=bar=baz",
      "foo=ba\tr",
      "foo=b\x7f",
      "foo=\xc3\xa9",
      "@foo=bar",
      "foo@=bar",
      "foo@1sys=bar",
      "foo@bar@baz=v",
      "foo=1,foo=2",
      "foo=1,bar=2,foo=3",
  };
  for (const char* value : invalid) {
    CAPTURE(value);
    CHECK_FALSE(validTraceState(value));
  }
  CHECK_FALSE(validTraceState(std::string(257, 'a') + "=v"));
  CHECK_FALSE(validTraceState("k=" + std::string(257, 'v')));
  CHECK_FALSE(validTraceState(std::string(242, 't') + "@s=v"));
  CHECK_FALSE(validTraceState("t@" + std::string(15, 's') + "=v"));

  std::string members;
  for (int i = 0; i < 33; ++i) members.append("k").append(std::to_string(i)).append("=v,");  // not "k" + ...: GCC 12 -Wrestrict
  CHECK_FALSE(validTraceState(members));
}

TEST_CASE("formatTraceParent round-trips and only carries the sampled bit") {
  TraceId id{0x4bf92f3577b34da6ULL, 0xa3ce929d0e0e4736ULL};
  char buf[kTraceParentLen];
  formatTraceParent(id, 0x00f067aa0ba902b7ULL, true, buf);
  std::string s(buf, sizeof(buf));
  CHECK(s == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  formatTraceParent(id, 1, false, buf);
  CHECK(std::string(buf, sizeof(buf)) == "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000001-00");
  auto tp = parseTraceParent(s);
  REQUIRE(tp);
  CHECK(tp->trace_id == id);
  CHECK(tp->parent_id == 0x00f067aa0ba902b7ULL);
}

TEST_CASE("TraceIds: 100k ids are unique and never zero") {
  TraceIds ids;
  std::unordered_set<std::string> traces;
  std::unordered_set<SpanId> spans;
  int zeros = 0;
  for (int i = 0; i < 100000; ++i) {
    TraceId t = ids.newTraceId();
    SpanId s = ids.newSpanId();
    zeros += !t.valid() + (s == 0);
    traces.insert(traceIdHex(t));
    spans.insert(s);
  }
  CHECK(zeros == 0);
  CHECK(traces.size() == 100000);
  CHECK(spans.size() == 100000);

  // Two generators seeded from getrandom() do not repeat each other.
  TraceIds a, b;
  CHECK_FALSE(a.newTraceId() == b.newTraceId());
  // The seeded constructor is deterministic.
  TraceIds c(42), d(42);
  CHECK(c.newTraceId() == d.newTraceId());
}

TEST_CASE("startHop: continue a valid trace, restart otherwise") {
  TraceIds ids(7);
  TraceHop hop = startHop("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", ids);
  CHECK(hop.continued);
  CHECK(traceIdHex(hop.trace_id) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(hop.parent_span_id == 0x00f067aa0ba902b7ULL);
  CHECK(hop.span_id != 0);
  CHECK(hop.span_id != hop.parent_span_id);
  CHECK_FALSE(hop.sampled);
  char buf[kTraceParentLen];
  hop.formatUpstream(buf);
  std::string up(buf, sizeof(buf));
  CHECK(up.substr(0, 36) == "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  CHECK(up.substr(36, 16) == spanIdHex(hop.span_id));
  CHECK(up.substr(52) == "-00");

  // A higher version is downgraded to 00 on the way up.
  hop = startHop("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future", ids);
  CHECK(hop.continued);
  CHECK(hop.sampled);
  hop.formatUpstream(buf);
  CHECK(std::string(buf, 3) == "00-");
  CHECK(std::string(buf + 52, 3) == "-01");

  for (std::string_view bad :
       {std::string_view{}, std::string_view{"garbage"},
        std::string_view{"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}}) {
    hop = startHop(bad, ids);
    CHECK_FALSE(hop.continued);
    CHECK(hop.trace_id.valid());
    CHECK(hop.parent_span_id == 0);
    CHECK(hop.span_id != 0);
    CHECK(hop.sampled);
  }
}

}  // namespace gw::observability
