// redis::Connection against a real redis-server, driven on an event_base of the test's own (no
// gatewayd): the handshake, pipelining, NOSCRIPT, both timeouts, the breaker through kill, pause
// and restart, and the waiter's life cycle rules that hiredis's ownership makes risky (run these
// under ASan).
#include "gateway/redis/connection.h"

#include <doctest/doctest.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/core/clock.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/redis/script.h"
#include "test/support/redis_server.h"

namespace gw::it {
namespace {

using redis::Failure;
using redis::State;
using std::chrono::milliseconds;

constexpr std::size_t kCommandsKind = static_cast<std::size_t>(observability::RedisCommand::Other);

std::size_t errorCount(const observability::RedisMetrics& metrics,
                       observability::RedisError error) {
  return metrics.errors[static_cast<std::size_t>(error)];
}

// Records each reply as text: a string or status as it is, an integer in decimal, an error as
// "ERR: ...", nil as "(nil)", an array as "[a,b]"; nothing for a failure.
struct Recorder : redis::Waiter {
  int replies = 0;
  Failure failure = Failure::None;
  std::string text;
  std::function<void()> then;  // run at the end of onReply

  void onReply(const redisReply* reply, Failure why) override {
    ++replies;
    failure = why;
    text = reply ? describe(reply) : "";
    if (then) then();
  }
  static std::string describe(const redisReply* reply) {
    switch (reply->type) {
      case REDIS_REPLY_INTEGER:
        return std::to_string(reply->integer);
      case REDIS_REPLY_NIL:
        return "(nil)";
      case REDIS_REPLY_ERROR:
        return "ERR: " + std::string(reply->str, reply->len);
      case REDIS_REPLY_ARRAY: {
        std::string out = "[";
        for (std::size_t i = 0; i < reply->elements; ++i) {
          out += (i ? "," : "") + describe(reply->element[i]);
        }
        return out + "]";
      }
      default:
        return std::string(reply->str, reply->len);
    }
  }
};

// What a command came back with.
struct Reply {
  Failure failure = Failure::None;
  std::string text;
};

class Loop {
 public:
  Loop() : base_(event_base_new()) {}
  event_base* base() const { return base_.get(); }
  // Runs the loop until `done` holds or `timeout` passes; whether it held.
  bool runUntil(const std::function<bool()>& done, milliseconds timeout = milliseconds(3000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      // One round of events, or a millisecond when none comes (so that `done` is asked again).
      const timeval tick{0, 1000};
      event_base_loopexit(base_.get(), &tick);
      event_base_loop(base_.get(), EVLOOP_ONCE);
    }
    return true;
  }

 private:
  core::EventBasePtr base_;
};

config::RedisConfig configFor(uint16_t port) {
  config::RedisConfig config;
  config.address = "127.0.0.1:" + std::to_string(port);
  config.host = "127.0.0.1";
  config.port = port;
  config.connect_timeout = milliseconds(200);
  config.command_timeout = milliseconds(100);
  config.reconnect_initial = milliseconds(20);
  config.reconnect_max = milliseconds(200);
  config.half_open_probes = 2;
  return config;
}

struct Fixture {
  explicit Fixture(const config::RedisConfig& config, std::vector<std::string> serverArgs = {})
      : server(std::move(serverArgs)) {
    config::RedisConfig forServer = config;
    if (forServer.port == 0) {
      forServer.port = server.port();
      forServer.address = server.address();
    }
    connection = std::make_unique<redis::Connection>(loop.base(), forServer, "gatewayd-test",
                                                     metrics, &board, 0);
  }
  // Sends PINGs until the breaker closes (each is one of its probes).
  bool closed(milliseconds timeout = milliseconds(3000)) {
    Recorder ping;
    return loop.runUntil(
        [&] {
          if (connection->state() == State::Closed) return true;
          if (!ping.waiting()) command({"PING"}, ping);
          return false;
        },
        timeout);
  }
  Failure command(std::vector<std::string_view> argv, Recorder& waiter) {
    return connection->command(argv, &waiter);
  }
  // Sends argv and runs the loop until its reply.
  Reply roundTrip(std::vector<std::string_view> argv) {
    Recorder waiter;
    REQUIRE(command(std::move(argv), waiter) == Failure::None);
    REQUIRE(loop.runUntil([&] { return waiter.replies == 1; }));
    return {waiter.failure, waiter.text};
  }

  Loop loop;
  RedisServer server;
  observability::RedisMetrics metrics;
  redis::StateBoard board{1};
  std::unique_ptr<redis::Connection> connection;
};

config::RedisConfig defaults() { return configFor(0); }

const redis::Script kEcho("echo", "return {KEYS[1], ARGV[1]}");

}  // namespace

TEST_CASE("redis connection: connects, probes, closes; commands are pipelined in order") {
  Fixture f(defaults());
  CHECK(f.connection->state() == State::Connecting);
  CHECK(f.board.get(0) == State::Connecting);
  Recorder early;
  CHECK(f.command({"PING"}, early) == Failure::Down);  // never wait on a connect
  CHECK(f.loop.runUntil([&] { return f.connection->state() == State::HalfOpen; }));
  CHECK(f.board.get(0) == State::HalfOpen);
  REQUIRE(f.closed());
  CHECK(f.board.get(0) == State::Closed);
  CHECK(f.metrics.reconnects == 0);

  // 200 commands issued in one turn of the loop, answered in order.
  std::vector<Recorder> replies(200);
  for (Recorder& r : replies) REQUIRE(f.command({"INCR", "n"}, r) == Failure::None);
  CHECK(f.connection->pending() == 200);
  CHECK(f.metrics.pending == 200);
  REQUIRE(f.loop.runUntil([&] { return replies.back().replies == 1; }));
  for (std::size_t i = 0; i < replies.size(); ++i) {
    CHECK(replies[i].failure == Failure::None);
    CHECK(replies[i].text == std::to_string(i + 1));
  }
  CHECK(f.connection->pending() == 0);
  CHECK(f.metrics.pending == 0);
  CHECK(f.metrics.round_trip[kCommandsKind].count() >= 200);
  CHECK(f.server.call({"GET", "n"}) == "200");
  const std::string info = f.roundTrip({"CLIENT", "INFO"}).text;
  CHECK(info.find("name=gatewayd-test") != std::string::npos);

  // An error reply reaches the waiter as ServerError with the reply; the connection stays.
  const Reply wrong = f.roundTrip({"INCR"});
  CHECK(wrong.failure == Failure::ServerError);
  CHECK(wrong.text.starts_with("ERR: ERR wrong number of arguments"));
  CHECK(f.connection->state() == State::Closed);
}

TEST_CASE("redis connection: round trips on loopback (figures for the report)") {
  Fixture f(defaults());
  REQUIRE(f.closed());
  std::vector<int64_t> micros;
  for (int i = 0; i < 2000; ++i) {
    const int64_t start = core::monotonicUs();
    f.roundTrip({"PING"});
    micros.push_back(core::monotonicUs() - start);
  }
  std::sort(micros.begin(), micros.end());
  MESSAGE("PING round trip on loopback, one at a time: p50 "
          << micros[micros.size() / 2] << " us, p99 " << micros[micros.size() * 99 / 100] << " us");
  CHECK(micros[micros.size() / 2] < 100'000);
}

TEST_CASE("redis connection: AUTH with requirepass, with an ACL user, and a wrong password") {
  SUBCASE("requirepass") {
    config::RedisConfig config = defaults();
    config.password = "s3cret";
    Fixture f(config, {"--requirepass", "s3cret"});
    REQUIRE(f.closed());
    CHECK(f.roundTrip({"SET", "k", "v"}).text == "OK");
  }
  SUBCASE("an ACL user") {
    config::RedisConfig config = defaults();
    config.username = "gw";
    config.password = "pw";
    Fixture f(config, {"--user", "gw", "on", ">pw", "~*", "&*", "+@all"});
    REQUIRE(f.closed());
    CHECK(f.roundTrip({"ACL", "WHOAMI"}).text == "gw");
  }
  SUBCASE("a wrong password opens the breaker and is counted") {
    config::RedisConfig config = defaults();
    config.password = "wrong";
    Fixture f(config, {"--requirepass", "s3cret"});
    REQUIRE(f.loop.runUntil(
        [&] { return errorCount(f.metrics, observability::RedisError::AuthFailed) >= 1; }));
    CHECK(f.connection->state() == State::Open);
    CHECK(f.board.get(0) == State::Open);
    Recorder r;
    CHECK(f.command({"PING"}, r) == Failure::Down);
    CHECK(f.metrics.rejected[static_cast<std::size_t>(observability::RedisRejection::Down)] >= 1);
  }
}

TEST_CASE("redis connection: SELECT the configured database") {
  config::RedisConfig config = defaults();
  config.database = 3;
  Fixture f(config);
  REQUIRE(f.closed());
  CHECK(f.roundTrip({"SET", "k", "in3"}).text == "OK");
  CHECK(f.roundTrip({"CLIENT", "INFO"}).text.find(" db=3 ") != std::string::npos);
  CHECK(f.server.call({"GET", "k"}) == "(nil)");  // database 0 does not have it
}

TEST_CASE("redis connection: scripts are loaded at connect; after SCRIPT FLUSH, EVAL is used") {
  Fixture f(defaults());
  f.connection->use(kEcho);
  REQUIRE(f.closed());
  CHECK(f.server.call({"SCRIPT", "EXISTS", kEcho.sha1()}) == "1");
  const std::string_view keys[] = {"k"};
  const std::string_view args[] = {"a"};
  const auto eval = [&] {
    Recorder r;
    REQUIRE(f.connection->eval(kEcho, keys, args, r) == Failure::None);
    REQUIRE(f.loop.runUntil([&] { return r.replies == 1; }));
    return Reply{r.failure, r.text};
  };
  CHECK(eval().text == "[k,a]");
  CHECK(f.server.call({"SCRIPT", "FLUSH"}) == "OK");
  const Reply afterFlush = eval();
  CHECK(afterFlush.failure == Failure::None);
  CHECK(afterFlush.text == "[k,a]");
  CHECK(errorCount(f.metrics, observability::RedisError::NoScript) == 1);
  CHECK(f.server.call({"SCRIPT", "EXISTS", kEcho.sha1()}) == "1");  // EVAL cached it again
  CHECK(eval().text == "[k,a]");
  CHECK(errorCount(f.metrics, observability::RedisError::NoScript) == 1);
  CHECK(f.metrics.round_trip[kCommandsKind].count() >= 3);
}

TEST_CASE("redis connection: a hung Redis times out within command_timeout, then Down at once") {
  Fixture f(defaults());
  REQUIRE(f.closed());
  f.server.pause();
  Recorder first;
  Recorder second;
  const int64_t sent = core::monotonicUs();
  REQUIRE(f.command({"PING"}, first) == Failure::None);
  REQUIRE(f.command({"PING"}, second) == Failure::None);
  REQUIRE(f.loop.runUntil([&] { return second.replies == 1; }));
  const int64_t waitedMs = (core::monotonicUs() - sent) / 1000;
  CHECK(first.failure == Failure::Timeout);
  CHECK(second.failure == Failure::Timeout);
  CHECK(waitedMs >= 95);  // libevent rounds its timers to the millisecond
  CHECK(waitedMs <= 100 + 100);  // a margin for a loaded machine
  CHECK(f.connection->state() == State::Open);
  CHECK(f.board.get(0) == State::Open);
  CHECK(errorCount(f.metrics, observability::RedisError::Timeout) == 2);
  Recorder refused;
  CHECK(f.command({"PING"}, refused) == Failure::Down);
  CHECK(refused.replies == 0);
  f.server.resume();
  CHECK(f.closed(milliseconds(200 + 200 + 500)));
  CHECK(f.metrics.reconnects >= 1);
}

TEST_CASE("redis connection: a killed Redis fails the commands in flight; a restart closes it") {
  config::RedisConfig config = defaults();
  config.command_timeout = milliseconds(2000);  // the kill, not the timeout, ends the command
  Fixture f(config);
  REQUIRE(f.closed());
  f.server.pause();  // so that the command is surely in flight when the server dies
  Recorder inFlight;
  REQUIRE(f.command({"PING"}, inFlight) == Failure::None);
  f.loop.runUntil([] { return false; }, milliseconds(10));
  f.server.kill();
  REQUIRE(f.loop.runUntil([&] { return inFlight.replies == 1; }));
  CHECK(inFlight.failure == Failure::Disconnected);
  CHECK(f.connection->state() == State::Open);
  Recorder refused;
  CHECK(f.command({"PING"}, refused) == Failure::Down);
  // While it is down, reconnects fail and back off up to reconnect_max.
  f.loop.runUntil([] { return false; }, milliseconds(300));
  CHECK(errorCount(f.metrics, observability::RedisError::ConnectFailed) >= 2);
  f.server.restart();
  const auto restarted = std::chrono::steady_clock::now();
  REQUIRE(f.loop.runUntil([&] { return f.connection->state() == State::HalfOpen; },
                          milliseconds(200 + 200 + 100)));
  CHECK(std::chrono::steady_clock::now() - restarted <= milliseconds(200 + 200 + 100));
  CHECK(f.closed());
}

TEST_CASE("redis connection: a peer that accepts and never answers fails the connect_timeout") {
  uint16_t port = 0;
  const int listener = listenOnLoopback(16, port);
  Loop loop;
  observability::RedisMetrics metrics;
  redis::StateBoard board(1);
  const int64_t start = core::monotonicUs();
  redis::Connection connection(loop.base(), configFor(port), "gatewayd-test", metrics, &board, 0);
  CHECK(loop.runUntil([&] { return connection.state() == State::Open; }));
  const int64_t tookMs = (core::monotonicUs() - start) / 1000;
  CHECK(tookMs >= 190);  // libevent rounds its timers to the millisecond
  CHECK(tookMs <= 200 + 100);
  CHECK(errorCount(metrics, observability::RedisError::ConnectFailed) == 1);
  ::close(listener);
}

TEST_CASE("redis connection: a cancelled waiter hears nothing; the reply is still counted") {
  Fixture f(defaults());
  REQUIRE(f.closed());
  const uint64_t before = f.metrics.round_trip[kCommandsKind].count();
  Recorder cancelled;
  REQUIRE(f.command({"PING"}, cancelled) == Failure::None);
  cancelled.cancel();
  CHECK_FALSE(cancelled.waiting());
  REQUIRE(f.loop.runUntil([&] { return f.connection->pending() == 0; }));
  CHECK(cancelled.replies == 0);
  CHECK(f.metrics.round_trip[kCommandsKind].count() == before + 1);
  {
    // A waiter destroyed while its command is in flight (its destructor cancels).
    auto gone = std::make_unique<Recorder>();
    REQUIRE(f.command({"PING"}, *gone) == Failure::None);
  }
  REQUIRE(f.loop.runUntil([&] { return f.connection->pending() == 0; }));
}

TEST_CASE("redis connection: a waiter may be destroyed, or send again, inside onReply") {
  Fixture f(defaults());
  REQUIRE(f.closed());
  auto* selfDestroying = new Recorder;
  bool destroyed = false;
  selfDestroying->then = [&] {
    destroyed = true;
    delete selfDestroying;
  };
  REQUIRE(f.command({"PING"}, *selfDestroying) == Failure::None);
  Recorder chained;
  int chain = 0;
  chained.then = [&] {
    if (++chain < 3) REQUIRE(f.command({"INCR", "chain"}, chained) == Failure::None);
  };
  REQUIRE(f.command({"INCR", "chain"}, chained) == Failure::None);
  REQUIRE(f.loop.runUntil([&] { return destroyed && chain == 3; }));
  CHECK(chained.text == "3");
  CHECK(f.connection->pending() == 0);
}

TEST_CASE("redis connection: past max_pending a command is refused at once, nothing sent") {
  config::RedisConfig config = defaults();
  config.max_pending = 4;
  Fixture f(config);
  REQUIRE(f.closed());
  std::vector<Recorder> queued(4);
  for (Recorder& r : queued) REQUIRE(f.command({"PING"}, r) == Failure::None);
  Recorder over;
  CHECK(f.command({"PING"}, over) == Failure::Overloaded);
  CHECK(f.metrics.rejected[static_cast<std::size_t>(observability::RedisRejection::Overloaded)] ==
        1);
  REQUIRE(f.loop.runUntil([&] { return queued.back().replies == 1; }));
  CHECK(over.replies == 0);
  CHECK(f.connection->state() == State::Closed);  // a bound, not a trip
  CHECK(f.command({"PING"}, over) == Failure::None);
  REQUIRE(f.loop.runUntil([&] { return over.replies == 1; }));
}

TEST_CASE("redis connection: consecutive error replies open the breaker") {
  config::RedisConfig config = defaults();
  config.breaker_errors = 3;
  Fixture f(config);
  REQUIRE(f.closed());
  for (int i = 0; i < 3; ++i) CHECK(f.roundTrip({"NOSUCHCOMMAND"}).failure == Failure::ServerError);
  CHECK(f.connection->state() == State::Open);
  CHECK(f.closed());  // it reconnects and probes again
}

TEST_CASE("redis connection: destroyed with commands in flight, each waiter hears Disconnected") {
  Fixture f(defaults());
  REQUIRE(f.closed());
  f.server.pause();
  Recorder a;
  Recorder b;
  REQUIRE(f.command({"PING"}, a) == Failure::None);
  REQUIRE(f.command({"PING"}, b) == Failure::None);
  Recorder late;
  redis::Connection* dying = f.connection.get();
  const std::string_view ping[] = {"PING"};
  a.then = [&] { CHECK(dying->command(ping, &late) == Failure::Down); };
  f.connection.reset();
  CHECK(a.replies == 1);
  CHECK(a.failure == Failure::Disconnected);
  CHECK(b.failure == Failure::Disconnected);
  CHECK(late.replies == 0);
  f.server.resume();
}

}  // namespace gw::it
