#include "plugins/rate_limit/refusal_memo.h"

#include <doctest.h>

namespace gw::plugins::rate_limit {

TEST_CASE("refusal_memo: refuses until the retry time, aged, then forgets") {
  RefusalMemo memo(4);
  const Digest key{1, 2};
  Decision refusal;
  refusal.limit = 1;
  refusal.retryAfterMs = 1000;
  refusal.resetMs = 1500;
  memo.remember(key, refusal, 10'000);
  const auto later = memo.refusal(key, 10'400);
  REQUIRE(later);
  CHECK_FALSE(later->allowed);
  CHECK(later->limit == 1);
  CHECK(later->retryAfterMs == 600);
  CHECK(later->resetMs == 1100);
  CHECK(memo.refusal(key, 10'999));
  CHECK_FALSE(memo.refusal(key, 11'000));  // the retry time has come: ask Redis
  CHECK(memo.size() == 0);
  CHECK_FALSE(memo.refusal(Digest{3, 4}, 10'000));
}

TEST_CASE("refusal_memo: bounded, least recently refused dropped first; 0 keeps nothing") {
  RefusalMemo memo(2);
  Decision refusal;
  refusal.retryAfterMs = 1000;
  memo.remember({1, 0}, refusal, 0);
  memo.remember({2, 0}, refusal, 0);
  memo.remember({1, 0}, refusal, 1);  // again: now the most recent
  memo.remember({3, 0}, refusal, 2);
  CHECK(memo.size() == 2);
  CHECK(memo.refusal({1, 0}, 3));
  CHECK_FALSE(memo.refusal({2, 0}, 3));
  CHECK(memo.refusal({3, 0}, 3));

  RefusalMemo none(0);
  none.remember({1, 0}, refusal, 0);
  CHECK_FALSE(none.refusal({1, 0}, 1));
}

}  // namespace gw::plugins::rate_limit
