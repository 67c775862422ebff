#include "gateway/observability/otlp_exporter.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <iterator>
#include <optional>

#include "gateway/core/json.h"
#include "gateway/net/socket.h"

namespace gw::observability {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kDefaultPath = "/v1/traces";
constexpr int kSpanKindServer = 2;
constexpr int kStatusCodeError = 2;

void appendUint(std::string& out, uint64_t v) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void appendHexId(std::string& out, const TraceId& id) {
  char buf[kTraceIdHexLen];
  formatTraceId(id, buf);
  out.append(buf, sizeof(buf));
}

void appendHexId(std::string& out, SpanId id) {
  char buf[kSpanIdHexLen];
  formatSpanId(id, buf);
  out.append(buf, sizeof(buf));
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 (overlongs, surrogates and code
// points past U+10FFFF are invalid).
std::size_t utf8SequenceLength(std::string_view text, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char b0 = byte(i);
  std::size_t len = b0 >= 0xf0 ? 4 : b0 >= 0xe0 ? 3 : b0 >= 0xc2 ? 2 : 0;
  if (b0 > 0xf4 || len == 0 || i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  unsigned char b1 = byte(i + 1);
  if ((b0 == 0xe0 && b1 < 0xa0) || (b0 == 0xed && b1 >= 0xa0) || (b0 == 0xf0 && b1 < 0x90) ||
      (b0 == 0xf4 && b1 >= 0x90)) {
    return 0;
  }
  return len;
}

// A JSON string. Bytes that are not UTF-8 (a raw path can hold anything) become U+FFFD: one such
// byte would otherwise make the collector reject the whole batch.
void appendQuoted(std::string& out, std::string_view text) {
  out += '"';
  std::size_t run = 0;  // start of the pending valid run
  std::size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = utf8SequenceLength(text, i);
    if (len != 0) {
      i += len;
      continue;
    }
    core::appendJsonEscaped(out, text.substr(run, i - run));
    out += "\\ufffd";
    run = ++i;
  }
  core::appendJsonEscaped(out, text.substr(run));
  out += '"';
}

// The attribute list is comma-separated; first tells whether a comma is due.
void appendStringAttribute(std::string& out, bool& first, std::string_view key,
                           std::string_view value) {
  if (value.empty()) return;
  if (!first) out += ',';
  first = false;
  out += "{\"key\":\"";
  out += key;
  out += "\",\"value\":{\"stringValue\":";
  appendQuoted(out, value);
  out += "}}";
}

// int64 is a decimal string in the protobuf JSON mapping.
void appendIntAttribute(std::string& out, bool& first, std::string_view key, uint64_t value) {
  if (!first) out += ',';
  first = false;
  out += "{\"key\":\"";
  out += key;
  out += "\",\"value\":{\"intValue\":\"";
  appendUint(out, value);
  out += "\"}}";
}

void appendSpan(std::string& out, const SpanRecord& s) {
  out += "{\"traceId\":\"";
  appendHexId(out, s.trace_id);
  out += "\",\"spanId\":\"";
  appendHexId(out, s.span_id);
  out += '"';
  if (s.parent_span_id != 0) {
    out += ",\"parentSpanId\":\"";
    appendHexId(out, s.parent_span_id);
    out += '"';
  }
  out += ",\"name\":";
  appendQuoted(out, s.name);
  out += ",\"kind\":";
  appendUint(out, kSpanKindServer);
  out += ",\"startTimeUnixNano\":\"";
  appendUint(out, s.start_unix_nanos);
  out += "\",\"endTimeUnixNano\":\"";
  appendUint(out, s.end_unix_nanos);
  out += "\",\"attributes\":[";
  bool first = true;
  appendStringAttribute(out, first, "http.request.method", s.method);
  appendStringAttribute(out, first, "url.path", s.path);
  appendStringAttribute(out, first, "http.route", s.route);
  if (s.status_code > 0) {
    appendIntAttribute(out, first, "http.response.status_code",
                       static_cast<uint64_t>(s.status_code));
  }
  appendStringAttribute(out, first, "server.address", s.server_address);
  appendStringAttribute(out, first, "client.address", s.client_address);
  appendStringAttribute(out, first, "gatewayd.upstream", s.upstream);
  appendStringAttribute(out, first, "gatewayd.request_id", s.request_id);
  // Server spans leave the status unset below 500 (semantic conventions: 4xx is the client's).
  out += "],\"status\":{";
  if (s.status_code >= 500) {
    out += "\"code\":";
    appendUint(out, kStatusCodeError);
  }
  out += "}}";
}

bool validHostChar(char c, bool bracketed) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
      c == '-') {
    return true;
  }
  return bracketed && (c == ':' || c == '%');
}

core::Error endpointError(std::string_view url, std::string_view why) {
  std::string message = "invalid OTLP endpoint '";
  message += url;
  message += "': ";
  message += why;
  return core::Error::internal(std::move(message));
}

void setTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

net::Fd connectOne(const addrinfo& ai, std::chrono::milliseconds timeout) {
  net::SocketAddress address;
  std::memcpy(&address.storage, ai.ai_addr, ai.ai_addrlen);
  address.length = ai.ai_addrlen;
  int err = 0;
  net::Fd fd = net::connectNonBlocking(address, err);
  if (!fd.valid() || err != 0) return {};
  pollfd p{fd.get(), POLLOUT, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (rc < 0 && errno == EINTR);
  if (rc <= 0) return {};
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return {};
  int flags = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  setTimeouts(fd.get(), timeout);
  return fd;
}

// Resolves on every export (the collector may move), tries each address with a bounded connect,
// and leaves the socket blocking with send/receive timeouts.
net::Fd connectWithTimeout(const OtlpEndpoint& endpoint, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  char service[8];
  auto [end, ec] = std::to_chars(service, service + sizeof(service) - 1, endpoint.port);
  *end = '\0';
  if (::getaddrinfo(endpoint.host.c_str(), service, &hints, &found) != 0) return {};
  net::Fd fd;
  for (const addrinfo* ai = found; ai != nullptr && !fd.valid(); ai = ai->ai_next) {
    fd = connectOne(*ai, timeout);
  }
  ::freeaddrinfo(found);
  return fd;
}

bool sendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // error or SO_SNDTIMEO expired
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Reads up to the end of the status line and returns the status, or 0.
int readStatus(int fd) {
  char buf[256];
  std::size_t have = 0;
  while (have < sizeof(buf)) {
    ssize_t n = ::recv(fd, buf + have, sizeof(buf) - have, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // closed, error or SO_RCVTIMEO expired
    have += static_cast<std::size_t>(n);
    std::string_view line(buf, have);
    if (line.find("\r\n") == std::string_view::npos) continue;
    // "HTTP/1.1 200 OK"
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return 0;
    int status = 0;
    auto [ptr, ec] = std::from_chars(buf + 9, buf + 12, status);
    return ec == std::errc() && ptr == buf + 12 ? status : 0;
  }
  return 0;
}

// Zero batch size or flush interval would make the sender spin.
OtlpExporterOptions sane(OtlpExporterOptions o) {
  o.batch_size = std::max<std::size_t>(o.batch_size, 1);
  o.queue_capacity = std::max<std::size_t>(o.queue_capacity, 1);
  o.flush_interval = std::max(o.flush_interval, std::chrono::milliseconds(1));
  return o;
}

}  // namespace

core::Result<OtlpEndpoint> parseOtlpEndpoint(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, 8) == "https://") return endpointError(url, "https is not supported yet");
  if (url.substr(0, kScheme.size()) != kScheme) {
    return endpointError(url, "must start with http://");
  }
  std::string_view rest = url.substr(kScheme.size());
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? kDefaultPath : rest.substr(slash);
  for (char c : path) {
    if (c <= 0x20 || c >= 0x7f || c == '#') return endpointError(url, "bad character in path");
  }

  OtlpEndpoint endpoint;
  std::string_view host;
  std::string_view port;
  bool bracketed = !authority.empty() && authority.front() == '[';
  if (bracketed) {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return endpointError(url, "unterminated [IPv6] host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return endpointError(url, "junk after ]");
      port = after.substr(1);
      if (port.empty()) return endpointError(url, "empty port");
    }
  } else {
    std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return endpointError(url, "empty port");
    }
  }
  if (host.empty()) return endpointError(url, "missing host");
  for (char c : host) {
    if (!validHostChar(c, bracketed)) return endpointError(url, "bad character in host");
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
      return endpointError(url, "port must be 1..65535");
    }
    endpoint.port = static_cast<uint16_t>(value);
  }
  endpoint.host = host;
  endpoint.path = path;
  endpoint.host_header = authority;
  return endpoint;
}

void appendExportRequestJson(std::string& out, std::string_view service_name,
                             const std::vector<SpanRecord>& spans) {
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":[";
  bool first = true;
  appendStringAttribute(out, first, "service.name", service_name);
  out += "]},\"scopeSpans\":[{\"scope\":{\"name\":\"gatewayd\"},\"spans\":[";
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (i != 0) out += ',';
    appendSpan(out, spans[i]);
  }
  out += "]}]}]}";
}

OtlpExporter::OtlpExporter(OtlpExporterOptions options) : options_(sane(std::move(options))) {
  queue_.reserve(std::min(options_.queue_capacity, options_.batch_size * 2));
}

OtlpExporter::~OtlpExporter() { stop(); }

void OtlpExporter::start() {
  if (started_) return;
  started_ = true;
  sender_ = std::thread([this] { run(); });
}

void OtlpExporter::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (sender_.joinable()) {
    sender_.join();
  } else {
    // Never started: nothing will send what is queued.
    std::lock_guard lock(mutex_);
    dropped_.fetch_add(queue_.size(), std::memory_order_relaxed);
    queue_.clear();
  }
}

bool OtlpExporter::enqueue(SpanRecord&& span) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() + sending_ >= options_.queue_capacity) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(std::move(span));
    wake = queue_.size() == options_.batch_size;
  }
  if (wake) wake_.notify_one();
  return true;
}

std::size_t OtlpExporter::enqueueBatch(std::vector<SpanRecord>& spans) {
  std::size_t accepted = 0;
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      std::size_t held = queue_.size() + sending_;
      accepted = held < options_.queue_capacity
                     ? std::min(spans.size(), options_.queue_capacity - held)
                     : 0;
      std::size_t before = queue_.size();
      queue_.insert(queue_.end(), std::make_move_iterator(spans.begin()),
                    std::make_move_iterator(spans.begin() + static_cast<std::ptrdiff_t>(accepted)));
      wake = before < options_.batch_size && queue_.size() >= options_.batch_size;
    }
  }
  dropped_.fetch_add(spans.size() - accepted, std::memory_order_relaxed);
  spans.clear();
  if (wake) wake_.notify_one();
  return accepted;
}

void OtlpExporter::run() {
  std::vector<SpanRecord> taken;  // swapped with queue_, so both keep their capacity
  std::vector<SpanRecord> batch;
  batch.reserve(options_.batch_size);
  auto next_flush = Clock::now() + options_.flush_interval;
  std::optional<Clock::time_point> give_up;
  // Under mutex_: starts stop()'s flush budget when first seen; true once it is spent.
  auto outOfTime = [&] {
    if (stopping_ && !give_up) give_up = Clock::now() + options_.stop_timeout;
    return give_up && Clock::now() >= *give_up;
  };
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_until(lock, next_flush,
                     [&] { return stopping_ || queue_.size() >= options_.batch_size; });
    bool due = stopping_ || queue_.size() >= options_.batch_size || Clock::now() >= next_flush;
    if (!due) continue;
    next_flush = Clock::now() + options_.flush_interval;
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    taken.swap(queue_);
    sending_ = taken.size();
    // POST in batch_size chunks, unlocked; meanwhile workers fill the (swapped) queue again.
    for (std::size_t i = 0; i < taken.size(); i += options_.batch_size) {
      if (outOfTime()) {
        dropped_.fetch_add(taken.size() - i, std::memory_order_relaxed);
        break;
      }
      std::size_t n = std::min(options_.batch_size, taken.size() - i);
      lock.unlock();
      batch.assign(std::make_move_iterator(taken.begin() + static_cast<std::ptrdiff_t>(i)),
                   std::make_move_iterator(taken.begin() + static_cast<std::ptrdiff_t>(i + n)));
      (post(batch) ? exported_ : failed_).fetch_add(n, std::memory_order_relaxed);
      batch.clear();
      lock.lock();
      sending_ -= n;
    }
    sending_ = 0;
    taken.clear();  // moved-from records (or, when stop() gave up, dropped ones)
  }
}

bool OtlpExporter::post(const std::vector<SpanRecord>& batch) {
  body_.clear();
  appendExportRequestJson(body_, options_.service_name, batch);
  request_.clear();
  request_ += "POST ";
  request_ += options_.endpoint.path;
  request_ += " HTTP/1.1\r\nHost: ";
  request_ += options_.endpoint.host_header;
  request_ +=
      "\r\nContent-Type: application/json\r\nUser-Agent: gatewayd\r\nConnection: close\r\n"
      "Content-Length: ";
  appendUint(request_, body_.size());
  request_ += "\r\n\r\n";

  net::Fd fd = connectWithTimeout(options_.endpoint, options_.io_timeout);
  if (!fd.valid() || !sendAll(fd.get(), request_) || !sendAll(fd.get(), body_)) return false;
  int status = readStatus(fd.get());
  return status >= 200 && status < 300;
}

SpanBatch::SpanBatch(OtlpExporter& exporter, std::size_t every)
    : exporter_(exporter), every_(std::max<std::size_t>(every, 1)) {
  spans_.reserve(every_);
}

void SpanBatch::add(SpanRecord&& span) {
  spans_.push_back(std::move(span));
  if (spans_.size() >= every_) flush();
}

void SpanBatch::flush() {
  if (!spans_.empty()) exporter_.enqueueBatch(spans_);
}

}  // namespace gw::observability
