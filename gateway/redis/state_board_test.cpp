#include "gateway/redis/state_board.h"

#include <doctest/doctest.h>

#include <thread>

namespace gw::redis {

TEST_CASE("state board: workers start connecting; each worker's byte is its own") {
  StateBoard board(3);
  CHECK(board.workers() == 3);
  CHECK(board.count() == std::array<std::size_t, kStateCount>{3, 0, 0, 0});
  board.set(0, State::Closed);
  board.set(2, State::Open);
  CHECK(board.get(0) == State::Closed);
  CHECK(board.get(1) == State::Connecting);
  CHECK(board.get(2) == State::Open);
  CHECK(board.count() == std::array<std::size_t, kStateCount>{1, 1, 0, 1});
}

TEST_CASE("state board: a worker's writes are read from another thread") {
  StateBoard board(2);
  std::thread worker([&] {
    board.set(1, State::HalfOpen);
    board.set(1, State::Closed);
  });
  worker.join();
  CHECK(board.get(1) == State::Closed);
}

}  // namespace gw::redis
