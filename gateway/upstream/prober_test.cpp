#include "gateway/upstream/prober.h"

#include <doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gw::upstream {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kWait = std::chrono::seconds(5);

TEST_CASE("parseStatusLine reads HTTP/1.x SP 3DIGIT and nothing looser") {
  CHECK(parseStatusLine("HTTP/1.1 200 OK\r\n") == 200);
  CHECK(parseStatusLine("HTTP/1.0 503 ") == 503);
  CHECK(parseStatusLine("HTTP/1.1 204\r\n") == 204);  // reason phrase and its SP omitted
  // Too short to tell, but a valid beginning.
  CHECK(parseStatusLine("") == 0);
  CHECK(parseStatusLine("HT") == 0);
  CHECK(parseStatusLine("HTTP/1.1 20") == 0);
  CHECK(parseStatusLine("HTTP/1.1 200") == 0);
  // Wrong from the first bad byte on.
  CHECK(parseStatusLine("X") == -1);
  CHECK(parseStatusLine("HTTP/2 200 OK") == -1);
  CHECK(parseStatusLine("HTTP/1.x") == -1);
  CHECK(parseStatusLine("HTTP/1.1  200") == -1);
  CHECK(parseStatusLine("HTTP/1.1 2x") == -1);
  CHECK(parseStatusLine("HTTP/1.1 2000 OK") == -1);
  CHECK(parseStatusLine("HTTP/1.1 099 OK") == -1);
  CHECK(parseStatusLine("HTTP/1.1 600 OK") == -1);
  CHECK(parseStatusLine("http/1.1 200 OK") == -1);
}

// A backend on a loopback port with its own thread. Each connection's request head is read and
// answered according to `mode`, then closed.
class Origin {
 public:
  enum class Mode { Answer, Silent, Garbage, Hangup };

  Origin() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 64) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
    wake_ = ::eventfd(0, EFD_CLOEXEC);
    REQUIRE(wake_ >= 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~Origin() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_, &one, sizeof one);
    thread_.join();
    for (int fd : held_) ::close(fd);
    ::close(listener_);
    ::close(wake_);
  }

  net::SocketAddress address() const {
    std::string error;
    auto a = net::resolve("127.0.0.1", port, error);
    REQUIRE(a.has_value());
    return *a;
  }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }
  std::string lastRequest() const {
    std::lock_guard lock(mutex_);
    return lastRequest_;
  }

  uint16_t port = 0;
  std::atomic<int> status{200};
  std::atomic<Mode> mode{Mode::Answer};

 private:
  void serve() {
    for (;;) {
      pollfd fds[2] = {{listener_, POLLIN, 0}, {wake_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents) return;
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      Mode m = mode.load();
      if (m == Mode::Silent) {
        held_.push_back(fd);  // accepted, never answered
        continue;
      }
      std::string request = readHead(fd);
      {
        std::lock_guard lock(mutex_);
        lastRequest_ = request;
      }
      ++requests_;
      std::string reply;
      if (m == Mode::Answer) {
        reply = "HTTP/1.1 " + std::to_string(status.load()) +
                " Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      } else if (m == Mode::Garbage) {
        reply = "SSH-2.0-OpenSSH\r\n";
      }
      if (!reply.empty()) {
        [[maybe_unused]] ssize_t n = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
      ::close(fd);
    }
  }
  // The request head, or what arrived of it within a bounded wait.
  static std::string readHead(int fd) {
    std::string head;
    char buf[512];
    while (head.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) != 1) break;
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      head.append(buf, static_cast<std::size_t>(n));
    }
    return head;
  }

  int listener_ = -1;
  int wake_ = -1;
  std::thread thread_;
  std::vector<int> held_;  // serve() only
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::string lastRequest_;
};

// An address where nothing listens: a port bound and released.
net::SocketAddress refusingAddress() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  std::string error;
  auto a = net::resolve("127.0.0.1", ntohs(addr.sin_port), error);
  REQUIRE(a.has_value());
  return *a;
}

// What onChange reported, with the board as it stood at that moment.
struct Change {
  std::size_t backend;
  bool healthy;
  BackendStatus status;
  Clock::time_point at;
};

struct Recorder {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<Change> changes;

  Prober::OnChange callback(HealthBoard& board) {
    return [this, &board](std::size_t u, std::size_t b, bool healthy) {
      Change c{b, healthy, board.snapshot(0)[u].backends[b], Clock::now()};
      std::lock_guard lock(mutex);
      changes.push_back(std::move(c));
      changed.notify_all();
    };
  }
  // Waits (bounded) for the n-th change and returns it.
  Change wait(std::size_t n) {
    std::unique_lock lock(mutex);
    bool arrived = changed.wait_for(lock, kWait, [&] { return changes.size() >= n; });
    REQUIRE_MESSAGE(arrived, "no change number " << n);
    return changes[n - 1];
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return changes.size();
  }
};

ActiveCheck fastCheck() {
  ActiveCheck check;
  check.path = "/healthz";
  check.intervalMs = 20;
  check.timeoutMs = 1000;
  check.healthyThreshold = 2;
  check.unhealthyThreshold = 3;
  return check;
}

std::vector<UpstreamHealthSpec> specFor(std::size_t backends, const ActiveCheck& check) {
  UpstreamHealthSpec s;
  s.name = "api";
  for (std::size_t i = 0; i < backends; ++i)
    s.backends.push_back("backend-" + std::to_string(i) + ":80");
  s.active = check;
  std::vector<UpstreamHealthSpec> list;
  list.push_back(std::move(s));
  return list;
}

TEST_CASE("a backend answering 500 goes unhealthy after M probes and back after N 200s") {
  Origin origin;
  origin.status = 500;
  HealthBoard board(specFor(1, fastCheck()));
  Recorder recorder;
  Prober prober(board, {{origin.address()}}, recorder.callback(board));
  prober.start();

  Change down = recorder.wait(1);
  CHECK_FALSE(down.healthy);
  CHECK(down.status.state == BackendState::Unhealthy);
  CHECK(down.status.probeFailures == 3);
  CHECK(down.status.lastProbeStatus == 500);
  CHECK(down.status.lastProbeError == "status 500");
  CHECK_FALSE(board.usable(0, 0, 0));
  CHECK_FALSE(board.anyUsable(0, 0));
  // The probe was what the check describes.
  std::string request = origin.lastRequest();
  CHECK(request.rfind("GET /healthz HTTP/1.1\r\n", 0) == 0);
  CHECK(request.find("\r\nHost: backend-0:80\r\n") != std::string::npos);
  CHECK(request.find("\r\nUser-Agent: gatewayd-health\r\n") != std::string::npos);
  CHECK(request.find("\r\nConnection: close\r\n") != std::string::npos);

  origin.status = 200;
  Change up = recorder.wait(2);
  CHECK(up.healthy);
  CHECK(up.status.state == BackendState::Healthy);
  CHECK(up.status.probeSuccesses == 2);
  CHECK(board.usable(0, 0, 0));
  prober.stop();
  CHECK(recorder.count() == 2);
}

TEST_CASE("the first verdict comes after exactly M probes") {
  Origin origin;
  origin.status = 503;
  ActiveCheck check = fastCheck();
  check.intervalMs = 200;  // room to count: the next probe is far off when the verdict comes
  check.unhealthyThreshold = 2;
  HealthBoard board(specFor(1, check));
  Recorder recorder;
  int requestsAtChange = -1;
  Prober::OnChange record = recorder.callback(board);
  Prober prober(board, {{origin.address()}}, [&](std::size_t u, std::size_t b, bool healthy) {
    requestsAtChange = origin.requests();
    record(u, b, healthy);
  });
  prober.start();
  recorder.wait(1);
  prober.stop();
  CHECK(requestsAtChange == 2);
}

TEST_CASE("a backend that accepts and never answers fails by the timeout") {
  Origin origin;
  origin.mode = Origin::Mode::Silent;
  ActiveCheck check = fastCheck();
  check.intervalMs = 10;  // so the first probe starts within 10 ms
  check.timeoutMs = 150;
  check.unhealthyThreshold = 1;
  HealthBoard board(specFor(1, check));
  Recorder recorder;
  Prober prober(board, {{origin.address()}}, recorder.callback(board));
  Clock::time_point started = Clock::now();
  prober.start();
  Change down = recorder.wait(1);
  prober.stop();
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(down.at - started);
  // libevent's timers run on CLOCK_MONOTONIC_COARSE: a tick (up to 10 ms) early is on time.
  CHECK(elapsed.count() >= 150 - 10);
  CHECK(elapsed.count() < 150 + 10 + 500);
  CHECK(down.status.lastProbeError == "timeout");
  CHECK(down.status.lastProbeStatus == 0);
}

TEST_CASE("connection refused is a failure") {
  ActiveCheck check = fastCheck();
  check.unhealthyThreshold = 2;
  HealthBoard board(specFor(1, check));
  Recorder recorder;
  Prober prober(board, {{refusingAddress()}}, recorder.callback(board));
  prober.start();
  Change down = recorder.wait(1);
  prober.stop();
  CHECK_FALSE(down.healthy);
  CHECK(down.status.lastProbeError == "connect: Connection refused");
  CHECK(down.status.probeFailures == 2);
}

TEST_CASE("only the expected statuses pass") {
  Origin origin;
  ActiveCheck check = fastCheck();
  check.expectedStatuses = {{204, 204}, {418, 418}};
  check.healthyThreshold = 1;
  check.unhealthyThreshold = 1;
  HealthBoard board(specFor(1, check));
  Recorder recorder;
  Prober prober(board, {{origin.address()}}, recorder.callback(board));
  origin.status = 200;  // a 200 is not among them
  prober.start();
  Change c = recorder.wait(1);
  CHECK_FALSE(c.healthy);
  CHECK(c.status.lastProbeError == "status 200");
  origin.status = 418;
  c = recorder.wait(2);
  CHECK(c.healthy);
  CHECK(c.status.lastProbeStatus == 418);
  origin.status = 302;
  c = recorder.wait(3);
  CHECK_FALSE(c.healthy);
  origin.status = 204;
  c = recorder.wait(4);
  CHECK(c.healthy);
  prober.stop();
}

TEST_CASE("a reply that is not HTTP, or none at all, is a failure") {
  Origin garbage;
  garbage.mode = Origin::Mode::Garbage;
  Origin hangup;
  hangup.mode = Origin::Mode::Hangup;
  ActiveCheck check = fastCheck();
  check.unhealthyThreshold = 1;
  HealthBoard board(specFor(2, check));
  Recorder recorder;
  Prober prober(board, {{garbage.address(), hangup.address()}}, recorder.callback(board));
  prober.start();
  recorder.wait(2);
  prober.stop();
  std::lock_guard lock(recorder.mutex);
  for (const Change& c : recorder.changes) {
    CHECK_FALSE(c.healthy);
    CHECK(c.status.lastProbeError ==
          (c.backend == 0 ? "malformed status line" : "closed before the status line"));
  }
  CHECK_FALSE(board.anyUsable(0, 0));
}

TEST_CASE("each backend of each checked upstream is probed; unchecked upstreams are not") {
  Origin a, b, c;
  a.status = 500;
  b.status = 200;
  c.status = 500;
  ActiveCheck check = fastCheck();
  check.unhealthyThreshold = 1;
  std::vector<UpstreamHealthSpec> specs = specFor(2, check);
  UpstreamHealthSpec unchecked;
  unchecked.name = "quiet";
  unchecked.backends = {"127.0.0.1:1"};
  specs.push_back(unchecked);
  HealthBoard board(std::move(specs));
  Recorder recorder;
  Prober prober(board, {{a.address(), b.address()}, {c.address()}}, recorder.callback(board));
  prober.start();
  Change down = recorder.wait(1);
  // Let a few more rounds run: bounded by b being probed a few times too.
  for (int i = 0; i < 500 && b.requests() < 3; ++i) ::poll(nullptr, 0, 10);
  prober.stop();
  CHECK(down.backend == 0);
  CHECK(recorder.count() == 1);
  CHECK(b.requests() >= 3);
  CHECK(c.requests() == 0);
  CHECK(board.anyUsable(0, 0));
  CHECK(board.usable(1, 0, 0));
}

TEST_CASE("stop() returns promptly with a probe in flight") {
  Origin origin;
  origin.mode = Origin::Mode::Silent;
  ActiveCheck check = fastCheck();
  check.intervalMs = 1;
  check.timeoutMs = 60'000;
  HealthBoard board(specFor(1, check));
  Prober prober(board, {{origin.address()}});
  prober.start();
  // Wait (bounded) until the probe's connection is in: the origin holds it without answering.
  for (int i = 0; i < 500 && origin.connections() == 0; ++i) ::poll(nullptr, 0, 5);
  REQUIRE(origin.connections() == 1);
  Clock::time_point before = Clock::now();
  prober.stop();
  prober.stop();  // idempotent
  CHECK(Clock::now() - before < std::chrono::seconds(1));
  CHECK(board.usable(0, 0, 0));
}

TEST_CASE("an address list that does not match the board is refused") {
  HealthBoard board(specFor(2, fastCheck()));
  CHECK_THROWS_AS(Prober(board, {}), std::invalid_argument);
  CHECK_THROWS_AS(Prober(board, {{refusingAddress()}}), std::invalid_argument);
}

}  // namespace
}  // namespace gw::upstream
