// rate_limit with its counters in Redis. First the script itself against a real redis-server: it
// must decide exactly as the process-local WindowTable does (the Lua computes in doubles, the
// table in int64). Then through gatewayd: several instances on one Redis share one limit, and
// each on_redis_error policy holds while Redis is killed or hung.
#include <doctest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gateway/redis/script.h"
#include "plugins/rate_limit/redis_window.h"
#include "plugins/rate_limit/window_table.h"
#include "test/support/harness.h"
#include "test/support/redis_server.h"

using namespace gw::it;
namespace rl = gw::plugins::rate_limit;

namespace {

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

// Calls the script with the clock pinned, as MULTI / EVALSHA / PTTL / PERSIST / EXEC: the TTL
// the script sets runs on Redis's real clock while the pinned clock moves at the test's pace, so
// the key is made persistent at once, in the same transaction, and PTTL reads the TTL the call
// set. The commands of a transaction run back to back, but a loaded machine can deschedule Redis
// between two of them for milliseconds: PTTL then reads less, and a TTL of 2 ms (1 ms windows)
// can even run out before the PERSIST (`persisted` false).
class ScriptCaller {
 public:
  explicit ScriptCaller(const RedisServer& redis) : c_(redisConnect("127.0.0.1", redis.port())) {
    REQUIRE(c_);
    REQUIRE(c_->err == 0);
    REQUIRE(redis.call({"SCRIPT", "LOAD", rl::windowScript().source()}) ==
            rl::windowScript().sha1());
  }

  struct Call {
    std::optional<rl::Grant> grant;
    long long ttlMs = 0;  // after the call: -1 none (persisted before), else the TTL it set
    bool persisted = false;
  };

  Call call(const rl::RedisWindow& window, const std::string& key, int64_t want, rl::Share share,
            int64_t nowMs) {
    const std::string wantText = std::to_string(want);
    const std::string nowText = std::to_string(nowMs);
    std::array<std::string_view, rl::RedisWindow::kMaxArgs> args;
    const std::size_t count = window.args(wantText, share, nowText, args);
    std::vector<std::string> argv{"EVALSHA", rl::windowScript().sha1(), "1", key};
    argv.insert(argv.end(), args.begin(), args.begin() + count);
    append({"MULTI"});
    append(argv);
    append({"PTTL", key});
    append({"PERSIST", key});
    append({"EXEC"});
    for (int i = 0; i < 4; ++i) next();  // OK, QUEUED x 3
    ReplyPtr exec = next();
    REQUIRE(exec->type == REDIS_REPLY_ARRAY);
    REQUIRE(exec->elements == 3);
    Call result;
    result.grant = rl::decodeGrant(exec->element[0], window.limitCount(), want);
    result.ttlMs = exec->element[1]->integer;
    result.persisted = exec->element[2]->integer == 1;
    return result;
  }

 private:
  void append(const std::vector<std::string>& argv) {
    std::vector<const char*> words;
    std::vector<size_t> lengths;
    for (const std::string& a : argv) {
      words.push_back(a.data());
      lengths.push_back(a.size());
    }
    REQUIRE(redisAppendCommandArgv(c_.get(), int(words.size()), words.data(), lengths.data()) ==
            REDIS_OK);
  }
  ReplyPtr next() {
    void* reply = nullptr;
    REQUIRE(redisGetReply(c_.get(), &reply) == REDIS_OK);
    ReplyPtr r(static_cast<redisReply*>(reply));
    REQUIRE(r->type != REDIS_REPLY_ERROR);
    return r;
  }

  std::unique_ptr<redisContext, ContextFree> c_;
};

// A limit that refuses now and then in a sequence of a few hundred requests, or a big one that
// checks the arithmetic near its bounds (24 h windows, a million requests).
rl::Limit randomLimit(std::mt19937_64& rng) {
  static constexpr int64_t kWindows[] = {1, 2, 7, 100, 999, 1000, 60'000, 3'600'000, 86'400'000};
  rl::Limit limit;
  limit.windowMs = kWindows[rng() % std::size(kWindows)];
  if (rng() % 4 == 0) limit.windowMs = 1 + static_cast<int64_t>(rng() % 86'400'000);
  limit.requests = rng() % 5 == 0 ? 1 + static_cast<int64_t>(rng() % 1'000'000)
                                  : 1 + static_cast<int64_t>(rng() % 12);
  return limit;
}

// A gap to the next request, relative to the shortest window: mostly within it, sometimes
// across one or several windows.
int64_t randomGap(std::mt19937_64& rng, int64_t shortest) {
  switch (rng() % 8) {
    case 0:
    case 1:
    case 2:
      return 0;
    case 3:
    case 4:
      return static_cast<int64_t>(rng() % std::max<int64_t>(1, shortest / 4 + 1));
    case 5:
      return static_cast<int64_t>(rng() % (shortest + 1));
    case 6:
      return shortest + static_cast<int64_t>(rng() % (shortest + 1));
    default:
      return static_cast<int64_t>(rng() % (3 * shortest + 1));
  }
}

void checkSameDecision(const rl::Decision& redis, const rl::Decision& local) {
  CHECK(redis.allowed == local.allowed);
  CHECK(redis.limit == local.limit);
  CHECK(redis.remaining == local.remaining);
  CHECK(redis.resetMs == local.resetMs);
  CHECK(redis.retryAfterMs == local.retryAfterMs);
}

}  // namespace

TEST_CASE("rate_limit script: decides exactly as WindowTable on random sequences") {
  RedisServer redis;
  ScriptCaller caller(redis);
  const rl::KeyPart part{1, "client"};
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    std::vector<rl::Limit> limits(1 + rng() % 3);
    for (rl::Limit& l : limits) l = randomLimit(rng);
    int64_t shortest = limits[0].windowMs;
    int64_t longest = 0;
    for (const rl::Limit& l : limits) {
      shortest = std::min(shortest, l.windowMs);
      longest = std::max(longest, l.windowMs);
    }
    auto table = std::make_unique<rl::WindowTable>(limits, 16);
    const rl::RedisWindow window(limits, "diff");
    const std::string key = "gw:rl:{diff:" + std::to_string(seed) + "}";
    // A realistic clock (2026), anywhere inside a day.
    int64_t now = 1'780'000'000'000 + static_cast<int64_t>(rng() % 86'400'000);
    for (int step = 0; step < 150; ++step) {
      CAPTURE(step);
      now += randomGap(rng, shortest);
      // Now and then several at once, the same as that many admissions in a row: the requests
      // of a key waiting together (store: redis, all of them if there is room) or a lease
      // (hybrid, at most half of what is left).
      const int64_t want = rng() % 4 == 0 ? 2 + static_cast<int64_t>(rng() % 20) : 1;
      const rl::Share share = rng() % 2 == 0 ? rl::Share::All : rl::Share::Half;
      CAPTURE(want);
      CAPTURE(share == rl::Share::All);
      const ScriptCaller::Call got = caller.call(window, key, want, share, now);
      REQUIRE(got.grant);
      rl::Decision local = table->admit({&part, 1}, now);
      if (!local.allowed) {
        CHECK(got.grant->granted == 0);
        CHECK(got.ttlMs == -1);  // a refusal only reads
      } else {
        const int64_t left = local.remaining + 1;
        const int64_t expected = share == rl::Share::All
                                     ? std::min(want, left)
                                     : std::min(want, std::max<int64_t>(1, left / 2));
        CHECK(got.grant->granted == expected);
        for (int64_t i = 1; i < expected; ++i) local = table->admit({&part, 1}, now);
        // Less by however long Redis was descheduled between the two commands.
        CHECK(got.ttlMs <= 2 * longest);
        if (got.persisted) CHECK(got.ttlMs >= std::max<int64_t>(0, 2 * longest - 250));
      }
      checkSameDecision(got.grant->decision, local);
      if (got.grant->granted > 0 && !got.persisted) {
        // The key expired inside the transaction (see ScriptCaller): start both sides afresh.
        MESSAGE("seed " << seed << " step " << step << ": the key expired before PERSIST");
        table = std::make_unique<rl::WindowTable>(limits, 16);
      }
      int64_t valid = limits[0].windowMs;
      for (const rl::Limit& l : limits) valid = std::min(valid, l.windowMs - now % l.windowMs);
      CHECK(got.grant->validMs == valid);
    }
  }
}

// ---- Through gatewayd ----

namespace {

// `instances` share a Redis; each has `workers` workers and one catch-all route with `settings`.
// A short command timeout, for the tests of what a hung Redis does.
std::string sharedConfig(const Backend& b, const RedisServer& redis, std::string_view settings,
                         int workers = 2, std::string_view extraTop = {},
                         std::string_view commandTimeout = "50ms") {
  return subst(R"(${X}workers: ${W}
listeners:
  - address: 127.0.0.1
    port: ${PORT}
redis:
  address: ${R}
  command_timeout: ${T}
  reconnect_initial: 50ms
  reconnect_max: 200ms
upstreams:
  - name: main
    backends:
      - ${B}
routes:
  - match: {prefix: /}
    upstream: main
    plugins:
      - rate_limit: ${S}
)",
               {{"W", std::to_string(workers)},
                {"R", redis.address()},
                {"B", b.address()},
                {"S", std::string(settings)},
                {"T", std::string(commandTimeout)},
                {"X", std::string(extraTop)}});
}

struct Tally {
  std::atomic<int> admitted{0}, refused{0}, unavailable{0}, other{0};
  std::atomic<int> badHeaders{0};  // a 429 without Retry-After or RateLimit
  std::atomic<int64_t> slowestMs{0};
};

// `connections` clients per gateway, each sending up to `perConnection` requests (stopping at the
// first incomplete answer), all at once.
void load(const std::vector<const Gateway*>& gateways, int connections, int perConnection,
          Tally& tally, std::string_view headers = {}) {
  std::vector<std::thread> threads;
  for (const Gateway* gw : gateways) {
    for (int c = 0; c < connections; ++c) {
      threads.emplace_back([&, port = gw->port()] {
        Client client(port);
        if (!client.connected()) {
          ++tally.other;
          return;
        }
        for (int n = 0; n < perConnection; ++n) {
          const auto start = std::chrono::steady_clock::now();
          Response r = client.roundTrip(get("/echo", headers), 3000ms);
          const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count();
          int64_t slowest = tally.slowestMs.load();
          while (ms > slowest && !tally.slowestMs.compare_exchange_weak(slowest, ms)) {
          }
          if (!r.complete) {
            ++tally.other;
            return;
          }
          if (r.status == 200) {
            ++tally.admitted;
          } else if (r.status == 429 && errorCode(r.body) == "RATE_LIMIT_EXCEEDED") {
            ++tally.refused;
            if (!r.header("Retry-After") || !r.header("RateLimit")) ++tally.badHeaders;
          } else if (r.status == 503 && errorCode(r.body) == "RATE_LIMIT_UNAVAILABLE" &&
                     r.header("Retry-After") == "1") {
            ++tally.unavailable;
          } else {
            ++tally.other;
          }
        }
      });
    }
  }
  for (auto& t : threads) t.join();
}

// Redis's day (its TIME), to tell a run that straddled 00:00 UTC, where a 24 h window ends.
int64_t redisDay(const RedisServer& redis) {
  const std::string time = redis.call({"TIME"});
  return std::stoll(time.substr(0, time.find('\n'))) / 86'400;
}

// Every worker of `gw` has its breaker closed. A new connection is half-open: only its first few
// commands go out, the others get the failure policy at once; warm-up requests (with a key of
// their own, a new one each: a refused key is answered from the refusal memo, a hybrid key from
// its lease, neither by Redis) close it.
bool allWorkersClosed(const Gateway& gw, int workers) {
  static std::atomic<int> warmUps{0};
  Client client(gw.port());
  client.roundTrip(get("/echo", "X-Key: warm-up-" + std::to_string(++warmUps) + "\r\n"), 2000ms);
  const std::string metrics = adminRequest(gw, "/metrics").body;
  return metricSample(metrics, "gatewayd_redis_workers{state=\"closed\"}") == workers;
}

// Two gatewayd with 2 workers each on one Redis, once all their workers reach it. A command
// timeout of seconds: a reply late on a loaded machine (sanitizers, the suite's other tests) would
// apply on_redis_error, whose local admissions are not what these tests count.
struct TwoInstances {
  Gateway one;
  Gateway two;
  TwoInstances(const Backend& b, const RedisServer& redis, const std::string& settings)
      : one(sharedConfig(b, redis, settings, 2, {}, "2s")),
        two(sharedConfig(b, redis, settings, 2, {}, "2s")) {
    REQUIRE(waitConnected());
  }
  // Requests Redis could not decide, over both instances.
  double fallbacks() const {
    const std::string sample =
        "gatewayd_rate_limit_redis_fallback_total{route=\"route-1\",policy=\"allow\"}";
    return metricSample(adminRequest(one, "/metrics").body, sample) +
           metricSample(adminRequest(two, "/metrics").body, sample);
  }
  bool waitConnected(Millis timeout = 3000ms) {
    return waitFor([&] { return allWorkersClosed(one, 2) && allWorkersClosed(two, 2); }, timeout);
  }
  // `connections` clients on each; whether the load stayed within one day of Redis's clock (a
  // 24 h window ends at 00:00 UTC).
  bool load(const RedisServer& redis, int connections, int perConnection, Tally& tally,
            std::string_view headers = {}) {
    const int64_t dayBefore = redisDay(redis);
    ::load({&one, &two}, connections, perConnection, tally, headers);
    INFO(tally.admitted.load() << " admitted, " << tally.refused.load() << " refused, "
                               << tally.other.load() << " other");
    CHECK(tally.other == 0);
    CHECK(tally.badHeaders == 0);
    return redisDay(redis) == dayBefore;
  }
};

}  // namespace

TEST_CASE("rate_limit redis: two gatewayd on one Redis admit the limit once, not twice") {
  constexpr int kLimit = 300;
  RedisServer redis;
  Backend b;
  const std::string settings =
      "{limits: [{requests: 300, window: 24h}], key: [{header: X-Key}], store: redis}";
  TwoInstances instances(b, redis, settings);
  Tally tally;
  const bool sameDay =
      instances.load(redis, 16, 30, tally, "X-Key: k\r\n");  // 960 requests, 3.2 x the limit
  CHECK(tally.admitted + tally.refused == 960);
  // Every request decided by Redis (else the local counts of on_redis_error: allow add up).
  REQUIRE(instances.fallbacks() == 0);
  CHECK(tally.admitted <= kLimit);
  if (sameDay) CHECK(tally.admitted == kLimit);

  // Keys in Redis carry the TTL of two windows; the size of one for the docs.
  const std::string keys = redis.call({"KEYS", "gw:rl:*"});
  const std::string key = keys.substr(0, keys.find('\n'));
  CHECK(key.starts_with("gw:rl:{"));
  const long long ttl = std::stoll(redis.call({"PTTL", key}));
  CHECK(ttl > 2 * 86'400'000LL - 60'000);
  CHECK(ttl <= 2 * 86'400'000LL);
  MESSAGE("MEMORY USAGE of one key with one limit: " << redis.call({"MEMORY", "USAGE", key}));
}

TEST_CASE("rate_limit hybrid: two gatewayd on one Redis stay within the documented bound") {
  constexpr int kLimit = 300;
  constexpr int kMaxBatch = 16;
  constexpr int kHolders = 4;  // 2 instances x 2 workers may each hold a lease
  RedisServer redis;
  Backend b;
  const std::string settings =
      "{limits: [{requests: 300, window: 24h}], key: [{header: X-Key}], store: hybrid, "
      "batch: 8, max_batch: 16}";
  TwoInstances instances(b, redis, settings);
  Tally tally;
  const bool sameDay = instances.load(redis, 16, 30, tally, "X-Key: k\r\n");
  REQUIRE(instances.fallbacks() == 0);
  CHECK(tally.admitted <= kLimit);  // never more than store: redis
  // docs/plugins.md: a holder never has more than 1.5 x max_batch tokens.
  if (sameDay) CHECK(tally.admitted >= kLimit - kHolders * (kMaxBatch * 3 / 2));
  // Far fewer round trips than requests.
  const double calls = metricSample(adminRequest(instances.one, "/metrics").body,
                                    "gatewayd_rate_limit_redis_calls_total{route=\"route-1\"}") +
                       metricSample(adminRequest(instances.two, "/metrics").body,
                                    "gatewayd_rate_limit_redis_calls_total{route=\"route-1\"}");
  MESSAGE("hybrid: " << calls << " calls for " << tally.admitted.load() << " admitted");
  CHECK(calls > 0);
  CHECK(calls < tally.admitted / 2);
}

TEST_CASE("rate_limit redis: the requests of a key waiting together are decided by one call") {
  RedisServer redis;
  Backend b;
  std::string config = sharedConfig(
      b, redis, "{limits: [{requests: 15, window: 24h}], key: [{header: X-Key}], store: redis}", 1);
  // Long enough for the requests to gather behind a hung Redis.
  const std::string timeout = "command_timeout: 50ms";
  config.replace(config.find(timeout), timeout.size(), "command_timeout: 10s");
  Gateway gw(config);
  REQUIRE(waitFor([&] { return allWorkersClosed(gw, 1); }, 3000ms));
  auto sample = [&](const std::string& name) {
    return metricSample(adminRequest(gw, "/metrics").body, name + "{route=\"route-1\"}");
  };
  const double callsBefore = sample("gatewayd_rate_limit_redis_calls_total");
  const double waitsBefore = sample("gatewayd_rate_limit_redis_waits_total");

  constexpr int kClients = 20;
  redis.pause();
  Tally tally;
  std::thread clients([&] { load({&gw}, kClients, 1, tally, "X-Key: k\r\n"); });
  // Every request waits: the first for its call, the others behind it.
  const bool gathered = waitFor(
      [&] { return sample("gatewayd_rate_limit_redis_waits_total") - waitsBefore == kClients; },
      5000ms);
  redis.resume();
  clients.join();
  REQUIRE(gathered);
  CHECK(tally.admitted == 15);
  CHECK(tally.refused == 5);
  CHECK(tally.other == 0);
  CHECK(tally.badHeaders == 0);
  // The requests of the first loop turn in one call (most often the first request alone), all
  // that came behind it in the next, granted what is left; the 5 left over in one more, refused.
  // Two if the first turn read 16 or more of them.
  const double calls = sample("gatewayd_rate_limit_redis_calls_total") - callsBefore;
  CHECK(calls >= 2);
  CHECK(calls <= 3);
}

TEST_CASE("rate_limit redis: Redis killed or hung mid-run: allow admits, deny refuses, no wait") {
  bool deny = false;
  SUBCASE("on_redis_error: allow") { deny = false; }
  SUBCASE("on_redis_error: deny") { deny = true; }
  RedisServer redis;
  Backend b;
  const std::string settings =
      std::string(
          "{limits: [{requests: 100000, window: 24h}], key: [{header: X-Key}], store: redis, "
          "on_redis_error: ") +
      (deny ? "deny}" : "allow}");
  TempDir logs;
  const std::string accessLog = logs.path() + "/access.log";
  Gateway gw(sharedConfig(b, redis, settings, 2, "access_log:\n  path: " + accessLog + "\n"));
  REQUIRE(waitFor([&] { return allWorkersClosed(gw, 2); }, 3000ms));
  Tally healthy;
  load({&gw}, 4, 20, healthy);
  CHECK(healthy.admitted == 80);

  // Hung (SIGSTOP): the requests in flight wait command_timeout (50 ms), then the breaker opens
  // and the policy applies at once. Margin: a loaded 2-core machine.
  constexpr int64_t kBoundMs = 50 + 250;
  redis.pause();
  Tally hung;
  load({&gw}, 4, 20, hung);
  redis.resume();
  INFO("hung: " << hung.admitted.load() << " admitted, " << hung.unavailable.load()
                << " unavailable, " << hung.other.load() << " other, slowest "
                << hung.slowestMs.load() << " ms");
  CHECK(hung.other == 0);
  CHECK(hung.slowestMs <= kBoundMs);
  if (deny) {
    CHECK(hung.unavailable == 80);
  } else {
    CHECK(hung.admitted == 80);
  }

  REQUIRE(waitFor([&] { return allWorkersClosed(gw, 2); }, 3000ms));
  redis.kill();
  Tally killed;
  load({&gw}, 4, 20, killed);
  INFO("killed: " << killed.admitted.load() << " admitted, " << killed.unavailable.load()
                  << " unavailable, " << killed.other.load() << " other, slowest "
                  << killed.slowestMs.load() << " ms");
  CHECK(killed.other == 0);
  CHECK(killed.slowestMs <= kBoundMs);
  CHECK((deny ? killed.unavailable : killed.admitted) == 80);

  const std::string metrics = adminRequest(gw, "/metrics").body;
  const std::string policy = deny ? "deny" : "allow";
  CHECK(metricSample(metrics,
                     "gatewayd_rate_limit_redis_fallback_total{route=\"route-1\","
                     "policy=\"" +
                         policy + "\"}") >= 160);
  const std::string note = deny ? "\"rate_limit\":\"unavailable\"" : "\"rate_limit\":\"fallback\"";
  CHECK(waitFor([&] { return readFile(accessLog).find(note) != std::string::npos; }, 3000ms));
}

TEST_CASE("rate_limit redis: after a restart of Redis the instances share counting again") {
  RedisServer redis;
  Backend b;
  const std::string settings =
      "{limits: [{requests: 5, window: 24h}], key: [{header: X-Key}], store: redis}";
  TwoInstances instances(b, redis, settings);
  redis.kill();
  Tally outage;  // counted locally, per instance, meanwhile (allow)
  load({&instances.one, &instances.two}, 1, 3, outage, "X-Key: during\r\n");
  CHECK(outage.admitted == 6);
  redis.restart();
  REQUIRE(instances.waitConnected(5000ms));
  Tally shared;
  const bool sameDay = instances.load(redis, 4, 5, shared, "X-Key: after\r\n");
  CHECK(shared.admitted <= 5);
  if (sameDay) CHECK(shared.admitted == 5);
}

TEST_CASE("rate_limit redis: a reload that changes only key_prefix names the next keys with it") {
  RedisServer redis;
  Backend b;
  const std::string settings =
      "{limits: [{requests: 100, window: 1m}], key: [{header: X-Key}], store: redis}";
  const std::string config = sharedConfig(b, redis, settings, 1);
  Gateway gw(config);
  // Until the worker has connected, a request is admitted locally (on_redis_error: allow).
  waitRedisConnected(gw);
  Client client(gw.port());
  CHECK(client.roundTrip(get("/", "X-Key: a\r\n")).status == 200);
  CHECK(redis.call({"KEYS", "gw:rl:*"}) != "");

  std::string renamed = config;
  const std::string anchor = "  command_timeout: 50ms\n";
  renamed.replace(renamed.find(anchor), 0, "  key_prefix: 'other:'\n");
  gw.rewriteConfig(renamed);
  REQUIRE(adminRequest(gw, "/reload", "POST").status == 200);
  // The same client: a key a worker still holds is renamed too.
  CHECK(client.roundTrip(get("/", "X-Key: a\r\n")).status == 200);
  const std::string renamedKeys = redis.call({"KEYS", "other:rl:*"});
  CHECK(renamedKeys != "");
  CHECK(renamedKeys.find('\n') == std::string::npos);  // one key: the request after the reload
}
