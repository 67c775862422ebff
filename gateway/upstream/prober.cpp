#include "gateway/upstream/prober.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>

#include "gateway/core/libevent_ptr.h"
#include "gateway/net/tls_stream.h"

namespace gw::upstream {

namespace {

// The longest first delay: long enough to spread a startup burst, short enough that a backend
// already dead at startup is found soon.
constexpr int64_t kMaxFirstDelayMs = 1000;
// "HTTP/1.1 200 " is all the status line parseStatusLine ever needs.
constexpr std::size_t kStatusLineBytes = 13;

timeval toTimeval(int64_t ms) {
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool expected(const ActiveCheck& check, int status) {
  return std::any_of(
      check.expectedStatuses.begin(), check.expectedStatuses.end(),
      [&](const auto& range) { return status >= range.first && status <= range.second; });
}

std::string systemError(const char* call, int err) {
  return std::string(call) + ": " + std::strerror(err);
}

// The host of a "host:port" or "[v6]:port" authority (what the board names backends by).
std::string_view hostOf(std::string_view authority) {
  if (authority.starts_with('[')) return authority.substr(1, authority.find(']') - 1);
  return authority.substr(0, authority.rfind(':'));
}

}  // namespace

int parseStatusLine(std::string_view bytes) {
  constexpr std::string_view kPrefix = "HTTP/1.";
  std::size_t known = std::min(bytes.size(), kPrefix.size());
  if (bytes.substr(0, known) != kPrefix.substr(0, known)) return -1;
  // Positions after the prefix: minor version digit, SP, three digits, then SP or CR.
  for (std::size_t i = kPrefix.size(); i < std::min(bytes.size(), kStatusLineBytes); ++i) {
    char c = bytes[i];
    bool ok = (i == 8) ? c == ' ' : (i == 12) ? (c == ' ' || c == '\r') : isDigit(c);
    if (!ok) return -1;
  }
  if (bytes.size() < kStatusLineBytes) return 0;
  int status = (bytes[9] - '0') * 100 + (bytes[10] - '0') * 10 + (bytes[11] - '0');
  return status >= 100 && status <= 599 ? status : -1;
}

// One backend's probe cycle: Idle (timer = interval) -> Connecting -> [Handshaking ->] Sending ->
// Reading (timer = timeout) -> Idle. Lives on the prober's loop thread only.
struct Prober::Probe {
  enum class Phase : uint8_t { Idle, Connecting, Handshaking, Sending, Reading };

  Prober& owner;
  std::size_t upstream;
  std::size_t backend;
  const ActiveCheck& check;
  net::SocketAddress address;
  std::string request;
  core::EventPtr timer;
  core::EventPtr io;
  net::Fd fd;
  std::shared_ptr<const net::TlsClientContext> tlsContext;  // null: plain HTTP
  std::string host;                                         // the name TLS verifies
  net::TlsSession session;
  std::unique_ptr<net::TlsStream> tls;  // during a probe of a TLS backend
  Phase phase = Phase::Idle;
  std::size_t sent = 0;
  char head[kStatusLineBytes];
  std::size_t have = 0;

  Probe(Prober& prober, std::size_t u, std::size_t b, const ActiveCheck& c,
        const net::SocketAddress& a, const std::string& authority,
        std::shared_ptr<const net::TlsClientContext> tlsSide)
      : owner(prober),
        upstream(u),
        backend(b),
        check(c),
        address(a),
        tlsContext(std::move(tlsSide)),
        host(hostOf(authority)) {
    request = "GET " + check.path +
              " HTTP/1.1\r\nHost: " + (check.host.empty() ? authority : check.host) +
              "\r\nUser-Agent: gatewayd-health\r\nConnection: close\r\n\r\n";
    timer.reset(evtimer_new(owner.reactor_.base(), &Probe::onTimer, this));
  }

  void schedule(int64_t delayMs) {
    timeval delay = toTimeval(delayMs);
    evtimer_add(timer.get(), &delay);
  }

  static void onTimer(evutil_socket_t, short, void* arg) {
    auto* probe = static_cast<Probe*>(arg);
    if (probe->phase == Phase::Idle) {
      probe->begin();
    } else {
      probe->finish({false, 0, "timeout"});
    }
  }

  static void onIo(evutil_socket_t, short, void* arg) { static_cast<Probe*>(arg)->advance(); }

  void begin() {
    int err = 0;
    fd = net::connectNonBlocking(address, err);
    if (err != 0) {
      finish({false, 0, systemError("connect", err)});
      return;
    }
    phase = Phase::Connecting;
    sent = 0;
    have = 0;
    watch(EV_WRITE);
    schedule(check.timeoutMs);
  }

  void watch(short what) {
    if (io) {
      event_del(io.get());
      event_assign(io.get(), owner.reactor_.base(), fd.get(), what | EV_PERSIST, &Probe::onIo,
                   this);
    } else {
      io.reset(event_new(owner.reactor_.base(), fd.get(), what | EV_PERSIST, &Probe::onIo, this));
    }
    event_add(io.get(), nullptr);
  }

  void advance() {
    if (phase == Phase::Connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) return finish({false, 0, systemError("connect", err)});
      if (tlsContext) {
        tls = std::make_unique<net::TlsStream>(tlsContext, fd.get(), host, session);
        phase = Phase::Handshaking;
      } else {
        phase = Phase::Sending;
      }
    }
    if (phase == Phase::Handshaking) return handshake();
    if (phase == Phase::Sending) return send();
    if (phase == Phase::Reading) receive();
  }

  void handshake() {
    switch (tls->handshake()) {
      case net::TlsStream::Progress::Done:
        phase = Phase::Sending;
        watch(EV_WRITE);
        return send();
      case net::TlsStream::Progress::WantRead:
        return watch(EV_READ);
      case net::TlsStream::Progress::WantWrite:
        return watch(EV_WRITE);
      case net::TlsStream::Progress::Failed:
        return finish({false, 0, tls->failureMessage()});
    }
  }

  void send() {
    while (sent < request.size()) {
      const iovec rest{request.data() + sent, request.size() - sent};
      ssize_t n =
          tls ? tls->writev(&rest, 1) : ::send(fd.get(), rest.iov_base, rest.iov_len, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        return finish({false, 0, systemError("send", errno)});
      }
      sent += static_cast<std::size_t>(n);
    }
    phase = Phase::Reading;
    watch(EV_READ);
  }

  void receive() {
    ssize_t n = 0;
    do {  // TLS: what OpenSSL already decrypted is not announced by the socket
      n = tls ? tls->read(head + have, sizeof head - have)
              : ::recv(fd.get(), head + have, sizeof head - have, 0);
      if (n > 0) have += static_cast<std::size_t>(n);
    } while (n > 0 && tls && have < sizeof head && tls->hasBufferedInput());
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return finish({false, 0, systemError("recv", errno)});
    }
    int status = parseStatusLine(std::string_view(head, have));
    if (status < 0) return finish({false, 0, "malformed status line"});
    if (status == 0) {
      if (n == 0) finish({false, 0, "closed before the status line"});
      return;
    }
    // The rest of the response is of no interest; closing unread may reset the connection,
    // which costs the backend nothing but a log line at most.
    if (expected(check, status)) return finish({true, status, {}});
    finish({false, status, "status " + std::to_string(status)});
  }

  void finish(const ProbeOutcome& outcome) {
    io.reset();
    if (tls) {
      tls->shutdown();  // close_notify keeps the session resumable
      tls.reset();
    }
    fd.reset();
    phase = Phase::Idle;
    std::optional<bool> change = owner.board_.recordProbe(upstream, backend, outcome);
    // From the end of this probe, so a slow backend never has two probes at once.
    schedule(check.intervalMs);
    if (change && owner.onChange_) owner.onChange_(upstream, backend, *change);
  }
};

Prober::Prober(HealthBoard& board, const std::vector<std::vector<net::SocketAddress>>& addresses,
               OnChange onChange,
               const std::vector<std::shared_ptr<const net::TlsClientContext>>& tls)
    : board_(board), onChange_(std::move(onChange)) {
  if (addresses.size() != board.upstreamCount()) {
    throw std::invalid_argument("prober: address list does not match the health board");
  }
  if (!tls.empty() && tls.size() != board.upstreamCount()) {
    throw std::invalid_argument("prober: TLS list does not match the health board");
  }
  for (std::size_t u = 0; u < addresses.size(); ++u) {
    const UpstreamHealthSpec& spec = board.spec(u);
    if (!spec.active) continue;
    if (addresses[u].size() != spec.backends.size()) {
      throw std::invalid_argument("prober: backend addresses of upstream '" + spec.name +
                                  "' do not match the health board");
    }
    for (std::size_t b = 0; b < spec.backends.size(); ++b) {
      probes_.push_back(std::make_unique<Probe>(*this, u, b, *spec.active, addresses[u][b],
                                                spec.backends[b], tls.empty() ? nullptr : tls[u]));
    }
  }
}

Prober::~Prober() { stop(); }

void Prober::start() {
  if (running_) return;
  std::minstd_rand random(std::random_device{}());
  for (auto& probe : probes_) {
    int64_t spread = std::min(probe->check.intervalMs, kMaxFirstDelayMs);
    probe->schedule(spread > 0 ? std::uniform_int_distribution<int64_t>(0, spread - 1)(random) : 0);
  }
  running_ = true;
  reactor_.start();
}

void Prober::stop() {
  if (!running_) return;
  running_ = false;
  reactor_.post([this] {
    probes_.clear();
    reactor_.stop();
  });
  reactor_.join();
}

}  // namespace gw::upstream
