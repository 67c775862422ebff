// rate_limit with store: redis|hybrid against test::FakeRedis: the request waits (Stop) for the
// script's reply and resumes with its answer; the requests of a key waiting together share one
// call; failures go to on_redis_error; refusals are remembered; hybrid admits from leases. The
// script itself runs against a real Redis in test/integration/plugins/rate_limit_redis_test.cpp.
#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gateway/redis/script.h"
#include "plugins/rate_limit/rate_limit.h"
#include "plugins/rate_limit/rate_limit_config.h"
#include "test/support/fake_redis.h"
#include "test/support/plugin_context.h"

namespace gw::plugins::rate_limit {
namespace {

using test::FakeReply;

constexpr int64_t kT0 = 36'000'000;

// One binding on one worker: its settings, worker state and Redis.
struct Rig {
  test::FakeRedis redis;
  test::FakeDispatcher worker;
  std::shared_ptr<const plugin::RouteConfig> config;
  std::unique_ptr<plugin::WorkerState> state;

  explicit Rig(const std::string& yaml, bool withRedis = true) {
    std::vector<plugin::ConfigError> errors;
    config = Factory().parse(YAML::Load(yaml), errors);
    REQUIRE(errors.empty());
    worker.now = kT0;
    if (withRedis) worker.redisClient = &redis;
    state = Factory().makeWorkerState(*config, worker);
  }

  // One exchange: its request phase runs at once; respond() finishes it.
  struct Exchange {
    test::TestContext ctx;
    std::unique_ptr<plugin::Plugin> plugin;
    plugin::Status request = plugin::Status::Continue;

    bool waiting() const { return request == plugin::Status::Stop && ctx.resumes == 0; }
    // The answer the client gets: 200 if the request went on, else the error's status.
    int status() const { return ctx.failedWith ? ctx.failedWith->code.status : 200; }
    std::string code() const {
      return ctx.failedWith ? std::string(ctx.failedWith->code.wire) : "";
    }
    std::string header(std::string_view name) {
      ctx.status = status();
      CHECK(plugin->onResponseHeaders(ctx) == plugin::Status::Continue);
      return std::string(ctx.responseHeaders().get(name).value_or("<none>"));
    }
    std::string_view note() const { return ctx.exchangeNotes[0]; }
    uint64_t counted(Counter c) const { return ctx.counted[c]; }
  };

  // The end of the worker's loop turn: store: redis sends the calls the turn's requests need.
  void endTurn() { worker.advance(0); }

  std::unique_ptr<Exchange> start(std::string ip = "192.0.2.1") {
    auto x = std::make_unique<Exchange>();
    x->ctx.loop->now = worker.now;
    x->ctx.loop->redisClient = worker.redisClient;
    x->ctx.info.clientIp = ip_.emplace_back(std::move(ip));
    x->plugin = Factory().create(*config, state.get());
    x->request = x->plugin->onRequestHeaders(x->ctx);
    return x;
  }

 private:
  std::deque<std::string> ip_;
};

}  // namespace

TEST_CASE("rate_limit redis: the request waits for the script, then goes on with its headers") {
  Rig rig("{limits: [{requests: 10, window: 1s}], store: redis, scope: api}");
  auto x = rig.start();
  rig.endTurn();
  // Loaded on the worker's connection by its first request, once.
  REQUIRE(rig.redis.used.size() == 1);
  CHECK(rig.redis.used[0] == &windowScript());
  CHECK(x->request == plugin::Status::Stop);
  REQUIRE(rig.redis.pending() == 1);
  const std::vector<std::string>& argv = rig.redis.oldest();
  REQUIRE(argv.size() == 9);
  CHECK(argv[0] == "EVALSHA");
  CHECK(argv[1] == windowScript().sha1());
  CHECK(argv[2] == "1");
  CHECK(argv[3].starts_with("gw:rl:{api:"));
  CHECK(argv[3].size() == std::string("gw:rl:{api:}").size() + 32);
  CHECK(std::vector<std::string>(argv.begin() + 4, argv.end()) ==
        std::vector<std::string>{"1", "all", "", "10", "1000"});
  CHECK(x->waiting());

  rig.redis.respond(FakeReply::integers({1, 0, 9, 1999, 0, 999}));
  CHECK(x->ctx.resumes == 1);
  CHECK(x->status() == 200);
  CHECK(x->note() == "allowed");
  CHECK(x->header("RateLimit") == "\"default\";r=9;t=2");
  CHECK(x->header("Retry-After") == "<none>");
  rig.start("192.0.2.9");
  CHECK(rig.redis.used.size() == 1);
}

TEST_CASE("rate_limit redis: a refusal is a 429 with Retry-After, then refused from the memo") {
  Rig rig("{limits: [{requests: 10, window: 1s}], store: redis}");
  auto x = rig.start();
  rig.endTurn();
  rig.redis.respond(FakeReply::integers({0, 0, 0, 1999, 1500, 500}));
  CHECK(x->ctx.resumes == 1);
  CHECK(x->status() == 429);
  CHECK(x->code() == "RATE_LIMIT_EXCEEDED");
  CHECK(x->header("Retry-After") == "2");
  CHECK(x->header("RateLimit") == "\"default\";r=0;t=2");
  CHECK(x->note() == "rejected");
  CHECK(x->counted(kRejections) == 1);

  // The same client again, 600 ms later: refused here, Redis not asked.
  rig.worker.now += 600;
  auto again = rig.start();
  CHECK(again->request == plugin::Status::Respond);
  CHECK(rig.redis.pending() == 0);
  CHECK(again->code() == "RATE_LIMIT_EXCEEDED");
  CHECK(again->header("Retry-After") == "1");                  // 900 ms left
  CHECK(again->header("RateLimit") == "\"default\";r=0;t=2");  // 1399 ms
  CHECK(again->counted(kMemoRefusals) == 1);
  CHECK(again->counted(kRejections) == 1);

  // Another client still asks; and once the retry time has come, so does this one.
  auto other = rig.start("192.0.2.2");
  CHECK(other->request == plugin::Status::Stop);
  rig.worker.now += 900;
  auto later = rig.start();
  rig.endTurn();
  CHECK(later->request == plugin::Status::Stop);
  CHECK(rig.redis.pending() == 2);
}

TEST_CASE("rate_limit redis: on_redis_error allow counts in the local table meanwhile") {
  Rig rig("{limits: [{requests: 1, window: 1s}], store: redis}");
  SUBCASE("refused at once (breaker open): no wait") {
    rig.redis.currentState = redis::State::Open;
    rig.redis.refuseWith = redis::Failure::Down;
    auto first = rig.start();
    CHECK(first->request == plugin::Status::Continue);
    CHECK(first->note() == "fallback");
    CHECK(first->counted(kFallbackAllow) == 1);
    CHECK(first->header("RateLimit") == "\"default\";r=0;t=2");
    auto second = rig.start();  // the local table's limit applies
    CHECK(second->request == plugin::Status::Respond);
    CHECK(second->code() == "RATE_LIMIT_EXCEEDED");
    CHECK(second->note() == "rejected");
    CHECK(second->counted(kFallbackAllow) == 1);
  }
  SUBCASE("timed out after the wait") {
    auto x = rig.start();
    rig.endTurn();
    rig.redis.fail(redis::Failure::Timeout);
    CHECK(x->ctx.resumes == 1);
    CHECK(x->status() == 200);
    CHECK(x->note() == "fallback");
    CHECK(x->counted(kFallbackAllow) == 1);
  }
  SUBCASE("a reply of another shape, or an error reply") {
    auto bad = rig.start();
    auto error = rig.start("192.0.2.2");
    rig.endTurn();
    rig.redis.respond(FakeReply::integers({1, 0, 9}));
    rig.redis.respond(FakeReply::error("OOM command not allowed"));
    CHECK(bad->note() == "fallback");
    CHECK(error->note() == "fallback");
    CHECK(bad->ctx.resumes == 1);
    CHECK(error->ctx.resumes == 1);
  }
  SUBCASE("no redis: block on this worker") {
    Rig alone("{limits: [{requests: 1, window: 1s}], store: redis}", /*withRedis=*/false);
    auto x = alone.start();
    CHECK(x->request == plugin::Status::Continue);
    CHECK(x->note() == "fallback");
  }
}

TEST_CASE("rate_limit redis: on_redis_error deny answers 503 RATE_LIMIT_UNAVAILABLE") {
  Rig rig("{limits: [{requests: 10, window: 1s}], store: redis, on_redis_error: deny}");
  SUBCASE("at once") {
    rig.redis.currentState = redis::State::Open;
    rig.redis.refuseWith = redis::Failure::Down;
    auto x = rig.start();
    CHECK(x->request == plugin::Status::Respond);
    CHECK(x->status() == 503);
    CHECK(x->code() == "RATE_LIMIT_UNAVAILABLE");
    CHECK(x->header("Retry-After") == "1");
    CHECK(x->header("RateLimit") == "<none>");
    CHECK(x->note() == "unavailable");
    CHECK(x->counted(kFallbackDeny) == 1);
    CHECK(x->counted(kFallbackAllow) == 0);
  }
  SUBCASE("after the wait") {
    auto x = rig.start();
    rig.endTurn();
    rig.redis.fail(redis::Failure::Disconnected);
    CHECK(x->ctx.resumes == 1);
    CHECK(x->code() == "RATE_LIMIT_UNAVAILABLE");
    CHECK(x->header("Retry-After") == "1");
  }
  SUBCASE("refused when the turn's call goes out (max_pending): in the same turn") {
    rig.redis.refuseWith = redis::Failure::Overloaded;
    auto x = rig.start();
    auto y = rig.start();
    CHECK(x->waiting());
    rig.endTurn();
    CHECK(x->ctx.resumes == 1);
    CHECK(y->ctx.resumes == 1);
    CHECK(x->code() == "RATE_LIMIT_UNAVAILABLE");
    CHECK(y->code() == "RATE_LIMIT_UNAVAILABLE");
    CHECK(rig.redis.pending() == 0);
  }
}

TEST_CASE("rate_limit redis: shadow mode never refuses, whatever Redis says") {
  Rig rig(
      "{limits: [{requests: 1, window: 1s}], store: redis, mode: shadow, "
      "on_redis_error: deny}");
  auto over = rig.start();
  rig.endTurn();
  rig.redis.respond(FakeReply::integers({0, 0, 0, 1999, 1500, 500}));
  CHECK(over->ctx.resumes == 1);
  CHECK(over->status() == 200);
  CHECK(over->note() == "shadow");
  CHECK(over->counted(kShadowExceeded) == 1);
  rig.redis.currentState = redis::State::Open;
  rig.redis.refuseWith = redis::Failure::Down;
  auto down = rig.start("192.0.2.2");
  CHECK(down->request == plugin::Status::Continue);
  CHECK(down->status() == 200);
  CHECK(down->note() == "unavailable");
  CHECK(down->counted(kFallbackDeny) == 1);
}

TEST_CASE("rate_limit redis: an exchange that ends while waiting never hears the reply") {
  Rig rig("{limits: [{requests: 10, window: 1s}], store: redis}");
  auto gone = rig.start();
  auto destroyedOnly = rig.start("192.0.2.2");
  auto recycled = rig.start("192.0.2.3");
  rig.endTurn();
  gone->plugin->onDestroy();
  gone.reset();
  destroyedOnly->plugin.reset();  // the destructor cancels too
  recycled->plugin->onDestroy();
  CHECK(recycled->plugin->recycle());
  // Delivered after: under ASan a use after free would show here.
  rig.redis.respond(FakeReply::integers({1, 0, 9, 1999, 0, 999}));
  rig.redis.respond(FakeReply::integers({1, 0, 9, 1999, 0, 999}));
  rig.redis.respond(FakeReply::integers({1, 0, 9, 1999, 0, 999}));
  CHECK(rig.redis.answered() == 3);
  CHECK(recycled->ctx.resumes == 0);
  // The recycled instance serves the next exchange as a fresh one.
  test::TestContext next;
  next.info.clientIp = "192.0.2.7";
  next.loop->now = kT0;
  next.loop->redisClient = &rig.redis;
  CHECK(recycled->plugin->onRequestHeaders(next) == plugin::Status::Stop);
  rig.endTurn();
  rig.redis.respond(FakeReply::integers({1, 0, 8, 1999, 0, 999}));
  CHECK(next.resumes == 1);
}

TEST_CASE("rate_limit redis: the requests of a key in one loop turn share one call") {
  Rig rig("{limits: [{requests: 10, window: 1s}], store: redis}");
  auto a = rig.start();
  auto b = rig.start();
  auto other = rig.start("192.0.2.2");  // another key has its own call
  auto c = rig.start();
  CHECK(rig.redis.pending() == 0);  // sent when the turn ends
  rig.endTurn();
  REQUIRE(rig.redis.pending() == 2);
  CHECK(rig.redis.oldest()[4] == "3");
  CHECK(rig.redis.newest()[4] == "1");
  rig.redis.respond(FakeReply::integers({3, 0, 7, 1999, 0, 999}));
  // Each gets what one call each, in this order, would have said.
  CHECK(a->header("RateLimit") == "\"default\";r=9;t=2");
  CHECK(b->header("RateLimit") == "\"default\";r=8;t=2");
  CHECK(c->header("RateLimit") == "\"default\";r=7;t=2");
  CHECK(other->waiting());
}

TEST_CASE("rate_limit redis: the requests of a key waiting together share the next call") {
  Rig rig("{limits: [{requests: 10, window: 1s}], store: redis}");
  auto a = rig.start();
  rig.endTurn();
  // Three more of the key while a's call is in flight: they wait for it, then share one call.
  auto b = rig.start();
  auto c = rig.start();
  rig.endTurn();
  auto d = rig.start();
  auto other = rig.start("192.0.2.2");  // another key has its own call
  rig.endTurn();
  CHECK(rig.redis.pending() == 2);
  rig.redis.respond(FakeReply::integers({1, 0, 9, 1999, 0, 999}));
  rig.endTurn();
  CHECK(a->status() == 200);
  CHECK(b->waiting());
  REQUIRE(rig.redis.pending() == 2);
  CHECK(rig.redis.newest()[4] == "3");
  CHECK(rig.redis.newest()[5] == "all");
  rig.redis.respond(FakeReply::integers({1, 0, 8, 1999, 0, 999}));  // other's
  CHECK(other->status() == 200);
  // Each gets what one call each, in this order, would have said.
  rig.redis.respond(FakeReply::integers({3, 0, 6, 1999, 0, 999}));
  CHECK(b->header("RateLimit") == "\"default\";r=8;t=2");
  CHECK(c->header("RateLimit") == "\"default\";r=7;t=2");
  CHECK(d->header("RateLimit") == "\"default\";r=6;t=2");
  CHECK(rig.redis.pending() == 0);
  // Three calls for five requests, each of which waited. A call sent at a turn's end or from a
  // reply is counted by the next request the table serves.
  uint64_t calls = 0;
  uint64_t waits = 0;
  for (const auto* x : {a.get(), b.get(), c.get(), d.get(), other.get()}) {
    calls += x->counted(kRedisCalls);
    waits += x->counted(kRedisWaits);
  }
  CHECK(calls == 3);
  CHECK(waits == 5);
}

TEST_CASE(
    "rate_limit redis: a call granting fewer than asked serves the first, asks for the rest") {
  Rig rig("{limits: [{requests: 3, window: 1s}], store: redis}");
  auto a = rig.start();
  rig.endTurn();
  auto b = rig.start();
  auto c = rig.start();
  auto d = rig.start();
  rig.redis.respond(FakeReply::integers({1, 0, 2, 1999, 0, 999}));
  rig.endTurn();
  REQUIRE(rig.redis.oldest()[4] == "3");
  rig.redis.respond(FakeReply::integers({2, 0, 0, 1999, 0, 999}));
  rig.endTurn();
  CHECK(b->status() == 200);
  CHECK(c->status() == 200);
  CHECK(d->waiting());
  REQUIRE(rig.redis.pending() == 1);
  CHECK(rig.redis.oldest()[4] == "1");
  rig.redis.respond(FakeReply::integers({0, 0, 0, 1999, 1500, 999}));
  CHECK(d->code() == "RATE_LIMIT_EXCEEDED");
  CHECK(d->header("Retry-After") == "2");
  CHECK(rig.start()->counted(kMemoRefusals) == 1);
}

TEST_CASE("rate_limit redis: a grant for a request that left serves the key's next request") {
  Rig rig("{limits: [{requests: 10, window: 1s}], store: redis}");
  auto a = rig.start();
  rig.endTurn();
  auto gone = rig.start();
  rig.redis.respond(FakeReply::integers({1, 0, 9, 1999, 0, 999}));
  rig.endTurn();
  REQUIRE(rig.redis.pending() == 1);
  gone->plugin->onDestroy();
  rig.redis.respond(FakeReply::integers({1, 0, 8, 1999, 0, 999}));
  CHECK(gone->ctx.resumes == 0);
  // Counted in Redis when granted, so using it adds nothing to what Redis admitted; but only
  // within the window it was granted in (999 ms, less 5 ms for clock lag).
  SUBCASE("before that window ends") {
    rig.worker.now += 993;
    auto next = rig.start();
    CHECK(next->request == plugin::Status::Continue);
    CHECK(next->header("RateLimit") == "\"default\";r=8;t=2");  // 1999 - 993 ms
    CHECK(rig.redis.pending() == 0);
  }
  SUBCASE("not after") {
    rig.worker.now += 994;
    auto late = rig.start();
    CHECK(late->waiting());
    rig.endTurn();
    CHECK(rig.redis.pending() == 1);
  }
}

TEST_CASE("rate_limit hybrid: leases of `batch`, admitted locally, refilled ahead of need") {
  Rig rig("{limits: [{requests: 1000, window: 1m}], store: hybrid, batch: 16}");
  auto first = rig.start();
  CHECK(first->request == plugin::Status::Stop);
  REQUIRE(rig.redis.pending() == 1);
  CHECK(rig.redis.oldest()[4] == "16");
  CHECK(rig.redis.oldest()[5] == "half");
  CHECK(first->counted(kRedisCalls) == 1);
  rig.redis.respond(FakeReply::integers({16, 0, 984, 60'000, 0, 30'000}));
  CHECK(first->ctx.resumes == 1);
  CHECK(first->status() == 200);
  CHECK(first->header("RateLimit") == "\"default\";r=999;t=60");  // 984 + the 15 held here

  // 6 more from the lease without Redis; the 7th leaves 8 = half the lease: a refill goes early.
  for (int i = 0; i < 6; ++i) CHECK(rig.start()->request == plugin::Status::Continue);
  CHECK(rig.redis.pending() == 0);
  auto seventh = rig.start();
  CHECK(seventh->request == plugin::Status::Continue);
  CHECK(rig.redis.pending() == 1);
  CHECK(seventh->counted(kRedisCalls) == 1);
  rig.redis.respond(FakeReply::integers({16, 0, 968, 60'000, 0, 29'000}));
  // Back in time, nobody waited: the lease size stays. 8 left + 16: 15 more without Redis, and
  // the 16th asks again, for 16.
  for (int i = 0; i < 15; ++i) CHECK(rig.start()->request == plugin::Status::Continue);
  CHECK(rig.redis.pending() == 0);
  CHECK(rig.start()->request == plugin::Status::Continue);
  REQUIRE(rig.redis.pending() == 1);
  CHECK(rig.redis.oldest()[4] == "16");
}

TEST_CASE("rate_limit hybrid: a hot key's leases double up to max_batch, an unused one halves") {
  Rig rig("{limits: [{requests: 100000, window: 1m}], store: hybrid, batch: 4, max_batch: 16}");
  auto first = rig.start();
  rig.redis.respond(FakeReply::integers({4, 0, 99'000, 60'000, 0, 30'000}));
  // Leaving 2 = half the lease sends the next one early; the lease runs dry before it comes.
  rig.start();
  REQUIRE(rig.redis.pending() == 1);
  CHECK(rig.redis.oldest()[4] == "4");
  rig.start();
  rig.start();
  auto waits = rig.start();
  CHECK(waits->waiting());
  rig.redis.respond(FakeReply::integers({4, 0, 98'996, 60'000, 0, 30'000}));
  CHECK(waits->status() == 200);
  // So the key outpaces its leases: the next is twice the size, asked for when half of it is left.
  rig.start();
  REQUIRE(rig.redis.pending() == 1);
  CHECK(rig.redis.oldest()[4] == "8");
  rig.start();
  rig.start();
  auto waitsAgain = rig.start();
  CHECK(waitsAgain->waiting());
  rig.redis.respond(FakeReply::integers({8, 0, 98'988, 60'000, 0, 30'000}));
  rig.start();
  REQUIRE(rig.redis.pending() == 1);
  CHECK(rig.redis.oldest()[4] == "16");
  for (int i = 0; i < 6; ++i) rig.start();
  auto waitsThird = rig.start();
  CHECK(waitsThird->waiting());
  rig.redis.respond(FakeReply::integers({16, 0, 98'972, 60'000, 0, 30'000}));
  // Late again, but max_batch is reached.
  for (int i = 0; i < 7; ++i) rig.start();
  REQUIRE(rig.redis.pending() == 1);
  CHECK(rig.redis.oldest()[4] == "16");
  rig.redis.respond(FakeReply::integers({16, 0, 98'956, 60'000, 0, 1'000}));
  // The lease ends with tokens left: too big for the key's rate, the next one is half.
  rig.worker.now += 1'000;
  auto afterWindow = rig.start();
  CHECK(afterWindow->waiting());
  REQUIRE(rig.redis.pending() == 1);
  CHECK(rig.redis.oldest()[4] == "8");
}

TEST_CASE("rate_limit hybrid: waiters are served in order; an expired lease is not used") {
  Rig rig("{limits: [{requests: 1000, window: 1m}], store: hybrid, batch: 4}");
  auto a = rig.start();
  rig.redis.respond(FakeReply::integers({2, 0, 990, 60'000, 0, 100}));
  CHECK(a->status() == 200);
  rig.worker.now += 96;  // the lease ends at 100 - 5 ms: its one token is no longer usable
  auto b = rig.start();
  auto c = rig.start();
  auto d = rig.start();
  CHECK(b->waiting());
  CHECK(c->waiting());
  CHECK(d->waiting());
  CHECK(rig.redis.pending() == 1);  // one refill for all three
  rig.redis.respond(FakeReply::integers({2, 0, 988, 60'000, 0, 60'000}));
  CHECK(b->ctx.resumes == 1);
  CHECK(c->ctx.resumes == 1);
  CHECK(d->waiting());  // first in line for the next refill, sent at once
  REQUIRE(rig.redis.pending() == 1);
  rig.redis.respond(FakeReply::integers({0, 0, 0, 60'000, 700, 60'000}));
  CHECK(d->ctx.resumes == 1);
  CHECK(d->code() == "RATE_LIMIT_EXCEEDED");
  // The refusal is remembered: the next request of the key does not reach Redis.
  auto e = rig.start();
  CHECK(e->request == plugin::Status::Respond);
  CHECK(e->counted(kMemoRefusals) == 1);
  CHECK(rig.redis.pending() == 0);
}

TEST_CASE("rate_limit hybrid: a failed refill applies the policy to every waiter") {
  Rig rig("{limits: [{requests: 1000, window: 1m}], store: hybrid, on_redis_error: deny}");
  auto a = rig.start();
  auto b = rig.start();
  auto gone = rig.start();
  gone->plugin->onDestroy();  // left before the answer: not served
  rig.redis.fail(redis::Failure::Timeout);
  CHECK(a->code() == "RATE_LIMIT_UNAVAILABLE");
  CHECK(b->code() == "RATE_LIMIT_UNAVAILABLE");
  CHECK(a->ctx.resumes == 1);
  CHECK(b->ctx.resumes == 1);
  CHECK(gone->ctx.resumes == 0);
  rig.redis.refuseWith = redis::Failure::Down;
  CHECK(rig.start()->code() == "RATE_LIMIT_UNAVAILABLE");
}

TEST_CASE(
    "rate_limit hybrid: at most kMaxWaiters requests of a key wait; the rest get the policy") {
  Rig rig("{limits: [{requests: 1000, window: 1m}], store: hybrid}");
  std::vector<std::unique_ptr<Rig::Exchange>> waiting;
  for (std::size_t i = 0; i < LeaseTable::kMaxWaiters; ++i) waiting.push_back(rig.start());
  CHECK(waiting.back()->waiting());
  auto over = rig.start();
  CHECK(over->request == plugin::Status::Continue);
  CHECK(over->note() == "fallback");
  CHECK(rig.redis.pending() == 1);
}

}  // namespace gw::plugins::rate_limit
