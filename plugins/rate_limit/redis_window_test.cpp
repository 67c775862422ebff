#include "plugins/rate_limit/redis_window.h"

#include <doctest.h>

#include "gateway/redis/script.h"
#include "test/support/fake_redis.h"

namespace gw::plugins::rate_limit {
namespace {

using test::FakeReply;

const std::vector<Limit> kTwoLimits{{10, 1000}, {100, 60'000}};

std::optional<Grant> decode(FakeReply reply, std::size_t limits = 2, int64_t want = 1) {
  return decodeGrant(reply.view(), limits, want);
}

}  // namespace

TEST_CASE("redis_window: the key names the prefix, the scope and the digest in one hash tag") {
  const RedisWindow window(kTwoLimits, "api-tier");
  redis::KeySpace space;
  space.prefix = "prod:";
  std::string key;
  window.formatKey(space, Digest{0x0123456789abcdefULL, 0xfedcba9876543210ULL}, key);
  CHECK(key == "prod:rl:{api-tier:fedcba98765432100123456789abcdef}");
}

TEST_CASE("redis_window: digests are deterministic per key space, and differ between spaces") {
  const KeyPart parts[] = {{1, "192.0.2.1"}};
  redis::KeySpace a;
  redis::KeySpace b;
  b.digestKey[0] = 1;
  CHECK(redisDigest(a, parts) == redisDigest(a, parts));
  CHECK_FALSE(redisDigest(a, parts) == redisDigest(b, parts));
  const KeyPart other[] = {{2, "192.0.2.1"}};  // same text, another kind
  CHECK_FALSE(redisDigest(a, parts) == redisDigest(a, other));
}

TEST_CASE(
    "redis_window: arguments are want, share, now, then each limit's requests and window in ms") {
  const RedisWindow window(kTwoLimits, "s");
  std::array<std::string_view, RedisWindow::kMaxArgs> args;
  const std::size_t n = window.args("16", Share::Half, "", args);
  REQUIRE(n == 7);
  CHECK(std::vector<std::string_view>(args.begin(), args.begin() + n) ==
        std::vector<std::string_view>{"16", "half", "", "10", "1000", "100", "60000"});
  REQUIRE(window.args("3", Share::All, "1700", args) == 7);
  CHECK(args[1] == "all");
  CHECK(args[2] == "1700");
  CHECK(window.limitCount() == 2);
  CHECK(window.longestWindowMs() == 60'000);
}

TEST_CASE("redis_window: the script is named and hashed once") {
  CHECK(&windowScript() == &windowScript());
  CHECK(windowScript().name() == "rate_limit");
  CHECK(windowScript().sha1().size() == 40);
  CHECK(windowScript().source().find("redis.call('PEXPIRE'") != std::string::npos);
}

TEST_CASE("redis_window: a grant and a refusal decode into the local table's Decision") {
  const auto admitted = decode(FakeReply::integers({1, 1, 7, 1500, 0, 300}));
  REQUIRE(admitted);
  CHECK(admitted->granted == 1);
  CHECK(admitted->validMs == 300);
  CHECK(admitted->decision.allowed);
  CHECK(admitted->decision.limit == 1);
  CHECK(admitted->decision.remaining == 7);
  CHECK(admitted->decision.resetMs == 1500);
  CHECK(admitted->decision.retryAfterMs == 0);

  const auto refused = decode(FakeReply::integers({0, 0, 0, 1999, 1234, 5}));
  REQUIRE(refused);
  CHECK_FALSE(refused->decision.allowed);
  CHECK(refused->decision.retryAfterMs == 1234);

  const auto lease = decode(FakeReply::integers({16, 0, 3, 10, 0, 9}), 2, 16);
  REQUIRE(lease);
  CHECK(lease->granted == 16);
}

TEST_CASE("redis_window: any other reply shape is refused (BadReply)") {
  CHECK_FALSE(decodeGrant(nullptr, 2, 1));
  CHECK_FALSE(decode(FakeReply::integer(1)));
  CHECK_FALSE(decode(FakeReply::string("OK")));
  CHECK_FALSE(decode(FakeReply::nil()));
  CHECK_FALSE(decode(FakeReply::integers({1, 0, 7, 1500, 0})));          // 5 fields
  CHECK_FALSE(decode(FakeReply::integers({1, 0, 7, 1500, 0, 300, 1})));  // 7 fields
  CHECK_FALSE(decode(FakeReply::array({FakeReply::integer(1), FakeReply::integer(0),
                                       FakeReply::string("7"), FakeReply::integer(1500),
                                       FakeReply::integer(0), FakeReply::integer(300)})));
  CHECK_FALSE(decode(FakeReply::integers({2, 0, 7, 1500, 0, 300})));   // more than asked for
  CHECK_FALSE(decode(FakeReply::integers({1, 2, 7, 1500, 0, 300})));   // no limit 2
  CHECK_FALSE(decode(FakeReply::integers({1, 0, -1, 1500, 0, 300})));  // negative
  CHECK_FALSE(decode(FakeReply::integers({1, 0, 7, 1500, 0, 0})));     // valid for no time
  CHECK_FALSE(decode(FakeReply::integers({1, 0, 7, 1500, 5, 300})));   // admitted, retry later
  CHECK_FALSE(decode(FakeReply::integers({0, 0, 0, 1500, 0, 300})));   // refused, retry now
}

}  // namespace gw::plugins::rate_limit
