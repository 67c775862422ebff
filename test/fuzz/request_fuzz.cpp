// The client side of the proxy: bytes a client sends on one connection, read by read, through
// the real proxy::Connection of a worker in this process (test/fuzz/loopback_gateway.h): the
// request parser with the configured head limits, the input buffer's compaction, the head checks
// (version, CONNECT, Expect, Connection options, Host, absolute form, underscored names),
// normalisation under the configured path rules, routing and prefix stripping, body limits,
// buildUpstreamHead() on the fast path and on plugin routes (one whose schema_validation buffers
// the body), the body re-framed toward a real backend socket, pipelining, the gateway's own
// answers, and the upstream pool between requests. The backend answers each complete request
// it reads with a small response that names its place in the order.
//
// Input: byte 0 picks the configuration (bits 0-1: path rules, underscored names, tracing), a
// client the configuration trusts as a proxy (bit 2) and a backend that reads nothing until the
// client has sent everything (bit 3); byte 1 is the size of each read (0: everything in one
// read); the rest is what the client sends.
//
// Referee: an independent strict llhttp reader of the client's bytes (test/fuzz/http_reader.h).
// Invariants (any break aborts):
//   - what the client receives reads as whole responses, each head well formed, in the order of
//     its requests: the backend's answer to the n-th forwarded request, or the gateway's own
//     error (4xx/5xx, a JSON error body) after which nothing more comes if it says close;
//   - every request the backend read whole was answered to the client, in order; every request
//     whose answer came from the backend was forwarded as the client sent it: same method, the
//     normalised (and stripped) target in normal form under the route that took it, the body byte
//     for byte, framed by one Content-Length (the body's length) or chunked coding (only for a
//     chunked client body) and nothing else, exactly one Host (the client's or the backend's),
//     no hop-by-hop field, no field the client's Connection named, no underscored name unless
//     allowed, X-Real-IP / Forwarded only from a trusted proxy, the client's other fields
//     unchanged and in order, X-Forwarded-For the client's chain plus the client, the gateway's
//     traceparent continuing a valid incoming trace; on the schema route, only a JSON object;
//   - a request the gateway had refused or could not finish (unparsable head, path or Host,
//     a body over the limit, a malformed chunk) never reached the backend whole, and a backend
//     connection left holding part of a request is closed, never pooled;
//   - an answer says close exactly when the gateway ends the connection, and an open connection
//     has answered every request the client completed (nothing waits forever);
//   - once the client closes, the worker lets go of every connection within bounded work.

#include <rapidjson/document.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/headers.h"
#include "gateway/http/path.h"
#include "gateway/observability/trace_context.h"
#include "gateway/proxy/router.h"
#include "gateway/proxy/upstream_request.h"
#include "gateway/runtime/snapshot.h"
#include "test/fuzz/fuzz_check.h"
#include "test/fuzz/http_reader.h"
#include "test/fuzz/loopback_gateway.h"
#include "test/fuzz/peer_input.h"

namespace gw::fuzz {
namespace {

constexpr const char* kClientIp = "192.0.2.7";
constexpr const char* kTrustedProxyIp = "10.1.2.3";  // inside every variant's trusted_proxies

// Routes that exercise the matcher's forms, a strip ending inside a segment, a rewritten Host,
// a small body limit and both plugin paths (a field list the plugins may edit; a body buffered
// and judged). Variants differ in the `http:` rules and tracing.
constexpr std::string_view kRoutes = R"(
listeners: [{address: 127.0.0.1, port: 1}]
admin: {enabled: false}
access_log: {enabled: false}
limits: {request_line_bytes: 2KiB, header_bytes: 4KiB, header_count: 32, body_bytes: 64KiB}
upstreams:
  - name: u
    backends: [${BACKEND}]
    health_checks: {passive: {consecutive_failures: 0}}
routes:
  - name: schema
    match: {prefix: /schema}
    upstream: u
    plugins:
      - schema_validation:
          schema: {type: object}
          max_body_bytes: 256
  - name: edited
    match: {prefix: /edited}
    upstream: u
    plugins: [security_headers]
  - name: small-body
    match: {prefix: /small, methods: [POST, PUT]}
    upstream: u
    limits: {body_bytes: 16}
  - name: strip
    match: {prefix: /api/}
    upstream: u
    strip_prefix: /ap
  - name: exact
    match: {exact: /exact/}
    upstream: u
    strip_prefix: /exact/
  - name: hosted
    match: {prefix: /, host: "*.example.com", methods: [GET, HEAD, POST]}
    upstream: u
    preserve_host: false
  - name: guarded
    match: {prefix: /admin, methods: [GET]}
    upstream: u
  - name: all
    match: {prefix: /}
    upstream: u
)";

constexpr std::string_view kVariants[] = {
    "http: {escaped_slashes: reject, path_parameters: reject, trusted_proxies: [10.0.0.0/8]}\n",
    "http: {escaped_slashes: keep, path_parameters: strip, underscores_in_headers: allow,\n"
    "       trusted_proxies: [10.0.0.0/8]}\n",
    "http: {escaped_slashes: keep, path_parameters: keep, underscores_in_headers: reject,\n"
    "       trusted_proxies: [10.0.0.0/8]}\n",
    "http: {escaped_slashes: reject, path_parameters: strip, trusted_proxies: [10.0.0.0/8]}\n"
    "tracing: {enabled: false}\n",
};

LoopbackGateway& gateway(std::size_t variant) {
  static LoopbackGateway* kGateways[std::size(kVariants)] = {};
  LoopbackGateway*& gateway = kGateways[variant];
  // Never destroyed: the worker's loop belongs to this thread until the process ends.
  if (!gateway)
    gateway = new LoopbackGateway(std::string(kRoutes) + std::string(kVariants[variant]));
  return *gateway;
}

// Fields the gateway writes itself toward the backend (or answers, for Expect).
bool gatewayField(std::string_view lowerName, bool tracing) {
  for (std::string_view name : {"host", "content-length", "x-forwarded-for", "x-forwarded-proto",
                                "x-forwarded-host", "expect"}) {
    if (lowerName == name) return true;
  }
  return tracing && (lowerName == "traceparent" || lowerName == "tracestate");
}

bool isHex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }
int hexValue(char c) { return c <= '9' ? c - '0' : c - 'A' + 10; }
bool isUnreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void checkNormalForm(std::string_view path, const http::PathRules& rules) {
  FUZZ_REQUIRE(!path.empty() && path.front() == '/', "a normalised path not starting with /");
  std::string again;
  FUZZ_REQUIRE(http::normalisePath(path, again, rules) == http::PathError::None && again == path,
               "normalising a normalised path changes it");
  for (std::size_t i = 0; i < path.size(); ++i) {
    const auto c = static_cast<unsigned char>(path[i]);
    FUZZ_REQUIRE(c > 0x20 && c < 0x7f && c != '#' && c != '?' && c != '\\',
                 "a normalised path holds a byte the rules refuse");
    if (c == '%') {
      FUZZ_REQUIRE(i + 2 < path.size() && isHex(path[i + 1]) && isHex(path[i + 2]),
                   "a normalised path holds a malformed or lower-case escape");
      const int decoded = hexValue(path[i + 1]) * 16 + hexValue(path[i + 2]);
      FUZZ_REQUIRE(decoded != 0 && !isUnreserved(static_cast<char>(decoded)),
                   "a normalised path keeps an escaped unreserved character or %00");
      const std::string escape(path.substr(i, 3));
      if (rules.escaped_slashes == http::EscapedSlashes::Reject) {
        FUZZ_REQUIRE(escape != "%2F" && escape != "%5C", "an escaped slash passed");
      }
      if (rules.path_parameters != http::PathParameters::Keep) {
        FUZZ_REQUIRE(escape != "%3B", "an escaped ';' passed");
      }
    }
    if (rules.path_parameters != http::PathParameters::Keep) {
      FUZZ_REQUIRE(c != ';', "a path parameter passed");
    }
  }
  // Segments: none empty (except the last, after a trailing '/'), none "." or "..".
  std::string_view rest = path.substr(1);
  while (true) {
    const std::size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    // (An escaped dot cannot be left: the escape check above refuses escaped unreserved bytes.)
    FUZZ_REQUIRE(segment != "." && segment != "..", "a dot segment survived normalisation");
    if (slash == std::string_view::npos) break;
    FUZZ_REQUIRE(!segment.empty(), "an empty segment (//) survived normalisation");
    rest = rest.substr(slash + 1);
  }
}

// A field sent to a peer: a token name and a valid value; one framing at most.
void checkHeadFields(const Message& message) {
  for (const auto& [name, value] : message.fields) {
    FUZZ_REQUIRE(http::isToken(name) && http::isValidFieldValue(value),
                 "a field line sent is not a valid one");
  }
  const std::size_t lengths = message.count("content-length");
  const std::size_t codings = message.count("transfer-encoding");
  FUZZ_REQUIRE(lengths + codings <= 1, "a head is framed twice");
}

std::string backendAnswer(std::size_t seq, bool head) {
  return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Backend-Seq: " + std::to_string(seq) +
         "\r\n\r\n" + (head ? "" : "ok");
}

class ClientRun {
 public:
  ClientRun(LoopbackGateway& gateway, bool trusted, bool slowBackend)
      : gateway_(gateway),
        config_(gateway.snapshot().config),
        trusted_(trusted),
        slowBackend_(slowBackend),
        session_(gateway, trusted ? kTrustedProxyIp : kClientIp) {
    session_.onRequestBytes = [this](BackendConnection& connection) { answer(connection); };
  }

  void play(const PeerInput& input) {
    reference_.read(input.bytes);
    session_.backendReads(!slowBackend_);
    input.deliver([&](std::string_view read) {
      const bool taken = session_.send(read);
      session_.pump();
      return taken && !session_.clientEnded();
    });
    session_.backendReads(true);
    session_.pump();
    checkAnswers();
    // The client leaves: a request it had not finished ends with it.
    session_.closeClient();
    session_.pump();
    checkBackendConnections();
  }

 private:
  struct Forwarded {
    const BackendConnection* connection;
    std::size_t index;  // in its connection's requests
  };

  // The backend answers each request it read whole, in the order they came.
  void answer(BackendConnection& connection) {
    const auto& requests = connection.requests.messages();
    while (connection.answered < requests.size() && requests[connection.answered].complete) {
      const bool head = requests[connection.answered].method == "HEAD";
      forwarded_.push_back({&connection, connection.answered});
      session_.answer(connection, backendAnswer(forwarded_.size() - 1, head));
      ++connection.answered;
    }
  }

  void checkAnswers() {
    const std::vector<Message>& sent = reference_.messages();
    std::vector<bool> heads;
    for (const Message& message : sent) heads.push_back(message.method == "HEAD");
    Reader client(HTTP_RESPONSE, heads);
    FUZZ_REQUIRE(client.read(session_.clientReceived()) == HPE_OK,
                 "what the client received does not parse");
    FUZZ_REQUIRE(client.betweenMessages(), "the client holds part of an answer");
    std::size_t answered = 0;  // final answers so far: the n-th answers the n-th request
    std::size_t relayed = 0;   // backend answers so far
    bool saidClose = false;
    for (const Message& answer : client.messages()) {
      checkHeadFields(answer);
      if (answer.status < 200) {
        FUZZ_REQUIRE(answer.status == 100, "the client got a 1xx other than 100 Continue");
        continue;
      }
      FUZZ_REQUIRE(!saidClose, "an answer came after one that said close");
      FUZZ_REQUIRE(answered < sent.size(), "more answers than requests");
      const Message& request = sent[answered++];
      saidClose = http::hasToken(answer.value("connection"), "close");
      if (!request.complete || !request.keepAlive) {
        FUZZ_REQUIRE(saidClose,
                     "the answer to a request that ends the connection does not say close");
      }
      const std::string_view seq = answer.value("x-backend-seq");
      if (seq.empty()) {
        FUZZ_REQUIRE(answer.status >= 400 && answer.status <= 599,
                     "the gateway answered with something other than an error");
        FUZZ_REQUIRE(request.method == "HEAD" || isErrorBody(answer.body),
                     "the gateway's error has no JSON error body");
        continue;
      }
      std::size_t n = 0;
      std::from_chars(seq.data(), seq.data() + seq.size(), n);
      FUZZ_REQUIRE(n == relayed && n < forwarded_.size(),
                   "backend answers reached the client out of order, or one was skipped");
      ++relayed;
      FUZZ_REQUIRE(answer.status == 200 && answer.body == (request.method == "HEAD" ? "" : "ok"),
                   "the backend's answer changed on the way");
      const Forwarded& at = forwarded_[n];
      checkForwarded(request, at.connection->requests.messages()[at.index]);
    }
    FUZZ_REQUIRE(relayed == forwarded_.size(),
                 "a request the backend answered never had its answer reach the client");
    FUZZ_REQUIRE(saidClose == session_.clientEnded(),
                 "the connection ended without an answer saying close, or the reverse");
    if (!session_.clientEnded()) {
      std::size_t completed = 0;
      for (const Message& message : sent) completed += message.complete ? 1 : 0;
      FUZZ_REQUIRE(answered == completed,
                   "an open connection left a complete request unanswered (it would wait forever)");
    }
  }

  // What the backend read for `client`'s request, against what the client sent.
  void checkForwarded(const Message& client, const Message& sent) {
    FUZZ_REQUIRE(client.complete && sent.complete, "an answer relayed for an unfinished request");
    FUZZ_REQUIRE(client.versionMajor == 1 && client.method != "CONNECT",
                 "a request of another HTTP version, or a CONNECT, was forwarded");
    FUZZ_REQUIRE(sent.method == client.method, "the method changed on the way");

    // Where it goes: the absolute form's authority replaces Host.
    std::string_view target = client.target;
    std::string_view host = trimOws(client.value("host"));
    std::size_t hostCount = client.count("host");
    if (target.empty() || target.front() != '/') {
      constexpr std::string_view kHttp = "http://";
      FUZZ_REQUIRE(target.size() > kHttp.size() && http::iequals(target.substr(0, 7), kHttp),
                   "a request target of an unsupported form was forwarded");
      const std::string_view rest = target.substr(kHttp.size());
      const std::size_t slash = rest.find_first_of("/?");
      host = rest.substr(0, slash);
      hostCount = 1;
      target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    }
    FUZZ_REQUIRE(hostCount == 1 || (hostCount == 0 && client.versionMinor == 0),
                 "a request without exactly one Host was forwarded");
    std::string hostLower;
    FUZZ_REQUIRE(hostCount == 0 || http::normaliseHost(host, hostLower),
                 "a request with an invalid Host was forwarded");
    const http::TargetParts parts = http::splitTarget(target);
    std::string path;
    FUZZ_REQUIRE(http::normalisePath(parts.path, path, config_.path_rules) == http::PathError::None,
                 "a request whose path the rules refuse was forwarded");
    checkNormalForm(path, config_.path_rules);
    const auto match = gateway_.snapshot().router->match(hostLower, path, client.method);
    FUZZ_REQUIRE(match.route, "a request no route takes was forwarded");
    const config::RouteConfig& route = *match.route;
    FUZZ_REQUIRE(route.match.kind == config::PathMatch::Exact
                     ? path == route.match.path
                     : http::pathHasPrefix(path, route.match.path),
                 "a route took a path outside its match");
    std::string rewritten;
    const std::string_view forwardedPath = proxy::rewritePath(route, path, rewritten);
    FUZZ_REQUIRE(!forwardedPath.empty() && forwardedPath.front() == '/',
                 "the path sent upstream does not start with /");
    const std::string expectedTarget =
        std::string(forwardedPath) + (parts.has_query ? "?" + std::string(parts.query) : "");
    FUZZ_REQUIRE(sent.target == expectedTarget, "the target sent is not the normalised one");
    const std::string expectedHost =
        route.preserve_host && hostCount ? std::string(host) : gateway_.backendAuthority();
    FUZZ_REQUIRE(sent.count("host") == 1 && sent.value("host") == expectedHost,
                 "the backend did not get exactly the one Host it should");

    // The body, framed by the gateway.
    FUZZ_REQUIRE(client.body.size() <= route.body_bytes, "a body over the route's limit went up");
    FUZZ_REQUIRE(sent.body == client.body, "the body changed on the way");
    checkHeadFields(sent);
    if (sent.count("transfer-encoding")) {
      FUZZ_REQUIRE(sent.value("transfer-encoding") == "chunked" && client.chunked,
                   "a body not sent chunked was forwarded chunked, or with another coding");
    } else if (sent.count("content-length")) {
      FUZZ_REQUIRE(sent.value("content-length") == std::to_string(sent.body.size()),
                   "the Content-Length sent is not the body's length");
    } else {
      FUZZ_REQUIRE(sent.body.empty() && !client.chunked && !client.hasContentLength,
                   "a request with a body was forwarded without framing");
    }
    if (route.name == "schema") checkValidated(client, sent);
    checkForwardedFields(client, sent);
  }

  // On the schema route every request with a body (and every POST, PUT or PATCH) was buffered
  // and judged: only a JSON object goes on, framed by its length.
  void checkValidated(const Message& client, const Message& sent) {
    const bool judged = client.chunked || !client.body.empty() || client.method == "POST" ||
                        client.method == "PUT" || client.method == "PATCH";
    if (!judged) return;
    rapidjson::Document body;
    body.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(
        sent.body.data(), sent.body.size());
    FUZZ_REQUIRE(
        !body.HasParseError() && body.IsObject() && sent.body.find('\0') == std::string::npos,
        "a body the schema refuses reached the backend");
    FUZZ_REQUIRE(sent.count("content-length") == 1, "a judged body went up without its length");
  }

  void checkForwardedFields(const Message& client, const Message& sent) {
    const bool tracing = config_.tracing.enabled;
    const std::vector<std::string> nominated = connectionOptions(client);
    // The client's end-to-end fields, in order: what must arrive unchanged. Via is one of them,
    // and the gateway adds its own after them.
    std::vector<std::pair<std::string_view, std::string_view>> expected;
    std::vector<std::string> forwardedFor;  // the client's chain, element by element
    std::size_t traceParents = 0;
    std::size_t traceStates = 0;
    std::string_view traceParent;
    for (const auto& [name, value] : client.fields) {
      const std::string lowered = lower(name);
      const bool named = contains(nominated, lowered);
      if (lowered == "x-forwarded-for" && !named) addElements(value, forwardedFor);
      if (lowered == "traceparent") {
        ++traceParents;
        traceParent = trimOws(value);
      }
      if (lowered == "tracestate" && !named) ++traceStates;
      if (name.find('_') != std::string::npos) {
        FUZZ_REQUIRE(config_.underscores_in_headers != config::UnderscoreHeaders::Reject,
                     "a request with an underscored field name was forwarded under reject");
        if (config_.underscores_in_headers == config::UnderscoreHeaders::Drop) continue;
      }
      if ((lowered == "x-real-ip" || lowered == "forwarded") && !trusted_) continue;
      if (hopByHop(lowered) || gatewayField(lowered, tracing) || named || lowered == "close") {
        continue;
      }
      expected.emplace_back(name, trimOws(value));
    }
    expected.emplace_back("Via", "1.1 gatewayd");
    std::vector<std::pair<std::string_view, std::string_view>> passed;
    for (const auto& [name, value] : sent.fields) {
      const std::string lowered = lower(name);
      FUZZ_REQUIRE(!hopByHop(lowered) || (lowered == "transfer-encoding" && client.chunked),
                   "a hop-by-hop field was forwarded");
      // "Connection: close" is an option, not the name of a field anyone sends: the gateway
      // drops a field named Close only beside another option (ConnectionTokens::others()).
      if (gatewayField(lowered, tracing) || hopByHop(lowered) || lowered == "close") continue;
      FUZZ_REQUIRE(lowered == "via" || !contains(nominated, lowered),
                   "a field the client's Connection header named was forwarded");
      passed.emplace_back(name, value);
    }
    FUZZ_REQUIRE(passed == expected, "the client's end-to-end fields did not pass unchanged");
    std::vector<std::string> sentForwardedFor;
    addElements(sent.value("x-forwarded-for"), sentForwardedFor);
    forwardedFor.emplace_back(trusted_ ? kTrustedProxyIp : kClientIp);
    FUZZ_REQUIRE(sent.count("x-forwarded-for") == 1 && sentForwardedFor == forwardedFor,
                 "X-Forwarded-For is not the client's chain plus the client");
    FUZZ_REQUIRE(sent.count("x-forwarded-proto") == 1, "X-Forwarded-Proto not sent exactly once");
    if (!tracing) return;
    FUZZ_REQUIRE(sent.count("traceparent") == 1, "the backend did not get one traceparent");
    const auto ours = observability::parseTraceParent(sent.value("traceparent"));
    FUZZ_REQUIRE(ours && ours->version == 0, "the gateway's traceparent does not parse");
    // (A traceparent the client's Connection names is the gateway's to read: it is this hop.)
    const auto theirs =
        traceParents == 1 ? observability::parseTraceParent(traceParent) : std::nullopt;
    if (theirs) {
      FUZZ_REQUIRE(ours->trace_id == theirs->trace_id, "a valid incoming trace was not continued");
      FUZZ_REQUIRE(sent.count("tracestate") == traceStates,
                   "the tracestate of a continued trace did not pass");
    } else {
      FUZZ_REQUIRE(sent.count("tracestate") == 0, "tracestate of an invalid traceparent went on");
    }
  }

  // After the client left: what each backend connection read is whole requests, and one left
  // with part of a request was closed by the gateway, never kept for another.
  void checkBackendConnections() {
    for (const auto& connection : session_.backends()) {
      FUZZ_REQUIRE(connection->error == HPE_OK, "what a backend read does not parse as requests");
      FUZZ_REQUIRE(connection->requests.betweenMessages() || connection->ended,
                   "a backend connection holding part of a request was kept");
      for (const Message& request : connection->requests.messages()) {
        if (request.complete) checkHeadFields(request);
      }
    }
  }

  LoopbackGateway& gateway_;
  const config::Config& config_;
  const bool trusted_;
  const bool slowBackend_;
  Session session_;
  Reader reference_{HTTP_REQUEST};
  std::vector<Forwarded> forwarded_;  // requests the backend read whole, in order
};

}  // namespace
}  // namespace gw::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace gw::fuzz;
  const auto input = PeerInput::of(data, size);
  if (!input) return 0;
  const uint8_t o = input->options;
  ClientRun run(gateway(o & 3), (o & 4) != 0, (o & 8) != 0);
  run.play(*input);
  return 0;
}
