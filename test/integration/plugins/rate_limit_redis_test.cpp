// rate_limit with its counters in Redis. First the script itself against a real redis-server: it
// must decide exactly as the process-local WindowTable does (the Lua computes in doubles, the
// table in int64). Then through gatewayd: several instances on one Redis share one limit, and
// each on_redis_error policy holds while Redis is killed or hung.
#include <doctest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <memory>
#include <random>
#include <string>
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

// Calls the script with the clock pinned, as MULTI / EVALSHA / PTTL / PERSIST / EXEC: the
// commands of a transaction run back to back, microseconds apart, so the key cannot expire in
// real time between the call and the PERSIST (the pinned clock moves at the test's pace, not
// Redis's), and PTTL reads the TTL the call set, less the millisecond Redis's clock may turn
// between two commands.
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
  };

  Call call(const rl::RedisWindow& window, const std::string& key, int64_t want, int64_t nowMs) {
    const std::string wantText = std::to_string(want);
    const std::string nowText = std::to_string(nowMs);
    std::array<std::string_view, rl::RedisWindow::kMaxArgs> args;
    const std::size_t count = window.args(wantText, nowText, args);
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
    rl::WindowTable table(limits, 16);
    const rl::RedisWindow window(limits, "diff");
    const std::string key = "gw:rl:{diff:" + std::to_string(seed) + "}";
    // A realistic clock (2026), anywhere inside a day.
    int64_t now = 1'780'000'000'000 + static_cast<int64_t>(rng() % 86'400'000);
    for (int step = 0; step < 150; ++step) {
      CAPTURE(step);
      now += randomGap(rng, shortest);
      // Now and then a lease (hybrid): the same as that many admissions in a row.
      const int64_t want = rng() % 4 == 0 ? 2 + static_cast<int64_t>(rng() % 20) : 1;
      const ScriptCaller::Call got = caller.call(window, key, want, now);
      REQUIRE(got.grant);
      rl::Decision local = table.admit({&part, 1}, now);
      if (!local.allowed) {
        CHECK(got.grant->granted == 0);
        CHECK(got.ttlMs == -1);  // a refusal only reads
      } else {
        // A lease takes at most half of what is left (what was left = remaining + 1).
        const int64_t expected =
            want == 1 ? 1 : std::min(want, std::max<int64_t>(1, (local.remaining + 1) / 2));
        CHECK(got.grant->granted == expected);
        for (int64_t i = 1; i < expected; ++i) local = table.admit({&part, 1}, now);
        CHECK(got.ttlMs >= 2 * longest - 1);
        CHECK(got.ttlMs <= 2 * longest);
      }
      checkSameDecision(got.grant->decision, local);
      int64_t valid = limits[0].windowMs;
      for (const rl::Limit& l : limits) valid = std::min(valid, l.windowMs - now % l.windowMs);
      CHECK(got.grant->validMs == valid);
    }
  }
}
