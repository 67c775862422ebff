#include "gateway/http/parser.h"

#include <doctest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/core/io_buffer.h"

namespace gw::http {
namespace {

using Field = std::pair<std::string, std::string>;
using namespace std::string_literals;

// Records every callback; what it returns is set per test.
struct Recorder : Parser::Handler {
  Parser* parser = nullptr;
  const char* base = nullptr;  // the buffer the current execute() runs on
  int headersResult = 0;
  int messageResult = 0;
  int bodyResult = 0;

  struct Head {
    std::string target;
    std::string statusText;
    int status = 0;
    llhttp_method_t method = HTTP_DELETE;
    std::vector<Field> fields;
    bool keepAlive = false;
    bool chunked = false;
    bool hasContentLength = false;
    uint64_t contentLength = 0;
    bool bodyUntilEof = false;
    int major = 0;
    int minor = 0;
    std::size_t headBytes = 0;
  };
  std::vector<Head> heads;
  std::string body;
  std::vector<uint64_t> chunkHeaders;
  int chunkCompletes = 0;
  int messages = 0;
  std::vector<std::string> events;

  int onHeadersComplete() override {
    Head h;
    h.target = std::string(parser->target(base));
    h.statusText = std::string(parser->statusText(base));
    h.status = parser->statusCode();
    h.method = parser->method();
    for (std::size_t i = 0; i < parser->fieldCount(); ++i) {
      h.fields.emplace_back(parser->fieldName(base, i), parser->fieldValue(base, i));
    }
    h.keepAlive = parser->keepAlive();
    h.chunked = parser->chunked();
    h.hasContentLength = parser->hasContentLength();
    h.contentLength = parser->contentLength();
    h.bodyUntilEof = parser->bodyUntilEof();
    h.major = parser->versionMajor();
    h.minor = parser->versionMinor();
    h.headBytes = parser->headBytes();
    CHECK_FALSE(parser->inHead());
    heads.push_back(std::move(h));
    events.push_back("headers");
    return headersResult;
  }
  int onBody(const char* data, std::size_t length) override {
    body.append(data, length);
    events.push_back("body:" + std::string(data, length));
    return bodyResult;
  }
  int onChunkHeader(uint64_t length) override {
    chunkHeaders.push_back(length);
    events.push_back("chunk:" + std::to_string(length));
    return 0;
  }
  int onChunkComplete() override {
    ++chunkCompletes;
    events.push_back("chunk-end");
    return 0;
  }
  int onMessageComplete() override {
    ++messages;
    events.push_back("message");
    return messageResult;
  }
};

// A parser and its recorder, parsing from a std::string that stays in place.
struct Harness {
  HeadLimits limits;
  Recorder recorder;
  Parser parser;
  std::string input;

  explicit Harness(llhttp_type_t type, HeadLimits l = {}, FieldListRecycler* lists = nullptr)
      : limits(l), parser(type, &recorder, limits, lists) {
    recorder.parser = &parser;
  }
  // Parses `text` in one execute() call, appended to what came before (same buffer base).
  Parser::Outcome feed(std::string_view text) {
    std::size_t from = input.size();
    input.append(text);
    return run(from);
  }
  Parser::Outcome run(std::size_t from) {
    recorder.base = input.data();
    return parser.execute(input.data(), input.data() + from, input.size() - from);
  }
};

// "name=value|name=value", so a mismatch prints readably.
std::string describe(const std::vector<Field>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) out += (out.empty() ? "" : "|") + name + "=" + value;
  return out;
}

TEST_CASE("a request head: target, fields, version, method, keep-alive") {
  Harness h(HTTP_REQUEST);
  const std::string request =
      "GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nAccept: \t */*\r\n\r\n";
  auto outcome = h.feed(request);
  CHECK(outcome.error == HPE_OK);
  CHECK(outcome.consumed == request.size());
  REQUIRE(h.recorder.heads.size() == 1);
  const auto& head = h.recorder.heads[0];
  CHECK(head.target == "/path?q=1");
  CHECK(head.method == HTTP_GET);
  CHECK(head.major == 1);
  CHECK(head.minor == 1);
  CHECK(head.keepAlive);
  CHECK_FALSE(head.chunked);
  CHECK_FALSE(head.hasContentLength);
  CHECK(describe(head.fields) == "Host=example.com|X-Empty=|Accept=*/*");
  // Head bytes run to the end of the last field value seen.
  CHECK(head.headBytes == request.find("*/*") + 3);
  CHECK(h.recorder.messages == 1);
  CHECK(h.recorder.body.empty());
  CHECK(h.parser.violation() == HeadViolation::None);
  CHECK_FALSE(h.parser.inHead());
}

// RFC 9112 §5: field-line = field-name ":" OWS field-value OWS. A consumer comparing values
// (Host against a route's host, Connection tokens) must not see the trailing OWS.
TEST_CASE("field values exclude trailing whitespace") {
  Harness h(HTTP_REQUEST);
  CHECK(h.feed("GET / HTTP/1.1\r\nHost: example.com \t\r\nX: a b  \r\n\r\n").error == HPE_OK);
  REQUIRE(h.recorder.heads.size() == 1);
  CHECK(describe(h.recorder.heads[0].fields) == "Host=example.com|X=a b");
}

TEST_CASE("HTTP/1.0 and Connection: close turn keep-alive off") {
  Harness h10(HTTP_REQUEST);
  CHECK(h10.feed("GET / HTTP/1.0\r\n\r\n").error == HPE_OK);
  REQUIRE(h10.recorder.heads.size() == 1);
  CHECK(h10.recorder.heads[0].minor == 0);
  CHECK_FALSE(h10.recorder.heads[0].keepAlive);

  Harness close(HTTP_REQUEST);
  CHECK(close.feed("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").error == HPE_OK);
  REQUIRE(close.recorder.heads.size() == 1);
  CHECK_FALSE(close.recorder.heads[0].keepAlive);
}

TEST_CASE("a request body delimited by Content-Length") {
  Harness h(HTTP_REQUEST);
  auto outcome = h.feed("POST /submit HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  CHECK(outcome.error == HPE_OK);
  REQUIRE(h.recorder.heads.size() == 1);
  CHECK(h.recorder.heads[0].method == HTTP_POST);
  CHECK(h.recorder.heads[0].hasContentLength);
  CHECK(h.recorder.heads[0].contentLength == 5);
  CHECK(h.recorder.body == "hello");
  CHECK(h.recorder.messages == 1);
}

TEST_CASE("a response: status code, reason phrase, body") {
  Harness h(HTTP_RESPONSE);
  auto outcome = h.feed("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nServer: x\r\n\r\nabc");
  CHECK(outcome.error == HPE_OK);
  REQUIRE(h.recorder.heads.size() == 1);
  CHECK(h.recorder.heads[0].status == 404);
  CHECK(h.recorder.heads[0].statusText == "Not Found");
  CHECK(h.recorder.heads[0].fields == std::vector<Field>{{"Content-Length", "3"}, {"Server", "x"}});
  CHECK(h.recorder.body == "abc");
  CHECK(h.recorder.messages == 1);
}

// Feeds `message` to a request parser in pieces ending at `cuts`, growing an IoBuffer (capped at
// exactly what is needed, so every growth moves the bytes to a new block) between pieces.
Recorder::Head parseGrowing(const std::string& message, const std::vector<std::size_t>& cuts) {
  HeadLimits limits;
  Recorder recorder;
  Parser parser(HTTP_REQUEST, &recorder, limits);
  recorder.parser = &parser;
  core::IoBuffer buffer;
  std::size_t from = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(message.size());
  for (std::size_t to : ends) {
    const char* oldBase = buffer.base();
    REQUIRE(buffer.reserve(to - from, to));
    if (from > 0) REQUIRE(buffer.base() != oldBase);
    std::memcpy(buffer.writePtr(), message.data() + from, to - from);
    buffer.commit(to - from);
    recorder.base = buffer.base();
    auto outcome = parser.execute(buffer.base(), buffer.readPtr(), buffer.readable());
    REQUIRE(outcome.error == HPE_OK);
    REQUIRE(outcome.consumed == to - from);
    buffer.consume(outcome.consumed);
    if (to < message.size() && recorder.heads.empty()) CHECK(parser.inHead());
    from = to;
  }
  CHECK(recorder.messages == 1);
  REQUIRE(recorder.heads.size() == 1);
  return recorder.heads[0];
}

TEST_CASE("a head split across reads keeps its offsets while the buffer grows") {
  const std::string request =
      "PUT /some/long/target HTTP/1.1\r\nHost: h.example\r\nX-Long-Name: a value with spaces\r\n"
      "Content-Length: 0\r\n\r\n";
  const std::vector<Field> fields{
      {"Host", "h.example"}, {"X-Long-Name", "a value with spaces"}, {"Content-Length", "0"}};
  SUBCASE("every two-piece split") {
    for (std::size_t cut = 1; cut < request.size(); ++cut) {
      CAPTURE(cut);
      Recorder::Head head = parseGrowing(request, {cut});
      CHECK(head.target == "/some/long/target");
      CHECK(head.fields == fields);
      CHECK(head.method == HTTP_PUT);
    }
  }
  SUBCASE("one byte per read") {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < request.size(); ++i) cuts.push_back(i);
    Recorder::Head head = parseGrowing(request, cuts);
    CHECK(head.target == "/some/long/target");
    CHECK(head.fields == fields);
    CHECK(head.headBytes == request.find("0\r\n\r\n") + 1);
  }
}

TEST_CASE("pausing at headers complete and message complete, then a pipelined request") {
  Harness h(HTTP_REQUEST);
  const std::string first = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  const std::string second = "GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
  h.recorder.headersResult = HPE_PAUSED;
  h.recorder.messageResult = HPE_PAUSED;
  h.input = first + second;
  std::size_t at = 0;

  auto outcome = h.run(at);
  CHECK(outcome.error == HPE_PAUSED);
  CHECK(outcome.consumed == first.size() - 3);  // the head, up to the body
  CHECK(h.recorder.body.empty());
  REQUIRE(h.recorder.heads.size() == 1);
  CHECK(h.recorder.heads[0].target == "/a");
  at += outcome.consumed;

  h.parser.resume();
  outcome = h.run(at);
  CHECK(outcome.error == HPE_PAUSED);
  CHECK(outcome.consumed == 3);  // the body, and not a byte of the next request
  CHECK(h.recorder.body == "abc");
  CHECK(h.recorder.messages == 1);
  at += outcome.consumed;
  CHECK(at == first.size());

  h.parser.resume();
  h.recorder.headersResult = 0;
  outcome = h.run(at);
  CHECK(outcome.error == HPE_PAUSED);
  CHECK(outcome.consumed == second.size());
  REQUIRE(h.recorder.heads.size() == 2);
  CHECK(h.recorder.heads[1].target == "/b");
  CHECK(h.recorder.heads[1].fields == std::vector<Field>{{"Host", "b"}});
  CHECK(h.recorder.heads[1].headBytes == second.find("b\r\n\r\n") + 1);
  CHECK(h.recorder.messages == 2);
  CHECK(h.recorder.events ==
        std::vector<std::string>{"headers", "body:abc", "message", "headers", "message"});
}

TEST_CASE("pipelined requests in one read without pausing measure each head on its own") {
  HeadLimits limits;
  limits.headerBytes = 60;
  Harness h(HTTP_REQUEST, limits);
  const std::string one = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";  // 25 bytes of head
  auto outcome = h.feed(one + one + one);
  CHECK(outcome.error == HPE_OK);
  CHECK(h.parser.violation() == HeadViolation::None);
  CHECK(h.recorder.messages == 3);
  REQUIRE(h.recorder.heads.size() == 3);
  CHECK(h.recorder.heads[2].headBytes == h.recorder.heads[0].headBytes);
}

TEST_CASE("a final response after a 1xx in the same read is measured on its own") {
  HeadLimits limits;
  limits.headerBytes = 60;
  Harness h(HTTP_RESPONSE, limits);
  const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
  const std::string final = "HTTP/1.1 200 OK\r\nX-Pad: " + std::string(20, 'p') + "\r\n\r\n";
  auto outcome = h.feed(interim + final);
  CHECK(outcome.error == HPE_OK);
  CHECK(h.parser.violation() == HeadViolation::None);
  REQUIRE(h.recorder.heads.size() == 2);
  CHECK(h.recorder.heads[1].headBytes == final.size() - 4);
}

TEST_CASE("the request target over its limit is refused as RequestLineTooLong") {
  HeadLimits limits;
  limits.requestLineBytes = 64;  // the target may take all but 16 bytes of it
  SUBCASE("at the limit") {
    Harness h(HTTP_REQUEST, limits);
    auto outcome = h.feed("GET /" + std::string(47, 'a') + " HTTP/1.1\r\n\r\n");
    CHECK(outcome.error == HPE_OK);
    CHECK(h.parser.violation() == HeadViolation::None);
    CHECK(h.recorder.messages == 1);
  }
  SUBCASE("one byte over") {
    Harness h(HTTP_REQUEST, limits);
    auto outcome = h.feed("GET /" + std::string(48, 'a') + " HTTP/1.1\r\n\r\n");
    CHECK(outcome.error == HPE_USER);
    CHECK(h.parser.violation() == HeadViolation::RequestLineTooLong);
    CHECK(h.recorder.heads.empty());
  }
  SUBCASE("over the limit before the line is complete") {
    Harness h(HTTP_REQUEST, limits);
    auto outcome = h.feed("GET /" + std::string(200, 'a'));
    CHECK(outcome.error == HPE_USER);
    CHECK(h.parser.violation() == HeadViolation::RequestLineTooLong);
  }
}

TEST_CASE("head bytes over the limit are refused as HeadersTooLarge") {
  const std::string head = "GET / HTTP/1.1\r\nX: ";  // 19 bytes before the value
  HeadLimits limits;
  limits.headerBytes = 19 + 40;
  SUBCASE("the value ends exactly at the limit") {
    Harness h(HTTP_REQUEST, limits);
    CHECK(h.feed(head + std::string(40, 'v') + "\r\n\r\n").error == HPE_OK);
    CHECK(h.parser.violation() == HeadViolation::None);
    REQUIRE(h.recorder.heads.size() == 1);
    CHECK(h.recorder.heads[0].headBytes == 59);
  }
  SUBCASE("one byte more") {
    Harness h(HTTP_REQUEST, limits);
    CHECK(h.feed(head + std::string(41, 'v') + "\r\n\r\n").error == HPE_USER);
    CHECK(h.parser.violation() == HeadViolation::HeadersTooLarge);
    CHECK(h.parser.headBytes() == 60);
    CHECK(h.recorder.heads.empty());
  }
  SUBCASE("counted across reads") {
    Harness h(HTTP_REQUEST, limits);
    CHECK(h.feed(head + std::string(30, 'v')).error == HPE_OK);
    CHECK(h.parser.inHead());
    CHECK(h.feed(std::string(11, 'v')).error == HPE_USER);
    CHECK(h.parser.violation() == HeadViolation::HeadersTooLarge);
  }
  SUBCASE("a response's status line counts too") {
    HeadLimits small;
    small.headerBytes = 20;
    Harness h(HTTP_RESPONSE, small);
    CHECK(h.feed("HTTP/1.1 200 " + std::string(30, 'r') + "\r\n\r\n").error == HPE_USER);
    CHECK(h.parser.violation() == HeadViolation::HeadersTooLarge);
  }
}

TEST_CASE("more header fields than allowed are refused as TooManyHeaders") {
  HeadLimits limits;
  limits.headerCount = 3;
  std::string three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
  Harness ok(HTTP_REQUEST, limits);
  CHECK(ok.feed(three + "\r\n").error == HPE_OK);
  REQUIRE(ok.recorder.heads.size() == 1);
  CHECK(ok.recorder.heads[0].fields.size() == 3);

  Harness over(HTTP_REQUEST, limits);
  CHECK(over.feed(three + "D: 4\r\n\r\n").error == HPE_USER);
  CHECK(over.parser.violation() == HeadViolation::TooManyHeaders);
  CHECK(over.recorder.heads.empty());

  // Empty values still count as fields.
  Harness empty(HTTP_REQUEST, limits);
  CHECK(empty.feed("GET / HTTP/1.1\r\nA:\r\nB:\r\nC:\r\nD:\r\n\r\n").error == HPE_USER);
  CHECK(empty.parser.violation() == HeadViolation::TooManyHeaders);
}

TEST_CASE("obs-fold is refused as LineFolding") {
  Harness h(HTTP_REQUEST);
  auto outcome = h.feed("GET / HTTP/1.1\r\nX-Folded: first\r\n second\r\nHost: a\r\n\r\n");
  CHECK(outcome.error == HPE_USER);
  CHECK(h.parser.violation() == HeadViolation::LineFolding);
  CHECK(h.recorder.heads.empty());
  CHECK(h.parser.reason() != nullptr);
}

// Found by test/fuzz/request_fuzz.cpp: llhttp reports a fold's continuation apart from the
// first line, so a continuation of blanks alone once left "first\r" as the value.
TEST_CASE("obs-fold with a continuation of blanks is refused as LineFolding") {
  for (std::string head : {"GET / HTTP/1.1\r\nX-Folded: first\r\n \r\nHost: a\r\n\r\n",
                           "GET / HTTP/1.1\r\nX-Folded: first\r\n\t \r\nHost: a\r\n\r\n",
                           "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: first\r\n \r\n\r\n"}) {
    Harness h(HTTP_REQUEST);
    CHECK(h.feed(head).error == HPE_USER);
    CHECK(h.parser.violation() == HeadViolation::LineFolding);
    CHECK(h.recorder.heads.empty());
  }
}

TEST_CASE("a field without a name is refused as EmptyFieldName, first or later") {
  for (std::string head : {"GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n",
                           "GET / HTTP/1.1\r\n: value\r\nHost: a\r\n\r\n"}) {
    Harness h(HTTP_REQUEST);
    CHECK(h.feed(head).error == HPE_USER);
    CHECK(h.parser.violation() == HeadViolation::EmptyFieldName);
    CHECK(h.recorder.heads.empty());
  }
}

TEST_CASE("a request line without a version is refused at once, not waited on") {
  for (std::string line : {"GET /path\r\n", "GET /path\n", "GET /\r\n\r\n"}) {
    Harness h(HTTP_REQUEST);
    CHECK(h.feed(line).error == HPE_USER);
    CHECK(h.parser.violation() == HeadViolation::MissingVersion);
  }
  // A target split over two reads is judged when its end arrives.
  Harness split(HTTP_REQUEST);
  CHECK(split.feed("GET /pa").error == HPE_OK);
  CHECK(split.feed("th\r\n").error == HPE_USER);
  CHECK(split.parser.violation() == HeadViolation::MissingVersion);
  Harness versioned(HTTP_REQUEST);
  CHECK(versioned.feed("GET /hea").error == HPE_OK);
  CHECK(versioned.feed("lth HTTP/1.1\r\n\r\n").error == HPE_OK);
  CHECK(versioned.parser.violation() == HeadViolation::None);
  CHECK(versioned.recorder.heads.size() == 1);
}

TEST_CASE("chunk extensions are bounded per message, not per chunk") {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  Harness within(HTTP_REQUEST);
  std::string body;
  for (int i = 0; i < 8; ++i) body += "1;name=" + std::string(1000, 'v') + "\r\nx\r\n";
  CHECK(within.feed(head + body + "0\r\n\r\n").error == HPE_OK);
  CHECK(within.recorder.body == "xxxxxxxx");

  Harness over(HTTP_REQUEST);
  body.clear();
  for (int i = 0; i < 20; ++i) body += "1;name=" + std::string(1000, 'v') + "\r\nx\r\n";
  CHECK(over.feed(head + body + "0\r\n\r\n").error == HPE_USER);
  CHECK(over.parser.violation() == HeadViolation::ChunkExtensionsTooLong);
  // The count starts again with each message.
  Harness next(HTTP_REQUEST);
  std::string two;
  for (int m = 0; m < 2; ++m) {
    two += head;
    for (int i = 0; i < 10; ++i) two += "1;n=" + std::string(1000, 'v') + "\r\nx\r\n";
    two += "0\r\n\r\n";
  }
  CHECK(next.feed(two).error == HPE_OK);
  CHECK(next.recorder.messages == 2);
}

TEST_CASE("rebase keeps a partial head readable after its bytes moved") {
  Harness h(HTTP_REQUEST);
  h.input = "junk-";  // bytes before the head, dropped when the buffer is compacted
  CHECK(h.feed("GET /target HTTP/1.1\r\nHost: a\r\nX-Long: first-half").error == HPE_OK);
  REQUIRE(h.parser.inHead());
  CHECK(h.parser.headStart() == 5);
  const std::size_t shift = h.parser.headStart();
  h.input.erase(0, shift);
  h.parser.rebase(shift);
  CHECK(h.parser.headStart() == 0);
  CHECK(h.feed("-second-half\r\n\r\n").error == HPE_OK);
  REQUIRE(h.recorder.heads.size() == 1);
  CHECK(h.recorder.heads[0].target == "/target");
  CHECK(describe(h.recorder.heads[0].fields) == "Host=a|X-Long=first-half-second-half");
}

struct Rejection {
  const char* name;
  std::string text;
  llhttp_errno_t error;
};

TEST_CASE("strict llhttp rejects smuggling vectors and malformed bytes") {
  const std::vector<Rejection> cases = {
      {"Content-Length with Transfer-Encoding",
       "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
       HPE_UNEXPECTED_CONTENT_LENGTH},
      {"two different Content-Lengths",
       "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
       HPE_UNEXPECTED_CONTENT_LENGTH},
      {"bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       HPE_INVALID_CHUNK_SIZE},
      {"bare CR in the request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", HPE_INVALID_VERSION},
      {"bare CR in a header value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", HPE_LF_EXPECTED},
      {"bare LF ending a header line", "GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n",
       HPE_INVALID_HEADER_TOKEN},
      {"NUL in a header value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"s, HPE_INVALID_HEADER_TOKEN},
      {"NUL in the target", "GET /a\0 HTTP/1.1\r\n\r\n"s, HPE_INVALID_URL},
      {"space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", HPE_INVALID_HEADER_TOKEN},
      {"non-numeric Content-Length", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
       HPE_INVALID_CONTENT_LENGTH},
  };
  for (const Rejection& r : cases) {
    CAPTURE(std::string(r.name));
    Harness h(HTTP_REQUEST);
    auto outcome = h.feed(r.text);
    CHECK(outcome.error == r.error);
    CHECK(h.recorder.messages == 0);
    CHECK(h.parser.violation() == HeadViolation::None);
    REQUIRE(h.parser.reason() != nullptr);
    CHECK(std::strlen(h.parser.reason()) > 0);
  }
}

TEST_CASE("a chunked body: chunk headers, body bytes, chunk ends") {
  Harness h(HTTP_REQUEST);
  auto outcome = h.feed(
      "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: t\r\n\r\n");
  CHECK(outcome.error == HPE_OK);
  REQUIRE(h.recorder.heads.size() == 1);
  CHECK(h.recorder.heads[0].chunked);
  CHECK_FALSE(h.recorder.heads[0].hasContentLength);
  CHECK(h.recorder.chunkHeaders == std::vector<uint64_t>{5, 26, 0});
  CHECK(h.recorder.body == "helloabcdefghijklmnopqrstuvwxyz");
  CHECK(h.recorder.chunkCompletes == 3);
  CHECK(h.recorder.messages == 1);
  CHECK(h.recorder.events ==
        std::vector<std::string>{"headers", "chunk:5", "body:hello", "chunk-end", "chunk:26",
                                 "body:abcdefghijklmnopqrstuvwxyz", "chunk-end", "chunk:0",
                                 "chunk-end", "message"});
}

TEST_CASE("a chunked body arriving one byte at a time") {
  Harness h(HTTP_REQUEST);
  const std::string text =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  for (char c : text) REQUIRE(h.feed(std::string_view(&c, 1)).error == HPE_OK);
  CHECK(h.recorder.chunkHeaders == std::vector<uint64_t>{3, 2, 0});
  CHECK(h.recorder.body == "abcde");
  CHECK(h.recorder.chunkCompletes == 3);
  CHECK(h.recorder.messages == 1);
}

TEST_CASE("a body callback can stop the parser with HPE_USER") {
  Harness h(HTTP_REQUEST);
  h.recorder.bodyResult = HPE_USER;
  auto outcome = h.feed("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody");
  CHECK(outcome.error == HPE_USER);
  CHECK(h.recorder.body == "body");
  CHECK(h.recorder.messages == 0);
  CHECK(h.parser.violation() == HeadViolation::None);
}

TEST_CASE("a response to HEAD has no body when onHeadersComplete returns 1") {
  Harness h(HTTP_RESPONSE);
  h.recorder.headersResult = 1;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
  auto outcome = h.feed(head + "HTTP/1.1 204 No Content\r\n\r\n");
  CHECK(outcome.error == HPE_OK);
  CHECK(h.recorder.messages == 2);
  CHECK(h.recorder.body.empty());
  REQUIRE(h.recorder.heads.size() == 2);
  CHECK(h.recorder.heads[0].contentLength == 10);
  CHECK(h.recorder.heads[1].status == 204);
}

TEST_CASE("1xx responses then the final one on one response parser") {
  Harness h(HTTP_RESPONSE);
  auto outcome = h.feed(
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  CHECK(outcome.error == HPE_OK);
  REQUIRE(h.recorder.heads.size() == 3);
  CHECK(h.recorder.heads[0].status == 100);
  CHECK(h.recorder.heads[0].statusText == "Continue");
  CHECK(h.recorder.heads[1].status == 103);
  CHECK(h.recorder.heads[1].fields == std::vector<Field>{{"Link", "</a.css>"}});
  CHECK(h.recorder.heads[2].status == 200);
  CHECK(h.recorder.heads[2].fields == std::vector<Field>{{"Content-Length", "2"}});
  CHECK(h.recorder.body == "ok");
  CHECK(h.recorder.messages == 3);
}

// The one judgement of a response head, shared by the proxy and the cache's background fetch.
struct Judged {
  ResponseHead::Kind kind;
  bool bodyless;
  std::string refusal;
};

// Judges each head of `responses` in turn, as the callers do, with one 1xx count per exchange.
std::vector<Judged> judgeEach(std::string_view responses, bool headRequest = false) {
  struct Judge : Parser::Handler {
    Parser* parser = nullptr;
    bool headRequest = false;
    int informational = 0;
    std::vector<Judged> judged;
    int onHeadersComplete() override {
      const ResponseHead head = judgeResponseHead(*parser, headRequest, informational);
      judged.push_back({head.kind, head.bodyless, std::string(head.refusal)});
      return head.parserResult();
    }
    int onBody(const char*, std::size_t) override { return 0; }
    int onMessageComplete() override { return 0; }
  } judge;
  judge.headRequest = headRequest;
  const HeadLimits limits;
  Parser parser(HTTP_RESPONSE, &judge, limits);
  judge.parser = &parser;
  parser.execute(responses.data(), responses.data(), responses.size());
  return judge.judged;
}

TEST_CASE("judgeResponseHead: 204, 304 and answers to HEAD are bodyless whatever they announce") {
  using Kind = ResponseHead::Kind;
  const std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  for (const char* status : {"204 No Content", "304 Not Modified"}) {
    INFO(status);
    // Were the announced body awaited, the next response would be read as its bytes.
    auto judged = judgeEach("HTTP/1.1 "s + status + "\r\nContent-Length: 5\r\n\r\n" + next);
    REQUIRE(judged.size() == 2);
    CHECK(judged[0].kind == Kind::Final);
    CHECK(judged[0].bodyless);
    CHECK(judged[1].kind == Kind::Final);
    CHECK_FALSE(judged[1].bodyless);
  }
  auto judged = judgeEach("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + next, true);
  REQUIRE(judged.size() == 2);
  CHECK(judged[0].bodyless);
}

TEST_CASE("judgeResponseHead: 1xx heads are bodyless, bounded, and refused with a body") {
  using Kind = ResponseHead::Kind;
  auto judged = judgeEach("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
  REQUIRE(judged.size() == 2);
  CHECK(judged[0].kind == Kind::Informational);
  CHECK(judged[1].kind == Kind::Final);

  for (const char* framing : {"Content-Length: 3", "Transfer-Encoding: chunked"}) {
    INFO(framing);
    judged = judgeEach("HTTP/1.1 103 Early Hints\r\n"s + framing + "\r\n\r\n");
    REQUIRE(judged.size() == 1);
    CHECK(judged[0].kind == Kind::Refused);
    CHECK(judged[0].refusal == "1xx response with a body");
  }

  std::string many;
  for (int i = 0; i <= kMaxInformationalResponses; ++i) many += "HTTP/1.1 100 Continue\r\n\r\n";
  judged = judgeEach(many);
  REQUIRE(judged.size() == kMaxInformationalResponses + 1);
  CHECK(judged[kMaxInformationalResponses - 1].kind == Kind::Informational);
  CHECK(judged.back().kind == Kind::Refused);
  CHECK(judged.back().refusal == "too many 1xx responses");
}

TEST_CASE("judgeResponseHead: a status below 100 and a 101 nobody asked for are refused") {
  using Kind = ResponseHead::Kind;
  auto judged = judgeEach("HTTP/1.1 099 Odd\r\n\r\n");
  REQUIRE(judged.size() == 1);
  CHECK(judged[0].kind == Kind::Refused);
  CHECK(judged[0].refusal == "status code below 100");

  judged = judgeEach("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
  REQUIRE(judged.size() == 1);
  CHECK(judged[0].kind == Kind::Refused);
  CHECK(judged[0].refusal == "101 Switching Protocols was not asked for");
}

TEST_CASE("a close-delimited response body completes on finish()") {
  Harness h(HTTP_RESPONSE);
  auto outcome = h.feed("HTTP/1.1 200 OK\r\nServer: old\r\n\r\npart one, ");
  CHECK(outcome.error == HPE_OK);
  REQUIRE(h.recorder.heads.size() == 1);
  CHECK(h.recorder.heads[0].bodyUntilEof);
  CHECK_FALSE(h.recorder.heads[0].keepAlive);
  CHECK(h.feed("part two").error == HPE_OK);
  CHECK(h.recorder.messages == 0);
  CHECK(h.parser.finish() == HPE_OK);
  CHECK(h.recorder.messages == 1);
  CHECK(h.recorder.body == "part one, part two");
}

TEST_CASE("finish() reports a body cut short") {
  Harness h(HTTP_RESPONSE);
  CHECK(h.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").error == HPE_OK);
  REQUIRE(h.recorder.heads.size() == 1);
  CHECK_FALSE(h.recorder.heads[0].bodyUntilEof);
  CHECK(h.parser.finish() == HPE_INVALID_EOF_STATE);
  CHECK(h.recorder.messages == 0);
  CHECK(std::strlen(h.parser.reason()) > 0);
}

TEST_CASE("reason() is never null, and reset() makes a failed parser usable again") {
  HeadLimits limits;
  limits.headerCount = 1;
  Harness h(HTTP_REQUEST, limits);
  REQUIRE(h.parser.reason() != nullptr);
  CHECK(std::string(h.parser.reason()).empty());
  CHECK(h.feed("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n").error == HPE_USER);
  REQUIRE(h.parser.reason() != nullptr);
  CHECK(h.parser.violation() == HeadViolation::TooManyHeaders);
  CHECK(h.parser.inHead());

  h.parser.reset();
  CHECK(h.parser.violation() == HeadViolation::None);
  CHECK_FALSE(h.parser.inHead());
  std::size_t from = h.input.size();
  h.input += "GET /again HTTP/1.1\r\nA: 1\r\n\r\n";
  CHECK(h.run(from).error == HPE_OK);
  REQUIRE(h.recorder.heads.size() == 1);
  CHECK(h.recorder.heads[0].target == "/again");
  CHECK(h.recorder.heads[0].fields == std::vector<Field>{{"A", "1"}});
}

TEST_CASE("field lists are lent by the recycler and given back by shrink()") {
  FieldListRecycler lists(4);
  std::vector<FieldSpan> lent;
  lent.reserve(32);
  const FieldSpan* storage = lent.data();
  lists.give(std::move(lent));

  Harness h(HTTP_REQUEST, {}, &lists);
  CHECK(h.feed("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n").error == HPE_OK);
  CHECK(h.parser.fieldCount() == 2);
  CHECK(lists.take().capacity() == 0);  // the parser holds the only list
  h.parser.shrink();
  CHECK(h.parser.fieldCount() == 0);
  std::vector<FieldSpan> back = lists.take();
  CHECK(back.data() == storage);
  CHECK(back.empty());
  lists.give(std::move(back));

  // The next message borrows it again.
  CHECK(h.feed("GET /2 HTTP/1.1\r\nC: 3\r\n\r\n").error == HPE_OK);
  REQUIRE(h.recorder.heads.size() == 2);
  CHECK(h.recorder.heads[1].fields == std::vector<Field>{{"C", "3"}});
  h.parser.shrink();
  CHECK(lists.take().data() == storage);
}

}  // namespace
}  // namespace gw::http

