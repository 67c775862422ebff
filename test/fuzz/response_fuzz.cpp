// The backend side of the proxy: bytes a backend answers with, read by read, through the real
// proxy::Connection and proxy::Exchange of a worker in this process (test/fuzz/loopback_gateway.h)
// and its upstream connection: the response parser with the upstream head limits, 1xx relaying
// (and refusing a 101, a 1xx with a body, a status below 100, too many 1xx), HEAD/204/304 and
// the framing rules, head rewriting, re-chunking, plugins' response phase (request_id,
// security_headers; the cache storing what it may), a client that does not read (the queue
// toward it must keep what it borrowed from the upstream buffer when that buffer moves), the
// backend's close, bytes after a complete response, and the pool: a client that keeps its
// connection sends a second request, which the backend answers with a known response.
//
// Input: byte 0 picks the route (bits 0-1: plain, plugins, cache, plain), an HTTP/1.0 client
// (bit 2), a client that does not keep the connection (bit 3), a HEAD request (bit 4), a client
// that reads only once the backend has sent everything (bit 5) and a backend that leaves its
// connection open after its bytes (bit 6; otherwise it closes its side); byte 1 is the size of
// each read (0: everything in one read); the rest is what the backend sends.
//
// Referee: an independent strict llhttp reader of both sides' bytes (test/fuzz/http_reader.h).
// Invariants (any break aborts):
//   - what the client receives reads as zero or more 1xx (only to an HTTP/1.1 client, and exactly
//     the backend's) followed by ONE final response and nothing after it;
//   - that response is the backend's — its status and, byte for byte, its body (none for HEAD,
//     204 and 304), or a prefix of it when the connection ends without a way for the client to
//     tell (cut short, or delimited by the close) — or the gateway's 502 with a JSON error body
//     and nothing of the backend's final head before it;
//   - each head the client gets is well formed: token names, valid values, at most one
//     Content-Length and never with Transfer-Encoding, no framing on 1xx and 204, no chunked
//     coding for HTTP/1.0, no hop-by-hop field of the backend's nor one its Connection named,
//     and (on the plain route) every end-to-end field of the backend's unchanged;
//   - a whole, delimited answer says close exactly when the gateway ends the connection; one it
//     keeps is delimited; the client never waits for an answer that will not come;
//   - the second request on a kept connection gets exactly the backend's known answer (bytes
//     after the first response, or a connection left dirty, would show here), and an upstream
//     connection that sent bytes after its response is not used again;
//   - once both peers close, the worker lets go of every connection within bounded work.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/headers.h"
#include "test/fuzz/fuzz_check.h"
#include "test/fuzz/http_reader.h"
#include "test/fuzz/loopback_gateway.h"
#include "test/fuzz/peer_input.h"

namespace gw::fuzz {
namespace {

constexpr std::string_view kConfig = R"(
listeners: [{address: 127.0.0.1, port: 1}]
admin: {enabled: false}
access_log: {enabled: false}
limits: {upstream_header_bytes: 4KiB, upstream_header_count: 32}
upstreams:
  - name: u
    backends: [${BACKEND}]
    health_checks: {passive: {consecutive_failures: 0}}
routes:
  - name: plain
    match: {prefix: /plain}
    upstream: u
  - name: plugins
    match: {prefix: /plugins}
    upstream: u
    plugins: [request_id, security_headers]
  - name: cached
    match: {prefix: /cached}
    upstream: u
    plugins:
      - cache: {max_bytes: 1MiB, max_entry_bytes: 64KiB}
)";

// What the backend answers the second request with: nothing a fuzzed answer would spell.
constexpr std::string_view kSecondBody = "second-7f3a9c";
const std::string kSecondAnswer =
    "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kSecondBody.size()) + "\r\n\r\n" +
    std::string(kSecondBody);

LoopbackGateway& gateway() {
  // Never destroyed: the worker's loop belongs to this thread until the process ends.
  static LoopbackGateway* kGateway = new LoopbackGateway(kConfig);
  return *kGateway;
}

struct Options {
  std::string_view route;  // a path prefix
  int versionMinor = 1;
  bool keepAlive = true;
  bool head = false;
  bool slowClient = false;
  bool backendKeepsOpen = false;
};

Options optionsOf(uint8_t bits) {
  constexpr std::string_view kRoutes[] = {"/plain", "/plugins", "/cached", "/plain"};
  Options o;
  o.route = kRoutes[bits & 3];
  o.versionMinor = (bits & 4) ? 0 : 1;
  o.keepAlive = (bits & 8) == 0;
  o.head = (bits & 16) != 0;
  o.slowClient = (bits & 32) != 0;
  o.backendKeepsOpen = (bits & 64) != 0;
  return o;
}

// Framed so that the client finds its end without the connection closing.
bool delimited(const Message& message, bool head) {
  return message.count("content-length") == 1 || message.chunked || head || message.status == 204 ||
         message.status == 304;
}

class BackendRun {
 public:
  explicit BackendRun(const Options& options)
      : options_(options), session_(gateway(), "192.0.2.7") {
    // Each input its own path: the cache never answers from an earlier input's entry.
    static uint64_t inputs = 0;
    path_ = std::string(options.route) + "/" + std::to_string(++inputs);
    session_.onRequestBytes = [this](BackendConnection& connection) { answerLater(connection); };
  }

  void play(const PeerInput& input) {
    session_.clientReads(!options_.slowClient);
    session_.send(request(options_.head ? "HEAD" : "GET", path_));
    session_.pump();
    FUZZ_REQUIRE(session_.backends().size() == 1 &&
                     !session_.backends()[0]->requests.messages().empty() &&
                     session_.backends()[0]->requests.messages()[0].complete,
                 "the request did not reach the backend");
    BackendConnection& first = *session_.backends()[0];
    input.deliver([&](std::string_view read) {
      session_.answer(first, read);
      sent_.append(read);
      session_.pump();
      return !first.ended && !session_.clientEnded();
    });
    if (!options_.backendKeepsOpen) closeBackend(first);
    session_.clientReads(true);
    session_.pump();
    if (!session_.clientEnded() && !finalComplete()) closeBackend(first);  // it waits for that
    checkFirst();
    if (keptForAnother_) checkSecond(first);
  }

 private:
  std::string request(std::string_view method, std::string_view target) const {
    std::string text = std::string(method) + " " + std::string(target) + " HTTP/1." +
                       std::to_string(options_.versionMinor) + "\r\nHost: h\r\n";
    if (!options_.keepAlive) {
      text += "Connection: close\r\n";
    } else if (options_.versionMinor == 0) {
      text += "Connection: keep-alive\r\n";
    }
    return text + "\r\n";
  }

  // The first request is answered with the input; any later one with the known answer.
  void answerLater(BackendConnection& connection) {
    const auto& requests = connection.requests.messages();
    while (connection.answered < requests.size() && requests[connection.answered].complete) {
      if (requestsSeen_++ > 0) session_.answer(connection, kSecondAnswer);
      ++connection.answered;
    }
  }

  void closeBackend(BackendConnection& connection) {
    if (backendClosed_) return;
    backendClosed_ = true;
    session_.finishSending(connection);
    session_.pump();
  }

  bool finalComplete() const {
    Reader client(HTTP_RESPONSE, options_.head);
    client.read(session_.clientReceived());
    for (const Message& message : client.messages()) {
      if (message.status >= 200 && message.complete) return true;
    }
    return false;
  }

  void checkFirst() {
    const bool head = options_.head;
    Reader backend(HTTP_RESPONSE, head);
    backend.read(sent_);
    if (backendClosed_) backend.finish();
    Reader client(HTTP_RESPONSE, head);
    FUZZ_REQUIRE(client.read(session_.clientReceived()) == HPE_OK,
                 "what the client received does not parse");
    const bool ended = session_.clientEnded();
    if (ended && !client.betweenMessages()) client.finish();  // a body delimited by the close
    const auto& got = client.messages();
    for (const Message& message : got) checkHead(message);
    std::size_t informational = 0;
    while (informational < got.size() && got[informational].status < 200) ++informational;
    FUZZ_REQUIRE(got.size() <= informational + 1, "more than one final response");
    std::vector<int> sentInformational;
    const Message* sentFinal = nullptr;
    bool excess = false;  // the backend sent bytes of another message after its final one
    for (const Message& message : backend.messages()) {
      if (sentFinal) {
        excess = true;
      } else if (message.status >= 200) {
        sentFinal = &message;
      } else if (message.complete) {
        sentInformational.push_back(message.status);
      }
    }
    for (std::size_t i = 0; i < informational; ++i) {
      FUZZ_REQUIRE(options_.versionMinor >= 1, "a 1xx was sent to an HTTP/1.0 client");
      FUZZ_REQUIRE(i < sentInformational.size() && got[i].status == sentInformational[i],
                   "the client got a 1xx the backend did not send");
    }
    if (got.size() == informational) {
      FUZZ_REQUIRE(ended, "the client waits for an answer that will not come");
      return;
    }
    const Message& final = got.back();
    if (final.status == 502 && (head || isErrorBody(final.body)) &&
        !(sentFinal && sentFinal->status == 502 && sentFinal->body == final.body)) {
      // The gateway's own answer: whole, and it says what it does with the connection.
      FUZZ_REQUIRE(final.complete, "the gateway's 502 was cut");
      checkCloseSaid(final, ended);
      keptForAnother_ = !ended;
      return;
    }
    FUZZ_REQUIRE(sentFinal, "the client got a final response the backend did not send");
    FUZZ_REQUIRE(final.status == sentFinal->status, "the status changed on the way");
    if (final.complete && delimited(final, head)) {
      FUZZ_REQUIRE(sentFinal->complete && final.body == sentFinal->body,
                   "the body changed on the way");
      checkCloseSaid(final, ended);
      if (options_.route == "/plain") checkEndToEnd(*sentFinal, final);
      keptForAnother_ = !ended;
      // A connection with bytes after its response must not serve the next one.
      dirty_ = excess;
      return;
    }
    // Cut short, or delimited by the close: the client has a prefix and the connection ended.
    FUZZ_REQUIRE(ended, "a response without a delimited body on a connection kept open");
    FUZZ_REQUIRE(std::string_view(sentFinal->body).substr(0, final.body.size()) == final.body,
                 "what the client got of the body is not what the backend sent");
  }

  void checkCloseSaid(const Message& final, bool ended) {
    FUZZ_REQUIRE(http::hasToken(final.value("connection"), "close") == ended,
                 "the head says close when the gateway keeps the connection, or the reverse");
    if (!options_.keepAlive) FUZZ_REQUIRE(ended, "a client that asked to close was kept");
  }

  // The client keeps its connection: a second request gets exactly the backend's known answer,
  // never on an upstream connection that had bytes left after the first.
  void checkSecond(const BackendConnection& first) {
    const std::size_t before = session_.clientReceived().size();
    session_.send(request("GET", path_ + "/second"));
    session_.pump();
    Reader client(HTTP_RESPONSE);
    FUZZ_REQUIRE(
        client.read(std::string_view(session_.clientReceived()).substr(before)) == HPE_OK &&
            client.messages().size() == 1 && client.betweenMessages(),
        "the second request did not get exactly one answer");
    const Message& answer = client.messages()[0];
    FUZZ_REQUIRE(answer.status == 200 && answer.body == kSecondBody,
                 "the second request got something other than the backend's answer to it");
    const auto& onFirst = first.requests.messages();
    FUZZ_REQUIRE(!dirty_ || onFirst.size() == 1,
                 "an upstream connection with bytes after its response was used again");
  }

  void checkHead(const Message& message) {
    for (const std::string& option : connectionOptions(message)) {
      FUZZ_REQUIRE(option == "close" || option == "keep-alive",
                   "the client's Connection field names something other than close/keep-alive");
    }
    for (const auto& [name, value] : message.fields) {
      FUZZ_REQUIRE(http::isToken(name) && http::isValidFieldValue(value),
                   "a field sent to the client is not a valid field line");
      const std::string lowered = lower(name);
      FUZZ_REQUIRE(!hopByHop(lowered) || lowered == "connection" ||
                       (lowered == "transfer-encoding" && value == "chunked"),
                   "a hop-by-hop field reached the client");
    }
    const std::size_t lengths = message.count("content-length");
    const std::size_t codings = message.count("transfer-encoding");
    FUZZ_REQUIRE(lengths + codings <= 1, "the client's head is framed twice");
    if (message.status < 200 || message.status == 204) {
      FUZZ_REQUIRE(lengths + codings == 0, "a 1xx or 204 carries framing fields");
    }
    if (options_.versionMinor == 0) {
      FUZZ_REQUIRE(codings == 0, "an HTTP/1.0 client got a chunked response");
    }
  }

  // On the plain route the backend's end-to-end fields pass unchanged, in order.
  void checkEndToEnd(const Message& sent, const Message& got) {
    const std::vector<std::string> nominated = connectionOptions(sent);
    // HEAD and 304 keep the backend's Content-Length: it describes the content, not this body.
    // A 204 never has one (RFC 9110 8.6: a server must not send it), HEAD or not.
    const bool lengthIsTheirs = (options_.head || sent.status == 304) && sent.status != 204;
    auto endToEnd = [&](const Message& message, bool fromBackend) {
      std::vector<std::pair<std::string, std::string>> fields;
      for (const auto& [name, value] : message.fields) {
        const std::string lowered = lower(name);
        if (hopByHop(lowered)) continue;
        if (lowered == "content-length" && !lengthIsTheirs) continue;
        const bool framing = lowered == "content-length" || lowered == "host";
        if (fromBackend && !framing && contains(nominated, lowered)) continue;
        fields.emplace_back(name, trimOws(value));
      }
      return fields;
    };
    // ... and the gateway's Via follows them.
    auto expected = endToEnd(sent, true);
    expected.emplace_back("Via", "1.1 gatewayd");
    FUZZ_REQUIRE(endToEnd(got, false) == expected,
                 "the backend's end-to-end fields did not pass unchanged (then our Via)");
  }

  Options options_;
  Session session_;
  std::string path_;
  std::string sent_;  // what the backend sent before the gateway closed its connection
  std::size_t requestsSeen_ = 0;
  bool backendClosed_ = false;
  bool keptForAnother_ = false;
  bool dirty_ = false;
};

}  // namespace
}  // namespace gw::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace gw::fuzz;
  const auto input = PeerInput::of(data, size);
  if (!input) return 0;
  BackendRun run(optionsOf(input->options));
  run.play(*input);
  return 0;
}
