// The client side of the proxy: bytes a client sends on one connection, through what
// proxy/connection.cpp does with them before anything reaches a backend — the request parser
// with the configured head limits, fed read by read into the connection's input buffer (with
// its compaction and the parser's rebase), the head checks (version, CONNECT, Expect, Connection
// options, Host, absolute form), path normalisation under the configured rules, routing and
// prefix stripping, the body limit, buildUpstreamHead() and the body re-framing (raw or
// re-chunked), queued toward the backend in an OutQueue that borrows from the input buffer.
//
// Input: byte 0 picks the configuration (bits 0-1), a backend that reads slowly (bit 2, so
// queued body bytes must survive the input buffer's compaction), the path of a route with
// plugins (bit 3: the head is built from the field list they edit) and a plugin that buffers
// the body (bit 4: the body goes up whole behind a Content-Length, as after
// schema_validation); byte 1 is the size of each read (0: everything in one read); the rest is
// what the client sends.
//
// Invariants (any break aborts):
//   - the parser's view of every head (target, fields) is what an independent strict llhttp
//     reader sees in the same bytes;
//   - what a backend receives for a forwarded request reads, with a strict llhttp parser, as
//     exactly ONE complete request and nothing after it: same method, the normalised (and
//     stripped) target, the body the client sent byte for byte, framed by a Content-Length or
//     chunked coding the gateway chose, exactly one Host, no hop-by-hop field and no field the
//     client's Connection header named, the client's end-to-end fields unchanged and in order,
//     X-Forwarded-For ending with the client's address;
//   - a request refused after its head was forwarded (a body over the limit, a malformed chunk,
//     an invalid Transfer-Encoding) or cut by the client reaches the backend as a prefix of one
//     request, never whole;
//   - the normalised path is in normal form: idempotent, no empty, "." or ".." segment, no byte
//     the rules refuse, and under the prefix of the route that took it;
//   - the input buffer never fills up while nothing is in flight (a connection that would wait
//     forever).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/snapshot.h"
#include "gateway/core/io_buffer.h"
#include "gateway/core/out_queue.h"
#include "gateway/http/headers.h"
#include "gateway/http/parser.h"
#include "gateway/http/path.h"
#include "gateway/observability/trace_context.h"
#include "gateway/proxy/router.h"
#include "gateway/proxy/upstream_request.h"
#include "test/fuzz/fixed_config.h"
#include "test/fuzz/fuzz_check.h"
#include "test/fuzz/http_reader.h"
#include "test/fuzz/peer_input.h"
#include "test/fuzz/socket_sink.h"

namespace gw::fuzz {
namespace {

constexpr std::string_view kClientIp = "192.0.2.7";
constexpr std::string_view kBackendAuthority = "127.0.0.1:9";
// As proxy/connection.cpp: read whenever this much room is free.
constexpr std::size_t kMinRead = 4 * 1024;

// Routes that exercise the matcher's forms, a strip ending inside a segment, a rewritten Host
// and a small body limit. Variants differ in the `http:` path rules and tracing.
constexpr std::string_view kRoutes = R"(
listeners: [{address: 127.0.0.1, port: 1}]
admin: {enabled: false}
access_log: {enabled: false}
limits: {request_line_bytes: 2KiB, header_bytes: 4KiB, header_count: 32, body_bytes: 64KiB}
upstreams:
  - name: u
    backends: [127.0.0.1:9]
routes:
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
    "http: {escaped_slashes: reject, path_parameters: reject}\n",
    "http: {escaped_slashes: keep, path_parameters: strip}\n",
    "http: {escaped_slashes: keep, path_parameters: keep}\n",
    "http: {escaped_slashes: reject, path_parameters: strip}\ntracing: {enabled: false}\n",
};

const config::Snapshot& snapshot(std::size_t variant) {
  static const auto kSnapshots = [] {
    std::vector<std::shared_ptr<const config::Snapshot>> all;
    for (std::string_view rules : kVariants) {
      all.push_back(fixedSnapshot(std::string(kRoutes) + std::string(rules)));
    }
    return all;
  }();
  return *kSnapshots[variant];
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

// One forwarded request: what the backend must end up reading, and what it did read.
struct Exchange {
  const config::RouteConfig* route = nullptr;
  std::size_t index = 0;  // of the client's message, in the reference reader
  std::string method;
  std::string target;  // as forwarded
  std::string host;    // as forwarded
  bool chunked = false;
  std::optional<uint64_t> contentLength;
  bool keepAlive = true;
  std::string traceParent;  // sent by the gateway ("" with tracing off)
  bool keepTraceState = true;
  std::string head;  // upstream head, the backend's Host line not yet inserted
  std::size_t hostSplit = std::string::npos;
  core::OutQueue out;    // toward the backend
  std::string received;  // what the backend read
  std::string body;      // the body as the gateway's parser decoded it
  uint64_t bodyBytes = 0;
  bool chunkOpen = false;
  // On a route with plugins: the head is built from a copy the plugins may edit (the input
  // buffer moves on meanwhile), and a plugin that judges the body has it buffered whole first.
  bool edited = false;
  bool buffered = false;
  proxy::FieldList fields;
  std::string forwardHost, forwardedPath, query;
  bool hasQuery = false;
};

class ClientConnection final : public http::Parser::Handler {
 public:
  // `edited`: the route has plugins (the head is built from their field list); `buffered`: one
  // of them buffers the body (as schema_validation does).
  ClientConnection(const config::Snapshot& snapshot, bool slowBackend, bool edited, bool buffered)
      : snapshot_(snapshot),
        config_(snapshot.config),
        limits_{config_.limits.request_line_bytes, config_.limits.header_bytes,
                config_.limits.header_count},
        parser_(HTTP_REQUEST, this, limits_, &fieldLists_),
        reference_(HTTP_REQUEST),
        slowBackend_(slowBackend),
        edited_(edited || buffered),
        buffered_(buffered) {}

  bool open() const { return open_; }

  // One read from the client socket (proxy::Connection::handleRead).
  void receive(std::string_view bytes) {
    referenceError_ = referenceError_ == HPE_OK ? reference_.read(bytes) : referenceError_;
    while (!bytes.empty() && open_) {
      const std::size_t maxInput = limits_.headerBytes + core::IoBuffer::kClientBlockSize;
      if (!in_.reserve(kMinRead, maxInput)) {
        if (parser_.inHead()) {
          parser_.rebase(in_.compactKeeping(parser_.headStart()));
        } else {
          in_.compact();
        }
        // Here every exchange ends as soon as its request is read, so nothing may hold the
        // buffer: a full one would pause reading with nothing left to resume it.
        FUZZ_REQUIRE(in_.reserve(1, maxInput),
                     "the input buffer is full with nothing in flight: the connection would wait "
                     "forever");
      }
      const std::size_t n = std::min(bytes.size(), in_.writable());
      std::memcpy(in_.writePtr(), bytes.data(), n);
      in_.commit(n);
      bytes.remove_prefix(n);
      processInput();
    }
  }

  // The client closed: a request cut short never completes at the backend.
  void end() {
    if (exchange_) checkCutShort();
  }

  // http::Parser::Handler, as proxy::Connection.
  int onHeadersComplete() override {
    pause_ = Pause::HeadersComplete;
    return HPE_PAUSED;
  }
  int onBody(const char* data, std::size_t length) override {
    if (!exchange_) return 0;
    exchange_->bodyBytes += length;
    if (exchange_->bodyBytes > exchange_->route->body_bytes) return HPE_USER;  // 413
    exchange_->body.append(data, length);
    // Buffered, the body goes up behind a head built once it is whole (finishExchange).
    if (!exchange_->buffered) exchange_->out.borrow(data, length);
    return 0;
  }
  int onChunkHeader(uint64_t length) override {
    if (!exchange_ || length == 0 || exchange_->buffered) return 0;
    char line[24];
    const int n =
        std::snprintf(line, sizeof line, "%llx\r\n", static_cast<unsigned long long>(length));
    exchange_->out.append({line, static_cast<std::size_t>(n)});
    exchange_->chunkOpen = true;
    return 0;
  }
  int onChunkComplete() override {
    if (exchange_ && exchange_->chunkOpen) exchange_->out.append("\r\n");
    if (exchange_) exchange_->chunkOpen = false;
    return 0;
  }
  int onMessageComplete() override {
    if (exchange_ && parser_.chunked() && !exchange_->buffered) exchange_->out.append("0\r\n\r\n");
    pause_ = Pause::MessageComplete;
    return HPE_PAUSED;
  }

 private:
  enum class Pause : uint8_t { None, HeadersComplete, MessageComplete };

  void processInput() {
    parseBuffered();
    if (!open_) return;
    sendUpstream();
    if (!parser_.inHead()) {
      in_.compact();
      if (!exchange_) {
        in_.releaseIfEmpty();
        parser_.shrink();
      }
    }
  }

  void parseBuffered() {
    bool runParser = true;
    while (runParser && open_) {
      runParser = false;
      const auto outcome = parser_.execute(in_.base(), in_.readPtr(), in_.readable());
      in_.consume(outcome.consumed);
      if (outcome.error == HPE_OK) break;
      if (outcome.error != HPE_PAUSED && outcome.error != HPE_PAUSED_UPGRADE) {
        refuse();  // 400/413/414/431 and close
        return;
      }
      const Pause pause = pause_;
      pause_ = Pause::None;
      parser_.resume();
      if (pause == Pause::HeadersComplete) {
        ++messages_;
        startExchange();
      } else if (pause == Pause::MessageComplete && exchange_) {
        finishExchange();
      }
      runParser = true;
    }
  }

  // The backend reads what is queued; unless it is slow, everything. What stays queued must no
  // longer point into the input buffer, which may move now.
  void sendUpstream() {
    if (!exchange_) return;
    if (!slowBackend_) sink_.flushAll(exchange_->out, exchange_->received);
    exchange_->out.retainBorrowed();
  }

  void refuse() {
    if (exchange_) checkCutShort();
    exchange_.reset();
    open_ = false;
  }

  // The exchange ends unfinished: its upstream connection is retired with whatever is still
  // queued (never sent); what the backend already read must not be a whole request.
  void checkCutShort() {
    Reader backend(HTTP_REQUEST);
    FUZZ_REQUIRE(backend.read(exchange_->received) == HPE_OK,
                 "the backend got bytes of a refused request that do not parse");
    FUZZ_REQUIRE(backend.messages().size() <= 1 &&
                     (backend.messages().empty() || !backend.messages()[0].complete),
                 "a refused request reached the backend complete (or as more than one)");
    exchange_.reset();
  }

  // proxy::Connection::startExchange up to forwardRequest().
  void startExchange() {
    const char* base = in_.base();
    checkHeadAgainstReference(base);
    const bool hasBody = parser_.chunked() || parser_.contentLength() > 0;
    const bool keepAlive = parser_.keepAlive();
    auto refuseRequest = [&] { open_ = false; };
    auto decline = [&] {
      if (hasBody || !keepAlive) open_ = false;
    };
    if (parser_.versionMajor() != 1 || parser_.method() == HTTP_CONNECT) return refuseRequest();
    const std::string_view methodName = llhttp_method_name(parser_.method());

    http::ConnectionTokens tokens;
    std::string_view host;
    int hostCount = 0;
    std::string_view traceParent;
    int traceParentCount = 0;
    kinds_.resize(parser_.fieldCount());
    for (std::size_t i = 0; i < parser_.fieldCount(); ++i) {
      const http::FieldName kind = http::classifyField(parser_.fieldName(base, i));
      kinds_[i] = kind;
      switch (kind) {
        case http::FieldName::Host:
          host = parser_.fieldValue(base, i);
          ++hostCount;
          break;
        case http::FieldName::Connection:
          tokens.add(parser_.fieldValue(base, i));
          break;
        case http::FieldName::TraceParent:
          traceParent = parser_.fieldValue(base, i);
          ++traceParentCount;
          break;
        case http::FieldName::Expect:
          if (!http::hasToken(parser_.fieldValue(base, i), "100-continue")) return refuseRequest();
          break;
        default:
          break;
      }
    }
    if (tokens.bad()) return refuseRequest();
    std::optional<observability::TraceHop> hop;
    char upstreamTraceParent[observability::kTraceParentLen];
    if (config_.tracing.enabled) {
      hop = observability::startHop(traceParentCount == 1 ? traceParent : std::string_view(),
                                    traceIds_);
      hop->formatUpstream(upstreamTraceParent);
    }

    std::string_view target = parser_.target(base);
    if (target.empty() || target.front() != '/') {
      constexpr std::string_view kHttp = "http://";
      if (target.size() <= kHttp.size() || !http::iequals(target.substr(0, kHttp.size()), kHttp)) {
        return refuseRequest();
      }
      const std::string_view rest = target.substr(kHttp.size());
      const std::size_t slash = rest.find_first_of("/?");
      host = rest.substr(0, slash);
      hostCount = 1;
      target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
      if (target.front() == '?') return refuseRequest();
    }
    if (hostCount > 1 || (hostCount == 0 && parser_.versionMinor() >= 1)) return refuseRequest();
    std::string hostLower;
    if (hostCount == 1 && !http::normaliseHost(host, hostLower)) return refuseRequest();

    const http::TargetParts parts = http::splitTarget(target);
    std::string path;
    if (http::normalisePath(parts.path, path, config_.path_rules) != http::PathError::None) {
      return refuseRequest();
    }
    checkNormalForm(path, config_.path_rules);

    const auto match = snapshot_.router->match(hostLower, path, methodName);
    if (!match.route) return decline();
    const config::RouteConfig& route = *match.route;
    FUZZ_REQUIRE(route.match.kind == config::PathMatch::Exact
                     ? path == route.match.path
                     : http::pathHasPrefix(path, route.match.path),
                 "a route took a path outside its match");
    if (parser_.hasContentLength() && parser_.contentLength() > route.body_bytes) {
      return refuseRequest();
    }

    auto exchange = std::make_unique<Exchange>();
    exchange->route = &route;
    exchange->index = messages_ - 1;
    exchange->method = methodName;
    exchange->chunked = parser_.chunked();
    if (parser_.hasContentLength() && !parser_.chunked()) {
      exchange->contentLength = parser_.contentLength();
    }
    exchange->keepAlive = keepAlive;
    std::string rewritten;
    const std::string_view forwardedPath = proxy::rewritePath(route, path, rewritten);
    FUZZ_REQUIRE(!forwardedPath.empty() && forwardedPath.front() == '/',
                 "the path sent upstream does not start with /");
    exchange->target = std::string(forwardedPath) +
                       (parts.has_query ? "?" + std::string(parts.query) : std::string());
    exchange->host =
        route.preserve_host && hostCount ? std::string(host) : std::string(kBackendAuthority);
    if (hop) exchange->traceParent.assign(upstreamTraceParent, sizeof upstreamTraceParent);
    exchange->keepTraceState = !hop || hop->continued;

    const std::string_view forwardHost = hostCount ? host : std::string_view();
    if (!edited_) {
      // The fast path: the head is written straight from the parsed fields.
      const proxy::ForwardTarget forward{methodName,
                                         forwardHost,
                                         forwardedPath,
                                         parts.query,
                                         parts.has_query,
                                         exchange->contentLength,
                                         exchange->traceParent,
                                         exchange->keepTraceState};
      queueHead(*exchange, forward, proxy::ParserFields{parser_, base, kinds_, tokens});
      exchange_ = std::move(exchange);
      return;
    }
    // Stream::captureRequest and the copy of the fields plugins see: hop-by-hop ones and those
    // the Connection header names are left out.
    exchange->edited = true;
    exchange->buffered = buffered_;
    exchange->forwardHost = forwardHost;
    exchange->forwardedPath = forwardedPath;
    exchange->query = parts.query;
    exchange->hasQuery = parts.has_query;
    const bool nominated = !tokens.others().empty();
    for (std::size_t i = 0; i < parser_.fieldCount(); ++i) {
      const std::string_view name = parser_.fieldName(base, i);
      if (http::isHopByHop(kinds_[i]) || (nominated && tokens.nominates(name))) continue;
      exchange->fields.add(name, parser_.fieldValue(base, i));
    }
    if (!exchange->buffered) queueEditedHead(*exchange);
    exchange_ = std::move(exchange);
  }

  // Connection::buildUpstreamRequest + queueHead: the backend's Host line goes where the head
  // says; a buffered body follows its head.
  template <typename Fields>
  void queueHead(Exchange& exchange, const proxy::ForwardTarget& forward, const Fields& fields) {
    exchange.hostSplit = proxy::buildUpstreamHead(exchange.head, forward, fields, kClientIp,
                                                  exchange.route->preserve_host, exchange.chunked);
    core::OutQueue& out = exchange.out;
    const std::string& head = exchange.head;
    if (exchange.hostSplit == std::string::npos) {
      out.borrow(head.data(), head.size());
    } else {
      out.borrow(head.data(), exchange.hostSplit);
      out.append("Host: ");
      out.append(kBackendAuthority);
      out.append("\r\n");
      out.borrow(head.data() + exchange.hostSplit, head.size() - exchange.hostSplit);
    }
    if (exchange.buffered) out.borrow(exchange.body.data(), exchange.body.size());
  }

  // Connection::buildPluginUpstreamRequest: from the plugins' copy; a buffered body is framed
  // by its length, however the client framed it.
  void queueEditedHead(Exchange& exchange) {
    if (exchange.buffered) {
      exchange.chunked = false;
      exchange.contentLength = exchange.body.size();
    }
    const proxy::ForwardTarget forward{
        exchange.method,   exchange.forwardHost,   exchange.forwardedPath, exchange.query,
        exchange.hasQuery, exchange.contentLength, exchange.traceParent,   exchange.keepTraceState};
    queueHead(exchange, forward, proxy::ListFields{exchange.fields});
  }

  // The gateway's parser recorded the head where an independent reader of the same bytes sees
  // it, however the reads split it and the buffer moved.
  void checkHeadAgainstReference(const char* base) {
    const auto& seen = reference_.messages();
    FUZZ_REQUIRE(messages_ <= seen.size(), "the gateway parsed a head the reference did not see");
    const Message& message = seen[messages_ - 1];
    FUZZ_REQUIRE(parser_.target(base) == message.target, "the parser recorded a wrong target");
    FUZZ_REQUIRE(parser_.fieldCount() == message.fields.size(),
                 "the parser recorded a wrong number of fields");
    for (std::size_t i = 0; i < parser_.fieldCount(); ++i) {
      FUZZ_REQUIRE(parser_.fieldName(base, i) == message.fields[i].first,
                   "the parser recorded a wrong field name");
      FUZZ_REQUIRE(parser_.fieldValue(base, i) == trimOws(message.fields[i].second),
                   "the parser recorded a wrong field value");
    }
  }

  void finishExchange() {
    Exchange& exchange = *exchange_;
    if (exchange.buffered) queueEditedHead(exchange);  // Connection::finishBufferedRequest
    sink_.flushAll(exchange.out, exchange.received);
    const Message& client = reference_.messages()[exchange.index];
    FUZZ_REQUIRE(client.complete && exchange.body == client.body,
                 "the body the gateway parsed is not the one the client sent");

    Reader backend(HTTP_REQUEST);
    const llhttp_errno_t error = backend.read(exchange.received);
    FUZZ_REQUIRE(error == HPE_OK, "the request sent upstream does not parse");
    FUZZ_REQUIRE(backend.messages().size() == 1 && backend.messages()[0].complete &&
                     backend.betweenMessages(),
                 "the bytes sent upstream are not exactly one complete request");
    const Message& sent = backend.messages()[0];
    FUZZ_REQUIRE(sent.method == exchange.method, "the method changed on the way");
    FUZZ_REQUIRE(sent.target == exchange.target, "the target sent is not the normalised one");
    FUZZ_REQUIRE(sent.body == client.body, "the body changed on the way");
    FUZZ_REQUIRE(sent.count("host") == 1 && sent.value("host") == exchange.host,
                 "the backend did not get exactly the one Host it should");
    if (exchange.chunked) {
      FUZZ_REQUIRE(sent.count("transfer-encoding") == 1 &&
                       sent.value("transfer-encoding") == "chunked" &&
                       sent.count("content-length") == 0,
                   "a chunked body is not framed as chunked alone");
    } else if (exchange.contentLength) {
      FUZZ_REQUIRE(sent.count("content-length") == 1 &&
                       sent.value("content-length") == std::to_string(*exchange.contentLength) &&
                       sent.count("transfer-encoding") == 0,
                   "a body with a length is not framed by that length alone");
    } else {
      FUZZ_REQUIRE(sent.count("content-length") == 0 && sent.count("transfer-encoding") == 0,
                   "a request without a body is sent with framing fields");
    }
    checkForwardedFields(client, sent, exchange);
    if (!exchange.keepAlive) open_ = false;
    exchange_.reset();
  }

  void checkForwardedFields(const Message& client, const Message& sent, const Exchange& exchange) {
    const bool tracing = config_.tracing.enabled;
    const std::vector<std::string> nominated = connectionOptions(client);
    // The client's end-to-end fields, in order: what must arrive unchanged. Via is one of them,
    // and the gateway adds its own after them.
    std::vector<std::pair<std::string_view, std::string_view>> expected;
    std::vector<std::string> forwardedFor;  // the client's chain, element by element
    for (const auto& [name, value] : client.fields) {
      const std::string lowered = lower(name);
      if (lowered == "x-forwarded-for" && !contains(nominated, lowered)) {
        addElements(value, forwardedFor);
      }
      if (hopByHop(lowered) || gatewayField(lowered, tracing) || contains(nominated, lowered) ||
          lowered == "close") {
        continue;
      }
      expected.emplace_back(name, trimOws(value));
    }
    expected.emplace_back("Via", "1.1 gatewayd");
    std::vector<std::pair<std::string_view, std::string_view>> passed;
    for (const auto& [name, value] : sent.fields) {
      const std::string lowered = lower(name);
      FUZZ_REQUIRE(http::isToken(name) && http::isValidFieldValue(value),
                   "a field sent upstream is not a valid field line");
      FUZZ_REQUIRE(!hopByHop(lowered) || (lowered == "transfer-encoding" && exchange.chunked),
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
    forwardedFor.emplace_back(kClientIp);
    FUZZ_REQUIRE(sent.count("x-forwarded-for") == 1 && sentForwardedFor == forwardedFor,
                 "X-Forwarded-For is not the client's chain plus the client");
    FUZZ_REQUIRE(sent.count("x-forwarded-proto") == 1, "X-Forwarded-Proto not sent exactly once");
    if (tracing) {
      FUZZ_REQUIRE(
          sent.count("traceparent") == 1 && sent.value("traceparent") == exchange.traceParent,
          "the backend did not get exactly the gateway's traceparent");
      FUZZ_REQUIRE(exchange.keepTraceState || sent.count("tracestate") == 0,
                   "tracestate of an invalid traceparent was forwarded");
    }
  }

  const config::Snapshot& snapshot_;
  const config::Config& config_;
  const http::HeadLimits limits_;
  http::FieldListRecycler fieldLists_{4};
  core::IoBuffer in_;
  http::Parser parser_;
  Reader reference_;
  llhttp_errno_t referenceError_ = HPE_OK;
  SocketSink sink_;
  observability::TraceIds traceIds_{1};
  std::vector<http::FieldName> kinds_;
  std::unique_ptr<Exchange> exchange_;
  std::size_t messages_ = 0;  // heads completed so far
  Pause pause_ = Pause::None;
  bool slowBackend_;
  bool edited_;
  bool buffered_;
  bool open_ = true;
};

}  // namespace
}  // namespace gw::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace gw::fuzz;
  const auto input = PeerInput::of(data, size);
  if (!input) return 0;
  const uint8_t o = input->options;
  ClientConnection connection(snapshot(o & 3), (o & 4) != 0, (o & 8) != 0, (o & 16) != 0);
  input->deliver([&](std::string_view read) {
    connection.receive(read);
    return connection.open();
  });
  connection.end();
  return 0;
}
