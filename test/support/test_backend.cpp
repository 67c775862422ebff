// test_backend: a scriptable origin server for the integration tests. One thread, poll(),
// HTTP/1.1 keep-alive and pipelining, requests parsed by llhttp. What it answers depends on the
// path (see kUsage); every request it receives is recorded so a test can assert what reached the
// origin, and /__* control paths (stats, request log, reset) are not counted themselves.

#include <arpa/inet.h>
#include <llhttp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: test_backend [--port N] [--id NAME] [--tls-cert PEM --tls-key PEM]\n"
    "prints 'PORT <n>' once listening; with --tls-*, serves HTTPS only (/__stats then also\n"
    "counts tls_handshakes and tls_resumed). Paths:\n"
    "  /echo  /bytes/N  /chunked/N?chunk=K  /close-delimited/N  /delay/MS  /headers-delay/MS\n"
    "  /close-mid/N  /stall-body/MS (stop reading the request body for MS, then echo)\n"
    "  /bad-framing (response with Content-Length and chunked)  /garbage (not HTTP)\n"
    "  /interim (103 Early Hints, then 200)\n"
    "  /close-now  /status/CODE  /head-test  /hop-response   (any other path: /echo)\n"
    "  /close-if-reused (reads the request and closes without answering, unless it is the\n"
    "      connection's first; then /echo)\n"
    "  /powered-by (X-Powered-By: Express and X-Frame-Options: DENY)\n"
    "  /raw?b=BYTES (percent-decoded, sent exactly as the whole answer)&close=1 (then close)\n"
    "  /origin/... a scripted cacheable origin; query parameters (percent-decoded):\n"
    "      status=N  h=Name:%20value (repeatable: extra header)  size=N (generated body)\n"
    "      etag=V (ETag; 304 when If-None-Match matches)  lm=DATE (Last-Modified; 304 when\n"
    "      If-Modified-Since equals it and there is no If-None-Match)  delay=MS\n"
    "      h304=Name:%20value (repeatable: extra header on 304 answers only)\n"
    "      delay_after=N (delay only once this exact target has been answered N times)\n"
    "      fail_after=N (503 once this exact target has been answered N times)\n"
    "      default body: 'origin PATH #K', K counting /origin answers since /__reset\n"
    "  ?only=ID on any of these: only the backend started with --id ID does what the path\n"
    "      says; the others answer as /echo\n"
    "  /__stats  /__reset  /__requests  /__close-idle   (control, not counted)\n"
    "  /__behave?status=N&delay=MS (control): from now on every other request is answered\n"
    "      with status N (0: as its path says) after MS milliseconds (0: at once)\n";

constexpr std::size_t kEchoBodyCap = 1024 * 1024;
constexpr std::size_t kGenerateStep = 64 * 1024;
constexpr std::size_t kReadChunk = 64 * 1024;

using Clock = std::chrono::steady_clock;

struct Request {
  std::string method;
  std::string target;
  std::string version;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // first kEchoBodyCap bytes
  uint64_t body_bytes = 0;
  uint64_t connection_id = 0;
  uint64_t connection_requests = 0;  // 1-based index of this request on its connection
  bool keep_alive = true;
};

// A response body produced on demand, so /bytes/268435456 costs no memory.
struct Generator {
  uint64_t remaining = 0;  // payload bytes still to produce
  uint64_t offset = 0;     // position in the a..z pattern
  uint64_t chunk = 0;      // > 0: chunked framing with chunks of this size
  bool chunked_done = true;
  bool close_after = false;  // drop the connection once the payload is out

  bool active() const { return remaining > 0 || !chunked_done; }
};

struct Stats {
  uint64_t connections = 0;
  uint64_t requests = 0;
  uint64_t bytes = 0;
  uint64_t partial = 0;       // connections closed by the peer in the middle of a request
  uint64_t parse_errors = 0;  // malformed input reached us
  uint64_t tls_handshakes = 0;
  uint64_t tls_resumed = 0;  // of tls_handshakes: a session resumed
};

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;            // --tls-cert: this connection's TLS server side
  bool tls_counted = false;      // its handshake is in the stats
  bool tls_wants_write = false;  // OpenSSL must write before it can read on
  uint64_t id = 0;
  llhttp_t parser{};
  bool control = false;  // first request was a /__ path: excluded from every counter
  bool classified = false;
  bool in_message = false;
  uint64_t bytes_in = 0;
  uint64_t requests = 0;

  Request cur;
  std::string field;
  std::string value;
  bool reading_value = false;

  std::deque<Request> queue;  // complete requests not yet answered (pipelining)
  bool busy = false;          // the front request's response is in progress
  std::optional<Clock::time_point> delay_until;
  std::optional<Clock::time_point> stall_until;  // /stall-body: stop reading the socket until then
  std::string out;
  std::size_t out_off = 0;
  Generator gen;
  bool close_after_response = false;
  bool peer_closed = false;
  bool dead = false;
};

std::string g_id = "backend";
int g_behave_status = 0;        // /__behave?status=N
uint64_t g_behave_delay_ms = 0;  // /__behave?delay=MS
SSL_CTX* g_tls = nullptr;  // --tls-cert/--tls-key
Stats g_stats;
std::vector<std::string> g_log;  // one JSON object per recorded request
std::list<Conn> g_conns;
uint64_t g_next_conn_id = 1;
uint64_t g_origin_answers = 0;                       // /origin answers since the last /__reset
std::map<std::string, uint64_t> g_origin_by_target;  // the same, per exact target

void jsonEscape(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

std::string requestJson(const Request& r, bool with_body) {
  std::string j = "{\"method\":";
  jsonEscape(j, r.method);
  j += ",\"target\":";
  jsonEscape(j, r.target);
  j += ",\"version\":";
  jsonEscape(j, r.version);
  j += ",\"headers\":[";
  for (std::size_t i = 0; i < r.headers.size(); ++i) {
    if (i) j += ',';
    j += '[';
    jsonEscape(j, r.headers[i].first);
    j += ',';
    jsonEscape(j, r.headers[i].second);
    j += ']';
  }
  j += "]";
  if (with_body) {
    j += ",\"body\":";
    jsonEscape(j, r.body);
  }
  j += ",\"body_bytes\":" + std::to_string(r.body_bytes);
  j += ",\"connection_id\":" + std::to_string(r.connection_id);
  j += ",\"connection_requests\":" + std::to_string(r.connection_requests) + "}";
  return j;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::optional<std::string_view> findHeader(const Request& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (iequals(n, name)) return std::string_view(v);
  return std::nullopt;
}

uint64_t parseNumber(std::string_view s) {
  uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') break;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

std::string_view pathOf(std::string_view target) { return target.substr(0, target.find('?')); }

// Every raw (still percent-encoded) value of `key` in the query, in order.
std::vector<std::string_view> queryParams(std::string_view target, std::string_view key) {
  std::vector<std::string_view> values;
  auto q = target.find('?');
  if (q == std::string_view::npos) return values;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    auto eq = kv.find('=');
    if (kv.substr(0, eq) == key)
      values.push_back(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return values;
}

std::optional<std::string_view> queryParam(std::string_view target, std::string_view key) {
  auto values = queryParams(target, key);
  if (values.empty()) return std::nullopt;
  return values.front();
}

// %XX escapes decoded; '+' stays itself (these are not form values) and a malformed escape is
// kept literally.
std::string percentDecode(std::string_view s) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::string> decodedParam(std::string_view target, std::string_view key) {
  auto raw = queryParam(target, key);
  if (!raw) return std::nullopt;
  return percentDecode(*raw);
}

// Path "/prefix/REST" -> REST, else nullopt.
std::optional<std::string_view> suffixAfter(std::string_view path, std::string_view prefix) {
  if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
  return path.substr(prefix.size());
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 410:
      return "Gone";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// Appends a response head; body_length < 0 means "no Content-Length" (chunked or bodiless).
void appendHead(Conn& c, const Request& r, int status, long long body_length,
                std::string_view content_type, std::string_view extra = {}) {
  std::string& o = c.out;
  o += "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) + "\r\n";
  o += "X-Backend-Id: " + g_id + "\r\n";
  if (!content_type.empty()) o += "Content-Type: " + std::string(content_type) + "\r\n";
  if (body_length >= 0) o += "Content-Length: " + std::to_string(body_length) + "\r\n";
  o += extra;
  if (!r.keep_alive) o += "Connection: close\r\n";
  o += "\r\n";
}

void respond(Conn& c, const Request& r, int status, std::string_view body,
             std::string_view content_type = "text/plain", std::string_view extra = {}) {
  bool bodiless = status == 204 || status == 304 || (status >= 100 && status < 200);
  appendHead(c, r, status, bodiless ? -1 : static_cast<long long>(body.size()),
             bodiless ? std::string_view{} : content_type, extra);
  if (!bodiless && r.method != "HEAD") c.out += body;
}

std::string statsJson() {
  uint64_t open = 0;
  for (const Conn& c : g_conns)
    if (!c.control && !c.dead) ++open;
  return "{\"connections\":" + std::to_string(g_stats.connections) +
         ",\"requests\":" + std::to_string(g_stats.requests) + ",\"open\":" + std::to_string(open) +
         ",\"bytes\":" + std::to_string(g_stats.bytes) +
         ",\"partial\":" + std::to_string(g_stats.partial) +
         ",\"parse_errors\":" + std::to_string(g_stats.parse_errors) +
         ",\"tls_handshakes\":" + std::to_string(g_stats.tls_handshakes) +
         ",\"tls_resumed\":" + std::to_string(g_stats.tls_resumed) + "}";
}

void closeConn(Conn& c) {
  if (c.dead) return;
  if (c.in_message && !c.control) ++g_stats.partial;
  if (c.ssl) {
    if (SSL_is_init_finished(c.ssl)) SSL_shutdown(c.ssl);  // close_notify, as servers send
    SSL_free(c.ssl);
    ERR_clear_error();
    c.ssl = nullptr;
  }
  ::close(c.fd);
  c.dead = true;
}

// Closes every keep-alive connection that has nothing in flight: lets a test make a pooled
// upstream connection go stale under the proxy.
void closeIdle(const Conn& except) {
  for (Conn& c : g_conns)
    if (&c != &except && !c.dead && !c.control && !c.busy && c.queue.empty() && !c.in_message)
      closeConn(c);
}

bool isOriginPath(std::string_view path) {
  return path == "/origin" || path.starts_with("/origin/");
}

// An entity tag without its weakness marker, for the weak comparison of RFC 9110 8.8.3.2.
std::string_view opaqueTag(std::string_view tag) {
  while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
  while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag;
}

bool noneMatchHits(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    auto comma = if_none_match.find(',');
    std::string_view member = opaqueTag(if_none_match.substr(0, comma));
    if (member == "*" || member == opaqueTag(etag)) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

// The scripted origin (see kUsage): the answer is shaped by the query, validators are honoured,
// and the default body names the answer's rank so a test can tell a fresh fetch from a copy.
void answerOrigin(Conn& c, const Request& r) {
  const uint64_t rank = ++g_origin_answers;
  const uint64_t target_answers = ++g_origin_by_target[r.target];
  std::string extra;
  bool has_content_type = false;
  for (std::string_view raw : queryParams(r.target, "h")) {
    std::string line = percentDecode(raw);
    has_content_type |= iequals(std::string_view(line).substr(0, line.find(':')), "Content-Type");
    extra += line + "\r\n";
  }
  const auto etag = decodedParam(r.target, "etag");
  const auto last_modified = decodedParam(r.target, "lm");
  if (etag) extra += "ETag: " + *etag + "\r\n";
  if (last_modified) extra += "Last-Modified: " + *last_modified + "\r\n";
  const std::string_view content_type = has_content_type ? "" : "text/plain";

  if (auto n = queryParam(r.target, "fail_after"); n && target_answers > parseNumber(*n))
    return respond(c, r, 503, "origin failing\n", content_type, extra);
  const auto if_none_match = findHeader(r, "If-None-Match");
  const auto if_modified_since = findHeader(r, "If-Modified-Since");
  const bool not_modified =
      if_none_match ? etag && noneMatchHits(*if_none_match, *etag)
                    : last_modified && if_modified_since && *if_modified_since == *last_modified;
  if (not_modified) {
    for (std::string_view raw : queryParams(r.target, "h304")) extra += percentDecode(raw) + "\r\n";
    return respond(c, r, 304, "", content_type, extra);
  }

  int status = 200;
  if (auto code = queryParam(r.target, "status")) status = static_cast<int>(parseNumber(*code));
  if (auto size = queryParam(r.target, "size")) {
    const uint64_t len = parseNumber(*size);
    appendHead(c, r, status, static_cast<long long>(len), content_type, extra);
    if (r.method != "HEAD") c.gen = Generator{len, 0, 0, true, false};
    return;
  }
  respond(c, r, status, "origin " + std::string(pathOf(r.target)) + " #" + std::to_string(rank),
          content_type, extra);
}

// Starts answering the front request of the queue.
void startResponse(Conn& c) {
  Request& r = c.queue.front();
  c.busy = true;
  c.close_after_response = !r.keep_alive;
  std::string_view path = pathOf(r.target);

  if (path == "/__stats") return respond(c, r, 200, statsJson(), "application/json");
  if (path == "/__reset") {
    g_stats = Stats{};
    g_log.clear();
    g_origin_answers = 0;
    g_origin_by_target.clear();
    return respond(c, r, 200, "{}", "application/json");
  }
  if (path == "/__requests") {
    std::string j = "[";
    for (std::size_t i = 0; i < g_log.size(); ++i) j += (i ? "," : "") + g_log[i];
    j += "]";
    return respond(c, r, 200, j, "application/json");
  }
  if (path == "/__close-idle") {
    closeIdle(c);
    return respond(c, r, 200, "{}", "application/json");
  }
  // ?only=ID: the path does what it says on the backend with that --id; the others echo.
  if (auto only = queryParam(r.target, "only"); only && *only != g_id) {
    return respond(c, r, 200, requestJson(r, true), "application/json");
  }
  if (path == "/__behave") {
    const auto status = queryParam(r.target, "status");
    const auto delay = queryParam(r.target, "delay");
    g_behave_status = status ? static_cast<int>(parseNumber(*status)) : 0;
    g_behave_delay_ms = delay ? parseNumber(*delay) : 0;
    return respond(c, r, 200, "{}", "application/json");
  }
  if (g_behave_delay_ms != 0) {
    c.delay_until = Clock::now() + std::chrono::milliseconds(g_behave_delay_ms);
    return;  // answered by the timer in pumpTimers()
  }
  if (g_behave_status >= 200 && g_behave_status <= 999) {
    return respond(c, r, g_behave_status, "behave " + std::to_string(g_behave_status) + "\n");
  }
  if (auto n = suffixAfter(path, "/bytes/")) {
    uint64_t len = parseNumber(*n);
    appendHead(c, r, 200, static_cast<long long>(len), "application/octet-stream");
    if (r.method != "HEAD") c.gen = Generator{len, 0, 0, true, false};
    return;
  }
  if (auto n = suffixAfter(path, "/chunked/")) {
    uint64_t len = parseNumber(*n);
    uint64_t k = 1024;
    if (auto q = queryParam(r.target, "chunk")) k = std::max<uint64_t>(1, parseNumber(*q));
    appendHead(c, r, 200, -1, "application/octet-stream", "Transfer-Encoding: chunked\r\n");
    if (r.method != "HEAD") c.gen = Generator{len, 0, k, false, false};
    return;
  }
  if (isOriginPath(path)) {
    const auto delay_after = queryParam(r.target, "delay_after");
    const bool delayed = !delay_after || g_origin_by_target[r.target] >= parseNumber(*delay_after);
    if (auto delay = queryParam(r.target, "delay"); delay && delayed) {
      c.delay_until = Clock::now() + std::chrono::milliseconds(parseNumber(*delay));
      return;  // answered by the timer in pumpTimers()
    }
    return answerOrigin(c, r);
  }
  std::optional<std::string_view> ms = suffixAfter(path, "/delay/");
  if (!ms) ms = suffixAfter(path, "/headers-delay/");
  if (ms) {
    c.delay_until = Clock::now() + std::chrono::milliseconds(parseNumber(*ms));
    return;  // answered by the timer in pumpTimers()
  }
  if (auto n = suffixAfter(path, "/close-delimited/")) {
    // HTTP/1.0-style framing: no Content-Length, the end of the body is the close.
    appendHead(c, r, 200, -1, "application/octet-stream", "Connection: close\r\n");
    c.gen = Generator{parseNumber(*n), 0, 0, true, true};
    return;
  }
  if (auto n = suffixAfter(path, "/close-mid/")) {
    uint64_t len = parseNumber(*n);
    appendHead(c, r, 200, static_cast<long long>(len), "application/octet-stream");
    c.gen = Generator{len / 2, 0, 0, true, true};
    return;
  }
  if (path == "/close-now") {
    closeConn(c);
    return;
  }
  if (path == "/close-if-reused" && c.requests > 1) {  // a keep-alive peer that went away late
    closeConn(c);
    return;
  }
  if (auto code = suffixAfter(path, "/status/")) {
    int status = static_cast<int>(parseNumber(*code));
    if (status < 200 || status > 999) status = 500;
    return respond(c, r, status, "status " + std::to_string(status) + "\n");
  }
  if (path == "/head-test") return respond(c, r, 200, std::string(100, 'h'));
  if (path == "/interim") {  // an unsolicited 1xx before the real answer
    c.out += "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
    return respond(c, r, 200, "final\n");
  }
  if (path == "/bad-framing") {
    c.out +=
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n";
    return;
  }
  if (path == "/garbage") {
    c.out += "this is not an HTTP response\r\n\r\n";
    c.close_after_response = true;
    return;
  }
  if (path == "/hop-response") {
    return respond(c, r, 200, "hop\n", "text/plain",
                   "Connection: X-Custom-Hop\r\nX-Custom-Hop: secret\r\n"
                   "Keep-Alive: timeout=30\r\nProxy-Connection: keep-alive\r\n"
                   "Trailer: X-Trailer\r\nUpgrade: foo/1\r\nX-End-To-End: kept\r\n");
  }
  if (path == "/raw") {  // a hostile or broken backend: exactly these bytes, nothing else
    c.out += decodedParam(r.target, "b").value_or("");
    c.close_after_response = c.close_after_response || queryParam(r.target, "close").has_value();
    return;
  }
  if (path == "/powered-by") {  // an Express app: advertises itself, sets one helmet header
    return respond(c, r, 200, "powered\n", "text/plain",
                   "X-Powered-By: Express\r\nX-Frame-Options: DENY\r\n");
  }
  respond(c, r, 200, requestJson(r, true), "application/json");  // any other path: echo
}

// kGenerateStep bytes of the a..z pattern plus one period, so any offset can be copied at once.
const std::string& patternBlock() {
  static const std::string block = [] {
    std::string b(kGenerateStep + 26, '\0');
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>('a' + i % 26);
    return b;
  }();
  return block;
}

// Produces the next piece of a generated body into c.out.
void generate(Conn& c) {
  Generator& g = c.gen;
  std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(g.remaining, kGenerateStep));
  if (g.chunk > 0) n = static_cast<std::size_t>(std::min<uint64_t>(n, g.chunk));
  if (g.chunk > 0 && n > 0) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "%zx\r\n", n);
    c.out += hex;
  }
  c.out.append(patternBlock().data() + g.offset % 26, n);
  g.offset += n;
  g.remaining -= n;
  if (g.chunk > 0) {
    if (n > 0) c.out += "\r\n";
    if (g.remaining == 0 && !g.chunked_done) {
      c.out += "0\r\n\r\n";
      g.chunked_done = true;
    }
  }
}

void finishResponse(Conn& c);

// As recv(2)/send(2) on the connection, through TLS when it has it.
ssize_t tlsOutcome(Conn& c, int result, std::size_t done) {
  if (!c.tls_counted && SSL_is_init_finished(c.ssl)) {
    c.tls_counted = true;
    ++g_stats.tls_handshakes;
    if (SSL_session_reused(c.ssl)) ++g_stats.tls_resumed;
  }
  if (result == 1) return static_cast<ssize_t>(done);
  const int error = SSL_get_error(c.ssl, result);
  ERR_clear_error();
  if (error == SSL_ERROR_ZERO_RETURN) return 0;
  c.tls_wants_write = error == SSL_ERROR_WANT_WRITE;
  errno = error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE ? EAGAIN : ECONNRESET;
  return -1;
}

ssize_t receiveSome(Conn& c, char* buf, std::size_t size) {
  if (!c.ssl) return ::recv(c.fd, buf, size, 0);
  std::size_t n = 0;
  const int result = SSL_read_ex(c.ssl, buf, size, &n);
  return tlsOutcome(c, result, n);
}

ssize_t sendSome(Conn& c, const char* data, std::size_t size) {
  if (!c.ssl) return ::send(c.fd, data, size, MSG_NOSIGNAL);
  std::size_t n = 0;
  const int result = SSL_write_ex(c.ssl, data, size, &n);
  return tlsOutcome(c, result, n);
}

// Writes as much as the socket takes; generates more body only once the previous piece left.
void pump(Conn& c) {
  while (!c.dead) {
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
      if (c.gen.active()) {
        generate(c);
        continue;
      }
      if (c.busy && !c.delay_until) finishResponse(c);
      if (c.out.empty()) return;
      continue;
    }
    ssize_t n = sendSome(c, c.out.data() + c.out_off, c.out.size() - c.out_off);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      closeConn(c);
      return;
    }
    c.out_off += static_cast<std::size_t>(n);
  }
}

void finishResponse(Conn& c) {
  bool close_mid = c.gen.close_after;
  c.gen = Generator{};
  c.busy = false;
  c.queue.pop_front();
  if (close_mid || c.close_after_response) {
    closeConn(c);
    return;
  }
  if (!c.queue.empty()) {
    startResponse(c);
  } else if (c.peer_closed) {
    closeConn(c);
  }
}

// --- llhttp callbacks -------------------------------------------------------------------------

Conn& connOf(llhttp_t* p) { return *static_cast<Conn*>(p->data); }

void flushHeader(Conn& c) {
  if (!c.field.empty() || c.reading_value) c.cur.headers.emplace_back(c.field, c.value);
  c.field.clear();
  c.value.clear();
  c.reading_value = false;
}

int onMessageBegin(llhttp_t* p) {
  Conn& c = connOf(p);
  c.cur = Request{};
  c.field.clear();
  c.value.clear();
  c.reading_value = false;
  c.in_message = true;
  return 0;
}

int onUrl(llhttp_t* p, const char* at, std::size_t len) {
  connOf(p).cur.target.append(at, len);
  return 0;
}

int onHeaderField(llhttp_t* p, const char* at, std::size_t len) {
  Conn& c = connOf(p);
  if (c.reading_value) flushHeader(c);
  c.field.append(at, len);
  return 0;
}

int onHeaderValue(llhttp_t* p, const char* at, std::size_t len) {
  Conn& c = connOf(p);
  c.reading_value = true;
  c.value.append(at, len);
  return 0;
}

int onHeadersComplete(llhttp_t* p) {
  Conn& c = connOf(p);
  flushHeader(c);
  Request& r = c.cur;
  r.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  r.version = std::to_string(p->http_major) + "." + std::to_string(p->http_minor);
  r.keep_alive = llhttp_should_keep_alive(p) != 0;
  if (!c.classified) {
    c.classified = true;
    if (pathOf(r.target).substr(0, 3) == "/__") {
      c.control = true;
      --g_stats.connections;
      g_stats.bytes -= c.bytes_in;
    }
  }
  if (auto ms = suffixAfter(pathOf(r.target), "/stall-body/"))
    c.stall_until = Clock::now() + std::chrono::milliseconds(parseNumber(*ms));
  auto expect = findHeader(r, "Expect");
  if (expect && iequals(*expect, "100-continue") && c.queue.empty() && !c.busy)
    c.out += "HTTP/1.1 100 Continue\r\n\r\n";
  return 0;
}

int onBody(llhttp_t* p, const char* at, std::size_t len) {
  Request& r = connOf(p).cur;
  r.body_bytes += len;
  if (r.body.size() < kEchoBodyCap) r.body.append(at, std::min(len, kEchoBodyCap - r.body.size()));
  return 0;
}

int onMessageComplete(llhttp_t* p) {
  Conn& c = connOf(p);
  c.in_message = false;
  Request& r = c.cur;
  r.connection_id = c.id;
  r.connection_requests = ++c.requests;
  if (pathOf(r.target).substr(0, 3) != "/__") {
    ++g_stats.requests;
    g_log.push_back(requestJson(r, false));
  }
  c.queue.push_back(std::move(r));
  c.cur = Request{};
  return 0;
}

llhttp_settings_t g_settings;

void initSettings() {
  llhttp_settings_init(&g_settings);
  g_settings.on_message_begin = onMessageBegin;
  g_settings.on_url = onUrl;
  g_settings.on_header_field = onHeaderField;
  g_settings.on_header_value = onHeaderValue;
  g_settings.on_headers_complete = onHeadersComplete;
  g_settings.on_body = onBody;
  g_settings.on_message_complete = onMessageComplete;
}

void onReadable(Conn& c) {
  char buf[kReadChunk];
  for (;;) {
    ssize_t n = receiveSome(c, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      closeConn(c);
      return;
    }
    if (n == 0) {
      c.peer_closed = true;
      if (!c.busy && c.queue.empty()) closeConn(c);
      return;
    }
    c.bytes_in += static_cast<uint64_t>(n);
    if (!c.control) g_stats.bytes += static_cast<uint64_t>(n);
    llhttp_errno_t err = llhttp_execute(&c.parser, buf, static_cast<std::size_t>(n));
    if (err != HPE_OK) {
      if (!c.control) ++g_stats.parse_errors;
      std::fprintf(stderr, "test_backend %s: parse error %s (%s)\n", g_id.c_str(),
                   llhttp_errno_name(err), llhttp_get_error_reason(&c.parser));
      c.in_message = false;
      closeConn(c);
      return;
    }
    // A TLS read returns one record at most: read on until EAGAIN.
    if ((!c.ssl && static_cast<std::size_t>(n) < sizeof buf) || c.stall_until) break;
  }
  if (!c.busy && !c.queue.empty()) startResponse(c);
}

void pumpTimers() {
  auto now = Clock::now();
  for (Conn& c : g_conns) {
    if (c.stall_until && *c.stall_until <= now) c.stall_until.reset();
    if (c.dead || !c.delay_until || *c.delay_until > now) continue;
    c.delay_until.reset();
    const Request& r = c.queue.front();
    if (isOriginPath(pathOf(r.target)))
      answerOrigin(c, r);
    else
      respond(c, r, 200, "delayed " + std::string(pathOf(r.target)) + "\n");
    pump(c);
  }
}

int pollTimeoutMs() {
  int timeout = 1000;
  auto now = Clock::now();
  for (const Conn& c : g_conns) {
    for (const auto& deadline : {c.delay_until, c.stall_until}) {
      if (c.dead || !deadline) continue;
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(*deadline - now).count();
      timeout = std::min<int>(timeout, static_cast<int>(std::max<long long>(0, ms)));
    }
  }
  return timeout;
}

void acceptAll(int lfd) {
  for (;;) {
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Conn& c = g_conns.emplace_back();
    c.fd = fd;
    c.id = g_next_conn_id++;
    llhttp_init(&c.parser, HTTP_REQUEST, &g_settings);
    c.parser.data = &c;
    if (g_tls) {
      c.ssl = SSL_new(g_tls);
      SSL_set_fd(c.ssl, fd);
      SSL_set_accept_state(c.ssl);
    }
    ++g_stats.connections;
  }
}

int listenOn(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1024) != 0) {
    std::perror("test_backend: bind/listen");
    std::exit(1);
  }
  return fd;
}

uint16_t boundPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

}  // namespace

int main(int argc, char** argv) {
  uint16_t port = 0;
  const char* tls_cert = nullptr;
  const char* tls_key = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--port" && i + 1 < argc) {
      port = static_cast<uint16_t>(std::atoi(argv[++i]));
    } else if (a == "--id" && i + 1 < argc) {
      g_id = argv[++i];
    } else if (a == "--tls-cert" && i + 1 < argc) {
      tls_cert = argv[++i];
    } else if (a == "--tls-key" && i + 1 < argc) {
      tls_key = argv[++i];
    } else {
      std::fputs(kUsage, a == "--help" ? stdout : stderr);
      return a == "--help" ? 0 : 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  if (tls_cert || tls_key) {
    g_tls = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_mode(g_tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!tls_cert || !tls_key ||
        SSL_CTX_use_certificate_chain_file(g_tls, tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(g_tls, tls_key, SSL_FILETYPE_PEM) != 1) {
      std::fputs("test_backend: --tls-cert and --tls-key must name a usable PEM pair\n", stderr);
      return 2;
    }
  }
  initSettings();
  int lfd = listenOn(port);
  std::printf("PORT %u\n", boundPort(lfd));
  std::fflush(stdout);

  std::vector<pollfd> fds;
  std::vector<Conn*> owners;
  for (;;) {
    fds.clear();
    owners.clear();
    fds.push_back({lfd, POLLIN, 0});
    owners.push_back(nullptr);
    for (Conn& c : g_conns) {
      short ev = c.stall_until ? 0 : POLLIN;
      if (c.out_off < c.out.size() || c.tls_wants_write) ev |= POLLOUT;
      fds.push_back({c.fd, ev, 0});
      owners.push_back(&c);
    }
    int n = ::poll(fds.data(), fds.size(), pollTimeoutMs());
    if (n < 0 && errno != EINTR) {
      std::perror("test_backend: poll");
      return 1;
    }
    if (fds[0].revents & POLLIN) acceptAll(lfd);
    for (std::size_t i = 1; i < fds.size(); ++i) {
      Conn& c = *owners[i];
      if (c.dead) continue;
      const bool readable = fds[i].revents & (POLLIN | POLLHUP | POLLERR) ||
                            (c.tls_wants_write && (fds[i].revents & POLLOUT));
      if (readable && !c.stall_until) onReadable(c);
      if (!c.dead) pump(c);
    }
    pumpTimers();
    g_conns.remove_if([](const Conn& c) { return c.dead; });
  }
}
