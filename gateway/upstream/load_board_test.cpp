#include "gateway/upstream/load_board.h"

#include <doctest/doctest.h>

namespace gw::upstream {

TEST_CASE("LoadBoard: a backend at its cap is over it, the others are not") {
  config::UpstreamCaps caps;
  caps.per_backend.max_requests = 2;
  LoadBoard board(caps, std::nullopt, 2);
  CHECK(board.counting());
  board.requestStarted(0);
  CHECK_FALSE(board.overCap(0, false));
  board.requestStarted(0);
  CHECK(board.overCap(0, false) == Cap::Requests);
  CHECK_FALSE(board.overCap(1, false));
  CHECK(board.requests() == 2);
  board.requestEnded(0);
  CHECK_FALSE(board.overCap(0, false));
}

TEST_CASE("LoadBoard: the upstream's caps hold over all its backends") {
  config::UpstreamCaps caps;
  caps.upstream.max_connections = 2;
  caps.upstream.max_pending = 1;
  LoadBoard board(caps, std::nullopt, 2);
  board.connectStarted(0);
  // One connect in progress: a second one waits for nothing, it is refused.
  CHECK(board.overCap(1, true) == Cap::Pending);
  // A pooled connection needs no connect.
  CHECK_FALSE(board.overCap(1, false));
  board.connectEnded(0);
  CHECK_FALSE(board.overCap(1, true));
  board.connectStarted(1);
  board.connectEnded(1);
  CHECK(board.connectionsAtCap(0));
  CHECK(board.overCap(0, true) == Cap::Connections);
  board.connectionClosed(1);
  CHECK_FALSE(board.connectionsAtCap(0));
  CHECK(board.connections() == 1);
  CHECK(board.connections(0) == 1);
  CHECK(board.connections(1) == 0);
}

TEST_CASE("LoadBoard: without caps or budget nothing is counted") {
  LoadBoard board({}, std::nullopt, 1);
  CHECK_FALSE(board.counting());
  CHECK_FALSE(board.overCap(0, true));
}

TEST_CASE("LoadBoard: the retry budget is a share of the requests in flight, with a floor") {
  LoadBoard board({}, config::RetryBudget{.percent = 20, .min_concurrency = 2}, 1);
  CHECK(board.counting());
  // 10 requests: 20% is 2, the floor is 2.
  for (int i = 0; i < 10; ++i) board.requestStarted(0);
  CHECK(board.startRetry());
  CHECK(board.startRetry());
  CHECK_FALSE(board.startRetry());
  CHECK(board.retries() == 2);
  // 20 more requests: 20% of 30 is 6.
  for (int i = 0; i < 20; ++i) board.requestStarted(0);
  for (int i = 0; i < 4; ++i) CHECK(board.startRetry());
  CHECK_FALSE(board.startRetry());
  board.retryEnded();
  CHECK(board.startRetry());
}

TEST_CASE("LoadBoard: without a budget, three retries at most are in flight") {
  LoadBoard board({}, std::nullopt, 1);
  for (int i = 0; i < 1000; ++i) board.requestStarted(0);  // not counted: no effect
  CHECK(board.startRetry());
  CHECK(board.startRetry());
  CHECK(board.startRetry());
  CHECK_FALSE(board.startRetry());
}

}  // namespace gw::upstream
