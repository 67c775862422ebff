#include "gateway/upstream/cluster.h"

#include <doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gateway/core/libevent_ptr.h"

namespace gw::upstream {
namespace {

int64_t wallMs() {
  timeval now;
  ::gettimeofday(&now, nullptr);
  return int64_t(now.tv_sec) * 1000 + now.tv_usec / 1000;
}

// Waits (bounded) until the wall clock has moved on by at least `ms` milliseconds.
void letTimePass(int64_t ms) {
  int64_t until = wallMs() + ms;
  for (int i = 0; i < 1000 && wallMs() < until; ++i) ::poll(nullptr, 0, 1);
  REQUIRE(wallMs() >= until);
}

// Everything a Cluster needs from its worker, in destruction-safe order: the cluster dies first
// (burying its idle connections), then the graveyard frees them, then the loop goes.
struct Fixture {
  core::EventBasePtr base{event_base_new()};
  core::BlockRecycler blocks{4};
  core::Graveyard graveyard{base.get()};
  core::TimeoutCache timeouts{base.get()};
  http::HeadLimits limits;
  config::UpstreamConfig config;
  observability::UpstreamMetrics metrics;
  PassiveCheck passive;
  std::unique_ptr<HealthBoard> health;
  std::unique_ptr<Cluster> cluster;

  void addBackend(const std::string& host, uint16_t port, uint32_t weight = 1) {
    config::BackendConfig backend;
    backend.host = host;
    backend.port = port;
    backend.weight = weight;
    config.backends.push_back(backend);
  }
  void build() {
    std::vector<net::SocketAddress> addresses;
    for (const auto& b : config.backends) {
      std::string error;
      auto address = net::resolve(b.host, b.port, error);
      REQUIRE_MESSAGE(address.has_value(), error);
      addresses.push_back(*address);
    }
    UpstreamHealthSpec spec;
    spec.name = "u";
    spec.passive = passive;
    for (const auto& b : config.backends) spec.backends.push_back(b.host);
    health = std::make_unique<HealthBoard>(std::vector<UpstreamHealthSpec>{spec});
    cluster = std::make_unique<Cluster>(config, std::move(addresses), base.get(), graveyard,
                                        timeouts, limits, blocks, metrics, *health, 0);
  }
  // Backend i, without disturbing the balancer (it is the only candidate, so its weight nets 0).
  Backend& backend(std::size_t i) {
    Backend* b = cluster->pick(~(uint64_t(1) << i));
    REQUIRE(b != nullptr);
    REQUIRE(cluster->indexOf(*b) == i);
    return *b;
  }
  std::string picks(int n, uint64_t tried = 0) {
    std::string order;
    for (int i = 0; i < n; ++i) {
      Backend* b = cluster->pick(tried);
      order += b ? static_cast<char>('a' + cluster->indexOf(*b)) : '-';
    }
    return order;
  }
};

TEST_CASE("smooth weighted round-robin gives nginx's sequence for weights 5/1/1") {
  Fixture f;
  f.addBackend("127.0.0.1", 9001, 5);
  f.addBackend("127.0.0.1", 9002, 1);
  f.addBackend("127.0.0.1", 9003, 1);
  f.build();
  CHECK(f.cluster->backendCount() == 3);
  CHECK(f.picks(7) == "aabacaa");
  CHECK(f.picks(14) == "aabacaaaabacaa");
}

TEST_CASE("equal weights alternate; a backend's authority is host:port") {
  Fixture f;
  f.addBackend("127.0.0.1", 9001);
  f.addBackend("::1", 9002);
  f.build();
  CHECK(f.picks(4) == "abab");
  CHECK(f.backend(0).authority == "127.0.0.1:9001");
  CHECK(f.backend(1).authority == "[::1]:9002");
  CHECK(f.backend(1).config == &f.config.backends[1]);
}

// Which backend each of `keys` hashed keys picks.
std::vector<std::size_t> owners(Fixture& f, int keys, uint64_t tried = 0) {
  std::vector<std::size_t> out;
  for (int key = 0; key < keys; ++key) {
    Backend* b = f.cluster->pick(tried, balanceHash("user-" + std::to_string(key)));
    REQUIRE(b != nullptr);
    out.push_back(f.cluster->indexOf(*b));
  }
  return out;
}

std::vector<double> shareOf(const std::vector<std::size_t>& owners, std::size_t backends) {
  std::vector<double> share(backends);
  for (std::size_t owner : owners) share[owner] += 1.0 / static_cast<double>(owners.size());
  return share;
}

TEST_CASE("least_request: two random candidates, the one with fewer leased per weight wins") {
  Fixture f;
  f.config.load_balancing.policy = config::BalancingPolicy::LeastRequest;
  f.addBackend("127.0.0.1", 9001);
  f.addBackend("127.0.0.1", 9002);
  f.addBackend("127.0.0.1", 9003);
  f.build();
  // All idle, equal weights: uniform within 2 points over 30000 picks.
  std::vector<int> counts(3);
  for (int i = 0; i < 30'000; ++i) ++counts[f.cluster->indexOf(*f.cluster->pick(0))];
  for (int count : counts) CHECK(std::abs(count - 10'000) < 600);

  // The idle backend is in two of the three possible pairs and wins both: two thirds of picks;
  // the busy ones only when drawn together.
  f.backend(0).leased = 4;
  f.backend(2).leased = 4;
  counts.assign(3, 0);
  for (int i = 0; i < 30'000; ++i) ++counts[f.cluster->indexOf(*f.cluster->pick(0))];
  CHECK(std::abs(counts[1] - 20'000) < 600);
  // With two candidates left (one tried), the idle one always.
  CHECK(f.picks(20, 0b100) == std::string(20, 'b'));
  f.backend(0).leased = 0;
  f.backend(2).leased = 0;
}

TEST_CASE("least_request scales the load by weight") {
  Fixture f;
  f.config.load_balancing.policy = config::BalancingPolicy::LeastRequest;
  f.addBackend("127.0.0.1", 9001, 4);
  f.addBackend("127.0.0.1", 9002, 1);
  f.build();
  // (3 + 1) / 4 beats (1 + 1) / 1: the heavier backend carries more at once.
  f.backend(0).leased = 3;
  f.backend(1).leased = 1;
  CHECK(f.picks(10) == std::string(10, 'a'));
  f.backend(0).leased = 8;  // 9 / 4 > 2 / 1
  CHECK(f.picks(10) == std::string(10, 'b'));
  f.backend(0).leased = 0;
  f.backend(1).leased = 0;
}

TEST_CASE("hash: the same key, the same backend; keys spread by weight") {
  Fixture f;
  f.config.load_balancing.policy = config::BalancingPolicy::Hash;
  f.addBackend("127.0.0.1", 9001);
  f.addBackend("127.0.0.1", 9002, 2);
  f.addBackend("127.0.0.1", 9003);
  f.build();
  const std::vector<std::size_t> first = owners(f, 20'000);
  CHECK(owners(f, 20'000) == first);
  const std::vector<double> share = shareOf(first, 3);
  CHECK(share[0] == doctest::Approx(0.25).epsilon(0.08));
  CHECK(share[1] == doctest::Approx(0.50).epsilon(0.08));
  CHECK(share[2] == doctest::Approx(0.25).epsilon(0.08));
  // Without a key: round robin.
  CHECK(f.picks(4) == "bacb");
}

TEST_CASE("hash: a backend that leaves takes only its keys away, and they come back with it") {
  Fixture f;
  f.config.load_balancing.policy = config::BalancingPolicy::Hash;
  f.passive.consecutiveFailures = 1;
  f.passive.baseEjectionMs = 1000;  // long enough for the picks below on a loaded machine
  for (uint16_t port = 9001; port <= 9004; ++port) f.addBackend("127.0.0.1", port);
  f.build();
  const std::vector<std::size_t> before = owners(f, 20'000);

  REQUIRE(f.cluster->reportFailure(f.backend(1)));  // ejected
  const std::vector<std::size_t> during = owners(f, 20'000);
  std::size_t moved = 0;
  std::vector<std::size_t> movedTo(4);
  for (std::size_t k = 0; k < before.size(); ++k) {
    if (before[k] == 1) {
      REQUIRE(during[k] != 1);
      ++movedTo[during[k]];
      ++moved;
    } else {
      REQUIRE(during[k] == before[k]);  // nobody else's key moves
    }
  }
  // Its quarter of the keys moved, spread over the other three.
  CHECK(static_cast<double>(moved) / 20'000 == doctest::Approx(0.25).epsilon(0.08));
  for (std::size_t b : {0, 2, 3}) {
    CHECK(static_cast<double>(movedTo[b]) / static_cast<double>(moved) ==
          doctest::Approx(1.0 / 3).epsilon(0.15));
  }
  // A retry of a moved key avoids the backend it failed on; a key whose owner was tried goes on
  // in its own sequence too.
  CHECK(owners(f, 20'000, 0b0001) != during);

  letTimePass(1000);  // the ejection ends
  CHECK(owners(f, 20'000) == before);

  // The same for a backend only marked down after a refused connect.
  f.cluster->markDown(f.backend(2));
  for (std::size_t owner : owners(f, 2'000)) CHECK(owner != 2);
  f.cluster->markUp(f.backend(2));
  CHECK(owners(f, 20'000) == before);
}

TEST_CASE("pick skips backends already tried") {
  Fixture f;
  f.addBackend("127.0.0.1", 9001, 5);
  f.addBackend("127.0.0.1", 9002, 1);
  f.addBackend("127.0.0.1", 9003, 1);
  f.build();
  CHECK(f.picks(4, 0b001) == "bcbc");
  CHECK(f.picks(3, 0b011) == "ccc");
  CHECK(f.picks(1, 0b111) == "-");
}

TEST_CASE("a backend marked down is skipped until its backoff has passed") {
  Fixture f;
  f.addBackend("127.0.0.1", 9001, 5);
  f.addBackend("127.0.0.1", 9002, 1);
  f.addBackend("127.0.0.1", 9003, 1);
  f.build();
  Backend& a = f.backend(0);
  int64_t before = wallMs();
  f.cluster->markDown(a);
  int64_t after = wallMs();
  // The backoff is one second.
  CHECK(a.downUntilMs >= before + 1000);
  CHECK(a.downUntilMs <= after + 1000);
  CHECK(f.picks(6) == "bcbcbc");

  // One second later (moved back rather than waited for) it is in the rotation again.
  a.downUntilMs = wallMs() - 1;
  CHECK(f.picks(7) == "aabacaa");

  f.cluster->markDown(a);
  CHECK(f.picks(2) == "bc");
  f.cluster->markUp(a);
  CHECK(a.downUntilMs == 0);
  CHECK(f.picks(7) == "aabacaa");
}

TEST_CASE("when every candidate is down, the one down longest is tried") {
  Fixture f;
  f.addBackend("127.0.0.1", 9001);
  f.addBackend("127.0.0.1", 9002);
  f.addBackend("127.0.0.1", 9003);
  f.build();
  f.cluster->markDown(f.backend(1));
  letTimePass(2);
  f.cluster->markDown(f.backend(2));
  letTimePass(2);
  f.cluster->markDown(f.backend(0));
  CHECK(f.picks(3) == "bbb");
  CHECK(f.picks(2, 0b010) == "cc");
  CHECK(f.picks(1, 0b110) == "a");
  CHECK(f.picks(1, 0b111) == "-");
  // A live backend always wins over down ones.
  f.cluster->markUp(f.backend(2));
  CHECK(f.picks(2) == "cc");
}

TEST_CASE("backends the health board has out are never picked; the last one stays in") {
  Fixture f;
  f.addBackend("127.0.0.1", 9001);
  f.addBackend("127.0.0.1", 9002);
  f.build();
  Backend& a = f.backend(0);
  Backend& b = f.backend(1);
  CHECK(f.cluster->anyUsable());
  for (int i = 1; i < 5; ++i) CHECK_FALSE(f.cluster->reportFailure(a));
  CHECK(f.cluster->reportFailure(a));  // the fifth failure in a row ejects it
  CHECK(f.picks(4) == "bbbb");
  CHECK(f.cluster->anyUsable());
  // b's streak would eject the last backend in rotation: the cap keeps it in.
  for (int i = 0; i < 5; ++i) CHECK_FALSE(f.cluster->reportFailure(b));
  CHECK(f.picks(2) == "bb");
  CHECK(f.cluster->anyUsable());
  // A local markDown of the last one in rotation does not empty it either: tried anyway.
  f.cluster->markDown(b);
  CHECK(f.picks(2) == "bb");
}

// A loopback listener standing in for a backend; accepts the gateway's connections.
struct Origin {
  net::Fd listener;
  uint16_t port = 0;
  Origin() {
    std::string error;
    auto address = net::resolve("127.0.0.1", 0, error);
    REQUIRE(address.has_value());
    auto fd = net::listenOn(*address, net::PortSharing::ReusePort, error);
    REQUIRE_MESSAGE(fd.has_value(), error);
    listener = std::move(*fd);
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&bound), &len) == 0);
    port = ntohs(bound.sin_port);
  }
  net::Fd accept() {
    pollfd p{listener.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
    int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    REQUIRE(fd >= 0);
    return net::Fd(fd);
  }
};

// 0 when the gateway closed the connection, -1 (EAGAIN) when it is still open.
int peerState(const net::Fd& peer, int waitMs) {
  pollfd p{peer.get(), POLLIN, 0};
  ::poll(&p, 1, waitMs);
  char byte;
  ssize_t n = ::recv(peer.get(), &byte, 1, MSG_DONTWAIT);
  if (n < 0 && errno != EAGAIN) return -2;
  return static_cast<int>(n);
}
constexpr int kClosed = 0;
constexpr int kOpen = -1;

struct PoolFixture : Fixture {
  Origin origin;
  explicit PoolFixture(uint32_t maxIdle) {
    config.pool.max_idle_per_backend = maxIdle;
    addBackend("127.0.0.1", origin.port);
  }
  std::unique_ptr<Connection> connect() {
    int err = -1;
    auto connection = cluster->connect(backend(0), err);
    CHECK(err == 0);
    REQUIRE(connection != nullptr);
    return connection;
  }
  // Runs the loop until `done` holds, with a guard so a missing event fails instead of hanging.
  template <typename Done>
  bool loopUntil(Done done) {
    core::EventPtr guard(event_new(
        base.get(), -1, 0, [](evutil_socket_t, short, void*) {}, nullptr));
    timeval limit{2, 0};
    event_add(guard.get(), &limit);
    int64_t deadline = wallMs() + 2000;
    while (!done() && wallMs() < deadline) event_base_loop(base.get(), EVLOOP_ONCE);
    return done();
  }
};

TEST_CASE("a released clean connection is pooled and taken back as reused") {
  PoolFixture f(4);
  f.build();
  Backend& b = f.backend(0);
  auto connection = f.connect();
  net::Fd peer = f.origin.accept();
  Connection* raw = connection.get();
  CHECK_FALSE(connection->reused());
  CHECK(&connection->backend() == &b);

  CHECK(f.cluster->leasedConnections() == 1);
  CHECK(b.leased == 1);
  CHECK(f.cluster->idleConnections() == 0);
  f.cluster->release(std::move(connection));
  CHECK(b.leased == 0);
  REQUIRE(b.idle.size() == 1);
  CHECK(b.idle.back().get() == raw);
  CHECK(peerState(peer, 0) == kOpen);
  CHECK(f.cluster->leasedConnections() == 0);
  CHECK(f.cluster->idleConnections() == 1);

  auto again = f.cluster->takeIdle(b);
  CHECK(f.cluster->leasedConnections() == 1);
  CHECK(b.leased == 1);
  CHECK(f.cluster->idleConnections() == 0);
  CHECK(f.metrics.connects == 1);
  CHECK(f.metrics.reuses == 1);
  CHECK(again.get() == raw);
  CHECK(again->reused());
  CHECK_FALSE(again->closed());
  CHECK(b.idle.empty());
  CHECK(f.cluster->takeIdle(b) == nullptr);

  // Still the same TCP connection: bytes written on it reach the same peer.
  CHECK(peerState(peer, 0) == kOpen);
  again->output().append("ping");
  CHECK(again->flush() == core::OutQueue::WriteStatus::Drained);
  char got[8] = {};
  pollfd p{peer.get(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 2000) == 1);
  CHECK(::recv(peer.get(), got, sizeof got, 0) == 4);
  CHECK(std::string(got) == "ping");
  f.cluster->release(std::move(again));
}

TEST_CASE("rebind keeps the pool; counts and health go to the next generation's shard and board") {
  PoolFixture f(4);
  f.build();
  Backend& b = f.backend(0);
  f.cluster->release(f.connect());
  net::Fd peer = f.origin.accept();
  REQUIRE(b.idle.size() == 1);

  // What a reload hands over: its own copy of the same settings, a fresh shard and board (where
  // the upstream may sit at another index).
  const config::UpstreamConfig copy = f.config;
  observability::UpstreamMetrics nextMetrics;
  UpstreamHealthSpec other{"other", {"10.0.0.1:1"}, {}, {}};
  UpstreamHealthSpec same{"u", {"127.0.0.1"}, {}, {}};
  HealthBoard nextBoard({other, same});
  f.cluster->rebind(copy, nextMetrics, nextBoard, 1, nullptr);
  CHECK(&f.cluster->config() == &copy);
  CHECK(b.config == &copy.backends[0]);

  auto again = f.cluster->takeIdle(b);  // the pooled connection survived
  REQUIRE(again != nullptr);
  CHECK(nextMetrics.reuses == 1);
  CHECK(f.metrics.reuses == 0);
  CHECK_FALSE(f.cluster->reportFailure(b));
  const int64_t now = wallMs();
  CHECK(nextBoard.snapshot(now)[1].backends[0].consecutiveFailures == 1);
  CHECK(f.health->snapshot(now)[0].backends[0].consecutiveFailures == 0);
  f.cluster->release(std::move(again));
  // Back to the fixture's, which outlive the cluster.
  f.cluster->rebind(f.config, f.metrics, *f.health, 0, nullptr);
}

TEST_CASE("max_idle caps the pool: the extra connection is retired") {
  PoolFixture f(1);
  f.build();
  Backend& b = f.backend(0);
  auto first = f.connect();
  net::Fd firstPeer = f.origin.accept();
  auto second = f.connect();
  net::Fd secondPeer = f.origin.accept();
  Connection* secondRaw = second.get();

  f.cluster->release(std::move(first));
  f.cluster->release(std::move(second));
  CHECK(b.idle.size() == 1);
  CHECK(f.cluster->leasedConnections() == 0);  // the retired one counts in neither gauge
  CHECK(b.leased == 0);
  CHECK(f.cluster->idleConnections() == 1);
  CHECK(secondRaw->closed());  // closed at once, freed when the loop reaps it
  CHECK(peerState(secondPeer, 2000) == kClosed);
  CHECK(peerState(firstPeer, 0) == kOpen);
  event_base_loop(f.base.get(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
  CHECK(b.idle.size() == 1);
}

TEST_CASE("max_idle 0 disables pooling") {
  PoolFixture f(0);
  f.build();
  auto connection = f.connect();
  net::Fd peer = f.origin.accept();
  f.cluster->release(std::move(connection));
  CHECK(f.backend(0).idle.empty());
  CHECK(peerState(peer, 2000) == kClosed);
}

TEST_CASE("a connection with unread input is not pooled") {
  PoolFixture f(4);
  f.build();
  auto connection = f.connect();
  net::Fd peer = f.origin.accept();
  core::IoBuffer& in = connection->input();
  REQUIRE(in.reserve(4, 1024));
  std::memcpy(in.writePtr(), "junk", 4);
  in.commit(4);
  CHECK_FALSE(connection->clean());
  f.cluster->release(std::move(connection));
  CHECK(f.backend(0).idle.empty());
  CHECK(peerState(peer, 2000) == kClosed);
}

TEST_CASE("dropIdle closes one pooled connection and leaves the others") {
  PoolFixture f(4);
  f.build();
  Backend& b = f.backend(0);
  auto first = f.connect();
  net::Fd firstPeer = f.origin.accept();
  auto second = f.connect();
  net::Fd secondPeer = f.origin.accept();
  Connection* firstRaw = first.get();
  Connection* secondRaw = second.get();
  f.cluster->release(std::move(first));
  f.cluster->release(std::move(second));
  REQUIRE(b.idle.size() == 2);

  f.cluster->dropIdle(*firstRaw);
  REQUIRE(b.idle.size() == 1);
  CHECK(b.idle.front().get() == secondRaw);
  CHECK(peerState(firstPeer, 2000) == kClosed);
  CHECK(peerState(secondPeer, 0) == kOpen);
  // Dropping one that is no longer pooled changes nothing.
  f.cluster->dropIdle(*secondRaw);
  CHECK(b.idle.empty());
  f.cluster->dropIdle(*secondRaw);  // already dropped (still buried, not yet freed)
  CHECK(b.idle.empty());
}

TEST_CASE("an idle connection the backend closes is dropped from the pool") {
  PoolFixture f(4);
  f.build();
  Backend& b = f.backend(0);
  auto first = f.connect();
  net::Fd firstPeer = f.origin.accept();
  auto second = f.connect();
  net::Fd secondPeer = f.origin.accept();
  Connection* secondRaw = second.get();
  f.cluster->release(std::move(first));
  f.cluster->release(std::move(second));
  REQUIRE(b.idle.size() == 2);

  firstPeer.reset();
  CHECK(f.loopUntil([&] { return b.idle.size() == 1; }));
  REQUIRE(b.idle.size() == 1);
  CHECK(b.idle.front().get() == secondRaw);
  CHECK(peerState(secondPeer, 0) == kOpen);
}

TEST_CASE("an idle connection past the pool's idle timeout is closed") {
  PoolFixture f(4);
  f.config.pool.idle_timeout = std::chrono::milliseconds(30);
  f.build();
  Backend& b = f.backend(0);
  auto connection = f.connect();
  net::Fd peer = f.origin.accept();
  int64_t start = wallMs();
  f.cluster->release(std::move(connection));
  CHECK(f.loopUntil([&] { return b.idle.empty(); }));
  CHECK(wallMs() - start >= 29);
  CHECK(peerState(peer, 2000) == kClosed);
}

TEST_CASE("destroying the cluster closes its idle connections") {
  PoolFixture f(4);
  f.build();
  auto connection = f.connect();
  net::Fd peer = f.origin.accept();
  f.cluster->release(std::move(connection));
  CHECK(peerState(peer, 0) == kOpen);
  f.cluster.reset();
  CHECK(peerState(peer, 2000) == kClosed);
}

}  // namespace
}  // namespace gw::upstream
