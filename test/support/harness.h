#pragma once
// Process harness for the integration tests: spawns the real gatewayd and test_backend binaries,
// writes temp configs, and talks raw HTTP/1.1 over loopback sockets so a test controls every byte
// the client sends and sees every byte it gets back. Every wait is bounded.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw::it {

using Millis = std::chrono::milliseconds;
using namespace std::chrono_literals;

// Paths of the binaries under test; the environment variables GW_GATEWAYD and GW_TEST_BACKEND
// override the build-time defaults (handy to test another build of gatewayd).
const std::string& gatewaydPath();
const std::string& testBackendPath();

// Replaces each "${KEY}" in text by its value.
std::string subst(std::string text,
                  std::initializer_list<std::pair<std::string_view, std::string>> values);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string write(std::string_view name, std::string_view content) const;  // returns full path

 private:
  std::string path_;
};

std::string readFile(const std::string& path);

// A command-line run of gatewayd (-t, --version, ...) to completion, bounded.
struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
CommandResult runGatewaydCommand(std::vector<std::string> args);

// A child process in its own process group; stopped (SIGTERM, then SIGKILL) on destruction.
class Process {
 public:
  // stdout is a pipe readable with readLine(); stderr goes to stderr_file (or is inherited). The
  // child gets this process's environment with `environment` ("NAME=value" each) set on top.
  Process(std::vector<std::string> argv, const std::string& stderr_file = {},
          const std::vector<std::string>& environment = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  std::optional<std::string> readLine(Millis timeout);
  void signal(int sig) const;
  // Exit code (128 + signal number when killed by a signal), or nullopt if still running.
  std::optional<int> waitExit(Millis timeout);
  int stop(Millis grace = 3000ms);

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_fd_ = -1;
  std::string out_buf_;
  std::optional<int> exit_code_;
};

// Polls cond every `interval` until it holds or timeout passes; returns its last value.
bool waitFor(const std::function<bool()>& cond, Millis timeout, Millis interval = 20ms);

uint16_t freePort();
// A listening socket on 127.0.0.1 and an ephemeral port (set in `port`) that nothing accepts on:
// connections wait in its backlog. The caller closes the fd.
int listenOnLoopback(int backlog, uint16_t& port);
bool waitPortOpen(uint16_t port, Millis timeout);
bool connectRefused(uint16_t port);  // a connect attempt to 127.0.0.1:port is refused right away

// VmRSS / VmHWM of a process in KiB (0 if unreadable).
long rssKiB(pid_t pid);
long peakRssKiB(pid_t pid);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Response {
  bool complete = false;  // a whole response was parsed
  std::string error;      // why not complete: "timeout", "eof", "parse error: ..."
  int status = 0;
  int http_major = 0;
  int http_minor = 0;
  HeaderList headers;
  std::string body;         // empty when ReadOptions::on_body consumed it
  uint64_t body_bytes = 0;  // payload bytes received (also for an incomplete response)
  bool closed = false;      // the peer closed the connection while we were reading

  std::optional<std::string> header(std::string_view name) const;  // first, case-insensitive
  std::size_t headerCount(std::string_view name) const;
};

struct ReadOptions {
  Millis timeout = 5000ms;  // for the whole response
  bool head = false;        // response to HEAD: no body whatever the headers say
  std::function<void(std::string_view)> on_body;  // streams the body instead of storing it
  std::size_t read_size = 64 * 1024;              // bytes per recv()
  double max_bytes_per_second = 0;                // > 0: a deliberately slow reader
};

// A raw HTTP/1.1 client over one loopback TCP connection. Responses are parsed with llhttp in
// response mode (Content-Length, chunked, close-delimited); bytes after one response stay buffered
// for the next (pipelining).
class Client {
 public:
  explicit Client(uint16_t port, Millis timeout = 3000ms, int rcvbuf = 0);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Sends every byte (bounded by timeout); false if the peer closed or the time ran out.
  bool send(std::string_view bytes, Millis timeout = 5000ms);
  Response read(const ReadOptions& options = {});
  Response read(Millis timeout);
  Response roundTrip(std::string_view request, Millis timeout = 5000ms);
  // Waits until the peer closes the connection (EOF or reset), discarding what arrives.
  bool waitClosed(Millis timeout);
  // Whatever arrives within timeout (until EOF or timeout, at most max bytes).
  std::string readRaw(Millis timeout, std::size_t max = 1 << 20);
  void shutdownWrite();
  void close();

 private:
  struct Parser;
  int recvSome(char* buf, std::size_t len, Millis timeout, bool* eof);

  int fd_ = -1;
  std::string pending_;  // received, not yet parsed
  bool eof_ = false;
};

// Builds a request: "METHOD target HTTP/1.1\r\nHost: host\r\n<headers>\r\n<body>"; headers is
// raw text, each line ending in \r\n. A Content-Length is added when body is non-empty and
// headers has none.
std::string request(std::string_view method, std::string_view target, std::string_view headers = {},
                    std::string_view body = {}, std::string_view host = "gw.test");
inline std::string get(std::string_view target, std::string_view headers = {}) {
  return request("GET", target, headers);
}

// Percent-encodes all but unreserved characters, so any text survives as one query value.
std::string percentEncode(std::string_view text);

// A test_backend target whose answer is exactly `bytes` (a hostile or broken backend); with
// `close` the backend closes the connection after sending them.
std::string rawResponseTarget(std::string_view bytes, bool close = false);

// The byte at position i of every generated /bytes and /chunked body.
inline char patternByte(uint64_t i) { return static_cast<char>('a' + i % 26); }
// The first n bytes of that pattern.
std::string patternBody(std::size_t n);

// The JSON body of /echo.
struct Echo {
  bool valid = false;
  std::string method, target, version, body;
  HeaderList headers;
  uint64_t body_bytes = 0;
  uint64_t connection_requests = 0;

  std::optional<std::string> header(std::string_view name) const;
  std::size_t headerCount(std::string_view name) const;
};
Echo parseEcho(std::string_view json);

// "CODE" of a gateway error body {"error":{"code":"CODE",...}}, or "" if the body is not one.
std::string errorCode(std::string_view json);

struct BackendStats {
  uint64_t connections = 0, requests = 0, open = 0, bytes = 0, partial = 0, parse_errors = 0;
};

// A test_backend process listening on an ephemeral loopback port.
class Backend {
 public:
  explicit Backend(std::string id = "b1", uint16_t port = 0);  // 0: an ephemeral port
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& id() const { return id_; }
  Process& process() { return process_; }

  BackendStats stats();
  void reset();
  void closeIdle();
  std::vector<Echo> requests();  // every request received since the last reset (no bodies)

 private:
  Response control(std::string_view path);

  std::string id_;
  Process process_;
  uint16_t port_ = 0;
};

// gatewayd running with a temp config. The YAML may use ${PORT}: it becomes a free port that
// the gateway listens on; the constructor returns once that port accepts connections. Unless the
// YAML has an `admin:` section (which may use ${ADMIN_PORT}), the admin listener is put on
// 127.0.0.1:${ADMIN_PORT}, another free port.
class Gateway {
 public:
  // `environment`: variables ("NAME=value") set for gatewayd on top of the tests' own.
  explicit Gateway(std::string yaml_template, uint16_t port = 0,
                   const std::vector<std::string>& environment = {});
  // Stops gatewayd with SIGTERM and fails the test if it did not exit 0 or if its log holds a
  // sanitizer report: every test doubles as a clean-shutdown and ASan/UBSan check.
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;
  uint16_t port() const { return port_; }
  uint16_t adminPort() const { return admin_port_; }
  Process& process() { return *process_; }
  const std::string& configPath() const { return config_path_; }
  // Replaces the configuration file (same substitutions as the constructor's), for a reload.
  void rewriteConfig(std::string yaml_template);
  std::string log() const;  // gatewayd's stderr so far

 private:
  TempDir dir_;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  std::string config_path_;
  std::string log_path_;
  std::optional<Process> process_;
};

// One request to gatewayd's admin listener, on a connection of its own.
Response adminRequest(const Gateway& gw, std::string_view path, std::string_view method = "GET");

// The value of the one sample `series` (metric name and labels exactly as exposed) in a
// Prometheus text exposition, or -1 when there is none.
double metricSample(const std::string& exposition, const std::string& series);

// What `promtool check metrics` says of a Prometheus text exposition: "" when it accepts it. Fails
// the test when promtool is missing.
std::string promtoolProblems(const std::string& exposition);

// One listener on ${PORT}, upstream "main" with backend b, and a route "api" taking /api/ and
// stripping it (so /api/echo reaches the backend as /echo). `extra_top` is YAML appended at top
// level, `extra_routes` more route entries after "api".
std::string apiConfig(const Backend& b, int workers = 1, std::string_view extra_top = {},
                      std::string_view extra_routes = {});

// The common config: one listener on ${PORT}, upstream "main" with the given backends, one
// catch-all route. `extra_top` is YAML appended at top level (e.g. "limits:\n  ...").
std::string simpleConfig(const std::vector<const Backend*>& backends,
                         std::string_view extra_top = {}, std::string_view upstream_extra = {},
                         int workers = 1);

}  // namespace gw::it
