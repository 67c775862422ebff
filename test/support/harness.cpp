#include "test/support/harness.h"

#include <arpa/inet.h>
#include <doctest.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

extern char** environ;

namespace gw::it {
namespace {

using Clock = std::chrono::steady_clock;

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return static_cast<int>(std::max<long long>(0, left));
}

// Waits for no event at all: the one place a test "pauses", always for a bounded time.
void pauseFor(Millis d) { ::poll(nullptr, 0, static_cast<int>(d.count())); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::optional<std::string> findHeader(const HeaderList& h, std::string_view name) {
  for (const auto& [n, v] : h)
    if (iequals(n, name)) return v;
  return std::nullopt;
}

std::size_t countHeader(const HeaderList& h, std::string_view name) {
  return static_cast<std::size_t>(
      std::count_if(h.begin(), h.end(), [&](const auto& kv) { return iequals(kv.first, name); }));
}

long statusField(pid_t pid, std::string_view key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size(), key) == 0) return std::atol(line.c_str() + key.size());
  return 0;
}

std::string envOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

HeaderList jsonHeaders(const rapidjson::Value& v) {
  HeaderList out;
  if (!v.IsArray()) return out;
  for (const auto& pair : v.GetArray())
    if (pair.IsArray() && pair.Size() == 2 && pair[0].IsString() && pair[1].IsString())
      out.emplace_back(pair[0].GetString(), pair[1].GetString());
  return out;
}

Echo echoFrom(const rapidjson::Value& o) {
  Echo e;
  if (!o.IsObject()) return e;
  auto str = [&](const char* k) {
    auto it = o.FindMember(k);
    return it != o.MemberEnd() && it->value.IsString()
               ? std::string(it->value.GetString(), it->value.GetStringLength())
               : std::string();
  };
  auto num = [&](const char* k) {
    auto it = o.FindMember(k);
    return it != o.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
  };
  e.valid = o.HasMember("method");
  e.method = str("method");
  e.target = str("target");
  e.version = str("version");
  e.body = str("body");
  if (o.HasMember("headers")) e.headers = jsonHeaders(o["headers"]);
  e.body_bytes = num("body_bytes");
  e.connection_requests = num("connection_requests");
  return e;
}

}  // namespace

const std::string& gatewaydPath() {
  static const std::string path = envOr("GW_GATEWAYD", GW_GATEWAYD_PATH);
  return path;
}

const std::string& testBackendPath() {
  static const std::string path = envOr("GW_TEST_BACKEND", GW_TEST_BACKEND_PATH);
  return path;
}

std::string subst(std::string text,
                  std::initializer_list<std::pair<std::string_view, std::string>> values) {
  for (const auto& [key, value] : values) {
    std::string token = "${" + std::string(key) + "}";
    for (auto pos = text.find(token); pos != std::string::npos; pos = text.find(token, pos)) {
      text.replace(pos, token.size(), value);
      pos += value.size();
    }
  }
  return text;
}

// --- TempDir -----------------------------------------------------------------------------------

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "gw-it-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) FAIL("mkdtemp: " << std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(std::string_view name, std::string_view content) const {
  std::string full = path_ + "/" + std::string(name);
  std::ofstream(full, std::ios::binary) << content;
  return full;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --- Process -----------------------------------------------------------------------------------

Process::Process(std::vector<std::string> argv, const std::string& stderr_file,
                 const std::vector<std::string>& environment) {
  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  if (!stderr_file.empty())
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_file.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  auto overridden = [&](std::string_view entry) {
    const std::string_view name = entry.substr(0, entry.find('=') + 1);  // "NAME="
    return std::any_of(environment.begin(), environment.end(),
                       [&](const std::string& set) { return set.starts_with(name); });
  };
  std::vector<char*> env;
  for (char** entry = environ; *entry; ++entry) {
    if (!overridden(*entry)) env.push_back(*entry);
  }
  for (const std::string& entry : environment) env.push_back(const_cast<char*>(entry.c_str()));
  env.push_back(nullptr);
  int rc = ::posix_spawn(&pid_, args[0], &actions, &attr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out[1]);
  out_fd_ = out[0];
  REQUIRE_MESSAGE(rc == 0, "posix_spawn " << argv[0] << ": " << std::string(std::strerror(rc)));
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
}

Process::~Process() {
  stop();
  if (out_fd_ >= 0) ::close(out_fd_);
  if (pidfd_ >= 0) ::close(pidfd_);
}

bool Process::running() { return !waitExit(0ms).has_value(); }

std::optional<std::string> Process::readLine(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto nl = out_buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      return line;
    }
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, remainingMs(deadline)) <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    out_buf_.append(buf, static_cast<std::size_t>(n));
  }
}

void Process::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> Process::waitExit(Millis timeout) {
  if (exit_code_ || pid_ <= 0) return exit_code_;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    int left = remainingMs(deadline);
    if (left == 0) return std::nullopt;
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      ::poll(&p, 1, left);
    } else {
      pauseFor(std::min(Millis(5), Millis(left)));
    }
  }
}

int Process::stop(Millis grace) {
  if (pid_ <= 0) return -1;
  if (auto code = waitExit(0ms)) return *code;
  signal(SIGTERM);
  if (auto code = waitExit(grace)) return *code;
  signal(SIGKILL);
  return waitExit(5000ms).value_or(-1);
}

// --- sockets -----------------------------------------------------------------------------------

namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Non-blocking connect bounded by timeout; returns the socket (non-blocking) or -1, with the
// connect error in *err.
int connectTo(uint16_t port, Millis timeout, int rcvbuf, int* err) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a = loopback(port);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
      *err = ETIMEDOUT;
      ::close(fd);
      return -1;
    }
    socklen_t len = sizeof *err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &len);
    rc = *err == 0 ? 0 : -1;
  } else if (rc != 0) {
    *err = errno;
  }
  if (rc != 0) {
    ::close(fd);
    return -1;
  }
  *err = 0;
  return fd;
}

}  // namespace

bool waitFor(const std::function<bool()>& cond, Millis timeout, Millis interval) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    int left = remainingMs(deadline);
    if (left == 0) return false;
    pauseFor(std::min(interval, Millis(left)));
  }
}

namespace {
// Claims `port` for this test process among all test processes running at once (meson runs the
// test files side by side): an exclusive lock on a file named after it, held until the process
// exits. Without it two processes could be handed the same just-closed ephemeral port, and two
// gatewayd listening with SO_REUSEPORT would then share it, each getting the other's requests.
bool claimAcrossProcesses(uint16_t port) {
  const std::string dir = "/tmp/gatewayd-test-ports";
  ::mkdir(dir.c_str(), 0777);
  const std::string path = dir + "/" + std::to_string(port);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return true;  // no shared directory: fall back to this process's own bookkeeping
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;  // kept open: the claim lasts
  ::close(fd);
  return false;
}
}  // namespace

uint16_t freePort() {
  // The kernel may hand the same ephemeral port out again once it is closed: a test asking for
  // two ports (a listener and the admin listener) would then get one twice. Each port is given
  // once per test process, and to one test process at a time.
  static std::mutex lock;
  static std::set<uint16_t> given;
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(0);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    const uint16_t port = ntohs(a.sin_port);
    std::lock_guard guard(lock);
    if (given.insert(port).second && claimAcrossProcesses(port)) return port;
  }
  FAIL("no ephemeral port that was not given before");
  return 0;
}

int listenOnLoopback(int backlog, uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = loopback(0);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(fd, backlog) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  port = ntohs(address.sin_port);
  return fd;
}

bool waitPortOpen(uint16_t port, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int err = 0;
    int fd = connectTo(port, Millis(std::max(1, remainingMs(deadline))), 0, &err);
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    if (remainingMs(deadline) == 0) return false;
    pauseFor(std::min(Millis(10), Millis(remainingMs(deadline))));
  }
}

bool connectRefused(uint16_t port) {
  int err = 0;
  int fd = connectTo(port, 1000ms, 0, &err);
  if (fd >= 0) ::close(fd);
  return fd < 0 && err == ECONNREFUSED;
}

long rssKiB(pid_t pid) { return statusField(pid, "VmRSS:"); }
long peakRssKiB(pid_t pid) { return statusField(pid, "VmHWM:"); }

// --- Response / Client -------------------------------------------------------------------------

std::optional<std::string> Response::header(std::string_view name) const {
  return findHeader(headers, name);
}
std::size_t Response::headerCount(std::string_view name) const {
  return countHeader(headers, name);
}

// Parses one response with llhttp; pauses at the end of the message so bytes that follow
// (a pipelined response) stay unconsumed.
struct Client::Parser {
  llhttp_t parser{};
  llhttp_settings_t settings{};
  Response* resp = nullptr;
  const ReadOptions* options = nullptr;
  std::string field, value;
  bool in_value = false;
  bool done = false;

  Parser(Response& r, const ReadOptions& o) : resp(&r), options(&o) {
    llhttp_settings_init(&settings);
    settings.on_header_field = [](llhttp_t* p, const char* at, std::size_t len) {
      Parser& self = *static_cast<Parser*>(p->data);
      if (self.in_value) self.flush();
      self.field.append(at, len);
      return 0;
    };
    settings.on_header_value = [](llhttp_t* p, const char* at, std::size_t len) {
      Parser& self = *static_cast<Parser*>(p->data);
      self.in_value = true;
      self.value.append(at, len);
      return 0;
    };
    settings.on_headers_complete = [](llhttp_t* p) {
      Parser& self = *static_cast<Parser*>(p->data);
      self.flush();
      self.resp->status = p->status_code;
      self.resp->http_major = p->http_major;
      self.resp->http_minor = p->http_minor;
      // 1: this response has no body (RFC 9112 §6.3), whatever its fields say.
      const bool bodyless = self.options->head || p->status_code < 200 || p->status_code == 204 ||
                            p->status_code == 304;
      return bodyless ? 1 : 0;
    };
    settings.on_body = [](llhttp_t* p, const char* at, std::size_t len) {
      Parser& self = *static_cast<Parser*>(p->data);
      self.resp->body_bytes += len;
      if (self.options->on_body)
        self.options->on_body(std::string_view(at, len));
      else
        self.resp->body.append(at, len);
      return 0;
    };
    settings.on_message_complete = [](llhttp_t* p) {
      Parser& self = *static_cast<Parser*>(p->data);
      self.done = true;
      return static_cast<int>(HPE_PAUSED);
    };
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    parser.data = this;
  }

  void flush() {
    if (!field.empty() || in_value) resp->headers.emplace_back(field, value);
    field.clear();
    value.clear();
    in_value = false;
  }

  // Feeds data; returns how many bytes were consumed, or -1 on a parse error.
  long feed(const char* data, std::size_t len) {
    llhttp_errno_t err = llhttp_execute(&parser, data, len);
    if (err == HPE_OK) return static_cast<long>(len);
    if (err == HPE_PAUSED && done) return llhttp_get_error_pos(&parser) - data;
    resp->error = std::string("parse error: ") + llhttp_errno_name(err) + " " +
                  llhttp_get_error_reason(&parser);
    return -1;
  }

  bool finishAtEof() {
    llhttp_errno_t err = llhttp_finish(&parser);
    return (err == HPE_OK || err == HPE_PAUSED) && done;
  }
};

Client::Client(uint16_t port, Millis timeout, int rcvbuf) {
  int err = 0;
  fd_ = connectTo(port, timeout, rcvbuf, &err);
  REQUIRE_MESSAGE(fd_ >= 0,
                  "connect to 127.0.0.1:" << port << ": " << std::string(std::strerror(err)));
}

Client::~Client() { close(); }

void Client::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void Client::shutdownWrite() { ::shutdown(fd_, SHUT_WR); }

bool Client::send(std::string_view bytes, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, remainingMs(deadline)) <= 0) return false;
  }
  return true;
}

// Returns bytes read (> 0), 0 on timeout, -1 on EOF/reset (sets *eof).
int Client::recvSome(char* buf, std::size_t len, Millis timeout, bool* eof) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return 0;
  ssize_t n = ::recv(fd_, buf, len, 0);
  if (n > 0) return static_cast<int>(n);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  *eof = true;
  return -1;
}

Response Client::read(const ReadOptions& options) {
  Response resp;
  Parser parser(resp, options);
  auto start = Clock::now();
  auto deadline = start + options.timeout;
  uint64_t received = 0;
  std::vector<char> buf(std::max<std::size_t>(1, options.read_size));

  auto consume = [&](const char* data, std::size_t len) -> bool {
    long used = parser.feed(data, len);
    if (used < 0) return false;
    if (parser.done) {
      pending_.assign(data + used, len - static_cast<std::size_t>(used));
      resp.complete = true;
      return false;
    }
    return true;
  };

  if (!pending_.empty()) {
    std::string carried = std::move(pending_);
    pending_.clear();
    if (!consume(carried.data(), carried.size())) return resp;
  }
  for (;;) {
    if (eof_) {
      resp.closed = true;
      if (parser.finishAtEof())
        resp.complete = true;
      else if (resp.error.empty())
        resp.error = "eof";
      return resp;
    }
    if (options.max_bytes_per_second > 0) {
      auto due = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                             static_cast<double>(received) / options.max_bytes_per_second));
      if (due > Clock::now()) pauseFor(Millis(std::min(remainingMs(due), remainingMs(deadline))));
    }
    int left = remainingMs(deadline);
    if (left == 0) {
      resp.error = "timeout";
      return resp;
    }
    int n = recvSome(buf.data(), buf.size(), Millis(left), &eof_);
    if (n < 0) continue;
    received += static_cast<uint64_t>(n);
    if (n > 0 && !consume(buf.data(), static_cast<std::size_t>(n))) return resp;
  }
}

Response Client::read(Millis timeout) {
  ReadOptions options;
  options.timeout = timeout;
  return read(options);
}

Response Client::roundTrip(std::string_view request, Millis timeout) {
  if (!send(request, timeout)) {
    Response r;
    r.error = "send failed";
    return r;
  }
  return read(timeout);
}

bool Client::waitClosed(Millis timeout) {
  if (eof_) return true;
  auto deadline = Clock::now() + timeout;
  char buf[16 * 1024];
  pending_.clear();
  while (remainingMs(deadline) > 0) {
    recvSome(buf, sizeof buf, Millis(remainingMs(deadline)), &eof_);
    if (eof_) return true;
  }
  return false;
}

std::string Client::readRaw(Millis timeout, std::size_t max) {
  std::string out = std::move(pending_);
  pending_.clear();
  auto deadline = Clock::now() + timeout;
  char buf[16 * 1024];
  while (!eof_ && out.size() < max && remainingMs(deadline) > 0) {
    int n = recvSome(buf, sizeof buf, Millis(remainingMs(deadline)), &eof_);
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string request(std::string_view method, std::string_view target, std::string_view headers,
                    std::string_view body, std::string_view host) {
  std::string r = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\n";
  if (!host.empty()) r += "Host: " + std::string(host) + "\r\n";
  r += headers;
  bool has_length = headers.find("Content-Length:") != std::string_view::npos ||
                    headers.find("Transfer-Encoding:") != std::string_view::npos;
  if (!body.empty() && !has_length) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "\r\n";
  r += body;
  return r;
}

// --- JSON helpers ------------------------------------------------------------------------------

std::optional<std::string> Echo::header(std::string_view name) const {
  return findHeader(headers, name);
}
std::size_t Echo::headerCount(std::string_view name) const { return countHeader(headers, name); }

Echo parseEcho(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError()) return Echo{};
  return echoFrom(d);
}

std::string patternBody(std::size_t n) {
  std::string body(n, '\0');
  for (std::size_t i = 0; i < n; ++i) body[i] = patternByte(i);
  return body;
}

std::string percentEncode(std::string_view text) {
  static constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string rawResponseTarget(std::string_view bytes, bool close) {
  return "/raw?b=" + percentEncode(bytes) + (close ? "&close=1" : "");
}

std::string errorCode(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("error") || !d["error"].IsObject())
    return "";
  const auto& e = d["error"];
  auto it = e.FindMember("code");
  return it != e.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

// --- Backend -----------------------------------------------------------------------------------

Backend::Backend(std::string id, uint16_t port)
    : id_(std::move(id)),
      process_({testBackendPath(), "--port", std::to_string(port), "--id", id_}) {
  auto line = process_.readLine(5000ms);
  REQUIRE_MESSAGE(line.has_value(), "test_backend did not print its port");
  REQUIRE(line->rfind("PORT ", 0) == 0);
  port_ = static_cast<uint16_t>(std::atoi(line->c_str() + 5));
  REQUIRE(port_ != 0);
}

Response Backend::control(std::string_view path) {
  Client c(port_);
  Response r = c.roundTrip(get(path));
  REQUIRE_MESSAGE(r.complete, "backend control " << path << ": " << r.error);
  return r;
}

BackendStats Backend::stats() {
  Response r = control("/__stats");
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  REQUIRE(!d.HasParseError());
  BackendStats s;
  s.connections = d["connections"].GetUint64();
  s.requests = d["requests"].GetUint64();
  s.open = d["open"].GetUint64();
  s.bytes = d["bytes"].GetUint64();
  s.partial = d["partial"].GetUint64();
  s.parse_errors = d["parse_errors"].GetUint64();
  return s;
}

void Backend::reset() { control("/__reset"); }
void Backend::closeIdle() { control("/__close-idle"); }

void Backend::behave(int status, int delayMs) {
  control("/__behave?status=" + std::to_string(status) + "&delay=" + std::to_string(delayMs));
}

std::vector<Echo> Backend::requests() {
  Response r = control("/__requests");
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  REQUIRE(d.IsArray());
  std::vector<Echo> out;
  for (const auto& v : d.GetArray()) out.push_back(echoFrom(v));
  return out;
}

// --- Gateway -----------------------------------------------------------------------------------

namespace {

// ASan's quarantine keeps freed blocks resident (256 MiB by default), which would swamp the RSS
// assertions when gatewayd is a sanitizer build; a small one keeps them about gatewayd's own
// buffering. Inherited by every gatewayd we spawn; harmless for a release build.
void limitAsanQuarantine() {
  std::string options = envOr("ASAN_OPTIONS", "");
  if (options.find("quarantine_size_mb") != std::string::npos) return;
  options += std::string(options.empty() ? "" : ":") + "quarantine_size_mb=16";
  ::setenv("ASAN_OPTIONS", options.c_str(), 1);
}

}  // namespace

Gateway::Gateway(std::string yaml_template, uint16_t port,
                 const std::vector<std::string>& environment)
    : port_(port ? port : freePort()), admin_port_(freePort()) {
  limitAsanQuarantine();
  rewriteConfig(std::move(yaml_template));
  log_path_ = dir_.path() + "/gatewayd.log";
  process_.emplace(std::vector<std::string>{gatewaydPath(), "-c", config_path_}, log_path_,
                   environment);
  auto deadline = Clock::now() + 10000ms;
  while (!waitPortOpen(port_, 50ms)) {
    if (!process_->running())
      FAIL("gatewayd exited with " << process_->waitExit(0ms).value_or(-1) << " before listening:\n"
                                   << log() << "\nconfig:\n"
                                   << readFile(config_path_));
    if (Clock::now() > deadline)
      FAIL("gatewayd did not listen on " << port_ << " within 10s:\n" << log());
  }
}

Gateway::~Gateway() {
  if (!process_) return;
  int code = process_->stop(5000ms);
  std::string text = log();
  for (const char* marker : {"AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
    auto at = text.find(marker);
    if (at != std::string::npos)
      FAIL_CHECK("sanitizer report in gatewayd's log:\n"
                 << text.substr(at > 200 ? at - 200 : 0, 4000));
  }
  if (code != 0) FAIL_CHECK("gatewayd exited with " << code << " on SIGTERM:\n" << text);
}

void Gateway::rewriteConfig(std::string yaml_template) {
  // Never the default 9901: a gatewayd started by scripts/run.sh may be running beside the tests.
  const bool hasAdmin =
      yaml_template.starts_with("admin:") || yaml_template.find("\nadmin:") != std::string::npos;
  if (!hasAdmin) yaml_template += "\nadmin: {address: 127.0.0.1, port: ${ADMIN_PORT}}\n";
  // Written beside and renamed over, as editors and configuration managers do: a reload never
  // reads half a file.
  const std::string written = dir_.write(
      "gateway.yaml.next",
      subst(std::move(yaml_template),
            {{"PORT", std::to_string(port_)}, {"ADMIN_PORT", std::to_string(admin_port_)}}));
  config_path_ = dir_.path() + "/gateway.yaml";
  REQUIRE(std::rename(written.c_str(), config_path_.c_str()) == 0);
}

std::string Gateway::log() const { return readFile(log_path_); }

Response adminRequest(const Gateway& gw, std::string_view path, std::string_view method) {
  Client c(gw.adminPort());
  return c.roundTrip(request(method, path));
}

std::string promtoolProblems(const std::string& exposition) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    FAIL("promtool is missing: scripts/setup.sh installs the prometheus package");
  }
  TempDir dir;
  const std::string file = dir.write("metrics.txt", exposition);
  Process promtool({"/bin/sh", "-c", "promtool check metrics < '" + file + "' 2>&1"});
  std::string output;
  while (auto line = promtool.readLine(10000ms)) output += *line + "\n";
  CHECK(promtool.waitExit(10000ms) == 0);
  return output;
}

double metricSample(const std::string& exposition, const std::string& series) {
  const std::string prefix = series + " ";
  std::size_t at = exposition.starts_with(prefix) ? 0 : exposition.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  if (exposition[at] == '\n') ++at;
  return std::strtod(exposition.c_str() + at + prefix.size(), nullptr);
}

std::string apiConfig(const Backend& b, int workers, std::string_view extra_top,
                      std::string_view extra_routes) {
  std::string y = "workers: " + std::to_string(workers) + "\n";
  y += extra_top;
  y += "\nlisteners:\n  - address: 127.0.0.1\n    port: ${PORT}\n"
       "upstreams:\n  - name: main\n    backends:\n      - " + b.address() + "\n"
       "routes:\n  - name: api\n    match: {prefix: /api/}\n    upstream: main\n"
       "    strip_prefix: /api\n";
  y += extra_routes;
  return y;
}

std::string simpleConfig(const std::vector<const Backend*>& backends, std::string_view extra_top,
                         std::string_view upstream_extra, int workers) {
  std::string y = "workers: " + std::to_string(workers) +
                  "\nlisteners:\n  - address: 127.0.0.1\n    port: ${PORT}\n"
                  "upstreams:\n  - name: main\n    backends:\n";
  for (const Backend* b : backends) y += "      - " + b->address() + "\n";
  y += upstream_extra;
  y += "routes:\n  - match: {prefix: /}\n    upstream: main\n";
  y += extra_top;
  return y;
}

CommandResult runGatewaydCommand(std::vector<std::string> args) {
  TempDir dir;
  const std::string err_path = dir.path() + "/stderr";
  args.insert(args.begin(), gatewaydPath());
  Process p(args, err_path);
  CommandResult run;
  // Generous bounds: a sanitized build on a loaded two-core machine checks a large config slowly;
  // a command that finishes is waited for no longer than it takes.
  while (auto line = p.readLine(Millis(30000))) run.out += *line + "\n";
  auto code = p.waitExit(Millis(30000));
  REQUIRE_MESSAGE(code.has_value(), "gatewayd did not exit");
  run.exit_code = *code;
  run.err = readFile(err_path);
  return run;
}

}  // namespace gw::it
