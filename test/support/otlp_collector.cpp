#include "test/support/otlp_collector.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace gw::it {

struct OtlpCollector::Conn {
  int fd = -1;
  std::string in;
  std::string out;
  bool close_after_write = false;
  ~Conn() {
    if (fd >= 0) ::close(fd);
  }
};

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return {};
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsString()) return {};
  return it->value.GetString();
}

// uint64 as the protobuf JSON mapping allows: a decimal string or a number.
uint64_t uintMember(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return 0;
  auto it = v.FindMember(name);
  if (it == v.MemberEnd()) return 0;
  if (it->value.IsUint64()) return it->value.GetUint64();
  if (it->value.IsString()) return std::strtoull(it->value.GetString(), nullptr, 10);
  return 0;
}

const rapidjson::Value* arrayMember(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it != v.MemberEnd() && it->value.IsArray() ? &it->value : nullptr;
}

std::map<std::string, std::string> attributes(const rapidjson::Value& owner) {
  std::map<std::string, std::string> out;
  const rapidjson::Value* list = arrayMember(owner, "attributes");
  if (!list) return out;
  for (const auto& kv : list->GetArray()) {
    auto value = kv.IsObject() ? kv.FindMember("value") : kv.MemberEnd();
    if (!kv.IsObject() || value == kv.MemberEnd() || !value->value.IsObject()) continue;
    const auto& v = value->value;
    if (v.HasMember("stringValue") && v["stringValue"].IsString()) {
      out[member(kv, "key")] = v["stringValue"].GetString();
    } else if (v.HasMember("intValue")) {
      out[member(kv, "key")] = std::to_string(static_cast<int64_t>(uintMember(v, "intValue")));
    }
  }
  return out;
}

}  // namespace

OtlpCollector::~OtlpCollector() { stop(); }

std::string OtlpCollector::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces";
}

bool OtlpCollector::start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return false;
  }
  port_ = ntohs(a.sin_port);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return false;
  thread_ = std::thread([this] { run(); });
  return true;
}

void OtlpCollector::stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

std::vector<CollectedSpan> OtlpCollector::waitForSpans(std::size_t n,
                                                       std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  arrived_.wait_for(lock, timeout, [&] { return spans_.size() >= n; });
  return spans_;
}

std::vector<CollectedSpan> OtlpCollector::spans() const {
  std::lock_guard lock(mutex_);
  return spans_;
}

std::size_t OtlpCollector::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<std::string> OtlpCollector::problems() const {
  std::lock_guard lock(mutex_);
  return problems_;
}

void OtlpCollector::setStatus(int status) {
  std::lock_guard lock(mutex_);
  status_ = status;
}

void OtlpCollector::setSilent(bool silent) {
  std::lock_guard lock(mutex_);
  silent_ = silent;
}

void OtlpCollector::run() {
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<pollfd> fds;
  while (true) {
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& c : conns) {
      fds.push_back({c->fd, static_cast<short>(c->out.empty() ? POLLIN : POLLIN | POLLOUT), 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;
    if (fds[1].revents & POLLIN) {
      int fd;
      while ((fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        conns.push_back(std::move(c));
      }
    }
    // fds[2 + i] belongs to conns[i] as they were before the accepts above.
    std::size_t polled = fds.size() - 2;
    std::vector<bool> dead(conns.size(), false);
    for (std::size_t i = 0; i < polled; ++i) {
      Conn& c = *conns[i];
      short ev = fds[2 + i].revents;
      if (ev & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) {
          c.in.append(buf, static_cast<std::size_t>(n));
          while (handleRequest(c)) {
          }
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          dead[i] = true;
          continue;
        }
      }
      if (!c.out.empty()) {
        ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n > 0) c.out.erase(0, static_cast<std::size_t>(n));
        if (n < 0 && errno != EAGAIN && errno != EINTR) dead[i] = true;
      }
      if (c.out.empty() && c.close_after_write) dead[i] = true;
    }
    for (std::size_t i = dead.size(); i-- > 0;) {
      if (dead[i]) conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
}

bool OtlpCollector::handleRequest(Conn& c) {
  std::size_t head_end = c.in.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  std::string_view head(c.in.data(), head_end);
  std::size_t line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  std::size_t sp1 = request_line.find(' ');
  std::size_t sp2 = request_line.rfind(' ');
  std::string_view method = request_line.substr(0, sp1);
  std::string_view target =
      sp1 == sp2 ? std::string_view{} : request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = request_line.substr(sp2 + 1);

  std::size_t content_length = 0;
  std::string content_type;
  bool close = version != "HTTP/1.1";
  std::string_view headers = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
  while (!headers.empty()) {
    std::size_t eol = headers.find("\r\n");
    std::string_view line = headers.substr(0, eol);
    headers = eol == std::string_view::npos ? "" : headers.substr(eol + 2);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      std::from_chars(value.data(), value.data() + value.size(), content_length);
    } else if (iequals(name, "content-type")) {
      content_type = value;
    } else if (iequals(name, "connection") && iequals(value, "close")) {
      close = true;
    }
  }
  if (c.in.size() < head_end + 4 + content_length) return false;
  std::string body = c.in.substr(head_end + 4, content_length);
  bool traces = method == "POST" && target == "/v1/traces";
  c.in.erase(0, head_end + 4 + content_length);

  int status = 404;
  bool silent = false;
  {
    std::lock_guard lock(mutex_);
    if (traces) {
      ++requests_;
      status = status_;
      silent = silent_;
      if (content_type != "application/json") {
        problems_.push_back("Content-Type: " + content_type);
      }
    }
  }
  if (traces) record(body);
  if (silent) return true;
  std::string_view answer = status == 200 ? "{}" : "{\"error\":\"as configured\"}";
  c.out +=
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason(status)) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(answer.size()) +
      (close ? "\r\nConnection: close" : "") + "\r\n\r\n";
  c.out += answer;
  c.close_after_write = c.close_after_write || close;
  return !close;
}

void OtlpCollector::record(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str(), body.size());
  std::vector<CollectedSpan> got;
  std::string problem;
  const rapidjson::Value* resource_spans =
      doc.HasParseError() ? nullptr : arrayMember(doc, "resourceSpans");
  if (!resource_spans) {
    problem = "not an ExportTraceServiceRequest: " + body.substr(0, 200);
  } else {
    for (const auto& rs : resource_spans->GetArray()) {
      std::string service;
      if (rs.IsObject() && rs.HasMember("resource"))
        service = attributes(rs["resource"])["service.name"];
      const rapidjson::Value* scope_spans = arrayMember(rs, "scopeSpans");
      if (!scope_spans) continue;
      for (const auto& ss : scope_spans->GetArray()) {
        std::string scope =
            ss.IsObject() && ss.HasMember("scope") ? member(ss["scope"], "name") : "";
        const rapidjson::Value* spans = arrayMember(ss, "spans");
        if (!spans) continue;
        for (const auto& s : spans->GetArray()) {
          CollectedSpan span;
          span.service_name = service;
          span.scope_name = scope;
          span.trace_id = member(s, "traceId");
          span.span_id = member(s, "spanId");
          span.parent_span_id = member(s, "parentSpanId");
          span.name = member(s, "name");
          span.kind =
              s.IsObject() && s.HasMember("kind") && s["kind"].IsInt() ? s["kind"].GetInt() : 0;
          span.start_unix_nanos = uintMember(s, "startTimeUnixNano");
          span.end_unix_nanos = uintMember(s, "endTimeUnixNano");
          if (s.IsObject() && s.HasMember("status")) {
            span.status_code = static_cast<int>(uintMember(s["status"], "code"));
          }
          span.attributes = attributes(s);
          got.push_back(std::move(span));
        }
      }
    }
  }
  {
    std::lock_guard lock(mutex_);
    if (!problem.empty()) problems_.push_back(std::move(problem));
    for (auto& s : got) spans_.push_back(std::move(s));
  }
  arrived_.notify_all();
}

}  // namespace gw::it
