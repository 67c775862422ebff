#include "test/fuzz/loopback_gateway.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "test/fuzz/fixed_config.h"
#include "test/fuzz/fuzz_check.h"

namespace gw::fuzz {

namespace {

// Loop turns in a row in which no byte moved and no connection came: the worker is waiting.
constexpr int kQuietPasses = 3;
// A worker still busy after this many turns of one pump() spins.
constexpr int kMaxPasses = 200'000;
// Rounds of pump() that closing both peers may take until the worker holds nothing.
constexpr int kMaxTeardownRounds = 100;
// The worker's end of the client socket holds little, so a client that does not read fills it
// (and the worker's own output queue) with a few KB.
constexpr int kClientSocketBuffer = 4096;

// Closes with a reset: neither side keeps the connection in TIME_WAIT, which millions of
// inputs would otherwise fill the loopback's port range with.
void abort(int fd) {
  const linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::close(fd);
}

// Appends what `fd` has to read; `ended` is set at EOF or on an error. True if anything came.
bool readAvailable(int fd, std::string& into, bool& ended) {
  bool moved = false;
  char buffer[16 * 1024];
  while (true) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      into.append(buffer, static_cast<std::size_t>(n));
      moved = true;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return moved;
    ended = true;
    return true;
  }
}

// Sends what it can of `bytes` and removes it from the front; false on a dead socket.
bool sendSome(int fd, std::string& bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
  }
  return true;
}

// `bytes` on one line, with C escapes for what is not printable.
void printEscaped(const char* label, std::string_view bytes) {
  std::fprintf(stderr, "  %s (%zu bytes): \"", label, bytes.size());
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\r') {
      std::fputs("\\r", stderr);
    } else if (c == '\n') {
      std::fputs("\\n", stderr);
    } else if (c == '"' || c == '\\') {
      std::fprintf(stderr, "\\%c", c);
    } else if (byte < 0x20 || byte >= 0x7f) {
      std::fprintf(stderr, "\\x%02x", byte);
    } else {
      std::fputc(c, stderr);
    }
  }
  std::fputs("\"\n", stderr);
}

}  // namespace

LoopbackGateway::LoopbackGateway(std::string_view yaml) {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  FUZZ_REQUIRE(listener_ >= 0, "no socket for the backend");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  FUZZ_REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                   ::listen(listener_, 1024) == 0 &&
                   ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) == 0,
               "the backend cannot listen on 127.0.0.1");
  backendAuthority_ = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  std::string text(yaml);
  constexpr std::string_view kPlaceholder = "${BACKEND}";
  for (std::size_t at = text.find(kPlaceholder); at != std::string::npos;
       at = text.find(kPlaceholder, at)) {
    text.replace(at, kPlaceholder.size(), backendAuthority_);
  }
  snapshot_ = fixedSnapshot(text);
  std::vector<upstream::UpstreamHealthSpec> specs;
  for (std::size_t u = 0; u < snapshot_->config.upstreams.size(); ++u) {
    upstream::UpstreamHealthSpec& spec = specs.emplace_back();
    spec.name = snapshot_->config.upstreams[u].name;
    spec.backends = snapshot_->metricsLayout->upstreams[u].backends;
  }
  health_ = std::make_shared<upstream::HealthBoard>(std::move(specs));
  worker_ = std::make_unique<runtime::Worker>(0, snapshot_, health_, proxy::SharedServices{});
}

Session::Session(LoopbackGateway& gateway, const char* clientIp) : gateway_(gateway) {
  int fds[2];
  FUZZ_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0,
               "socketpair failed");
  ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &kClientSocketBuffer, sizeof kClientSocketBuffer);
  client_ = fds[1];
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(40000);
  FUZZ_REQUIRE(::inet_pton(AF_INET, clientIp, &peer.sin_addr) == 1, "a bad client address");
  gateway_.worker().adopt(net::Fd(fds[0]), reinterpret_cast<const sockaddr*>(&peer));
  failureContext() = [this] {
    printEscaped("the client received", clientReceived_);
    for (std::size_t i = 0; i < backends_.size(); ++i) {
      const std::string label = "backend connection " + std::to_string(i) + " received";
      printEscaped(label.c_str(), backends_[i]->received);
    }
  };
}

Session::~Session() {
  tearingDown_ = true;
  closeClient();
  for (auto& backend : backends_) {
    if (backend->fd >= 0) abort(backend->fd);
    backend->fd = -1;
  }
  runtime::Worker& worker = gateway_.worker();
  for (int round = 0;; ++round) {
    pump();
    const observability::WorkerMetrics metrics = worker.metricsSnapshot();
    const auto& pool = metrics.upstreams[0];
    if (metrics.downstream_connections == 0 && pool.active_connections == 0 &&
        pool.idle_connections == 0) {
      break;
    }
    FUZZ_REQUIRE(round < kMaxTeardownRounds,
                 "the worker still holds a connection after both peers closed theirs");
  }
  worker.context().graveyard().reap();
  failureContext() = nullptr;
}

void Session::pump() {
  event_base* base = gateway_.worker().base();
  int quiet = 0;
  for (int pass = 0; quiet < kQuietPasses; ++pass) {
    FUZZ_REQUIRE(pass < kMaxPasses, "the worker never went quiet (a busy loop?)");
    event_base_loop(base, EVLOOP_NONBLOCK);
    const bool backendMoved = serveBackends();
    const bool clientMoved = readClient();
    quiet = backendMoved || clientMoved ? 0 : quiet + 1;
  }
}

bool Session::send(std::string_view bytes) {
  std::string rest(bytes);
  while (client_ >= 0) {
    if (!sendSome(client_, rest)) return false;
    if (rest.empty()) return true;
    const std::size_t before = rest.size();
    pump();
    if (!sendSome(client_, rest)) return false;
    if (rest.size() == before) return false;  // the worker does not read it
  }
  return false;
}

void Session::closeClient() {
  if (client_ < 0) return;
  ::close(client_);
  client_ = -1;
}

void Session::answer(BackendConnection& connection, std::string_view bytes) {
  connection.unsent.append(bytes);
  if (connection.fd >= 0) sendSome(connection.fd, connection.unsent);
}

void Session::finishSending(BackendConnection& connection) {
  for (int round = 0; connection.fd >= 0 && !connection.unsent.empty(); ++round) {
    FUZZ_REQUIRE(round < kMaxTeardownRounds, "the worker stopped reading its backend");
    pump();
  }
  if (connection.fd >= 0) ::shutdown(connection.fd, SHUT_WR);
}

bool Session::serveBackends() {
  bool moved = false;
  while (true) {
    const int fd = ::accept4(gateway_.listener(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    moved = true;
    if (tearingDown_) {
      abort(fd);  // tearing down: nothing is served any more
      continue;
    }
    backends_.push_back(std::make_unique<BackendConnection>(fd));
  }
  for (auto& connection : backends_) {
    BackendConnection& backend = *connection;
    if (backend.fd < 0) continue;
    if (!backend.unsent.empty()) {
      const std::size_t unsent = backend.unsent.size();
      if (!sendSome(backend.fd, backend.unsent)) backend.unsent.clear();  // reset by the worker
      moved = moved || backend.unsent.size() != unsent;
    }
    if (!backendReads_ || backend.ended) continue;
    const std::size_t before = backend.received.size();
    if (!readAvailable(backend.fd, backend.received, backend.ended)) continue;
    moved = true;
    if (backend.received.size() > before) {
      if (backend.error == HPE_OK) {
        backend.error = backend.requests.read(std::string_view(backend.received).substr(before));
      }
      if (onRequestBytes) onRequestBytes(backend);
    }
  }
  return moved;
}

bool Session::readClient() {
  if (!clientReads_ || client_ < 0 || clientEnded_) return false;
  return readAvailable(client_, clientReceived_, clientEnded_);
}

}  // namespace gw::fuzz
