#include "gateway/redis/state_board.h"

namespace gw::redis {

StateBoard::StateBoard(std::size_t workers)
    : workers_(workers), states_(std::make_unique<std::atomic<uint8_t>[]>(workers)) {
  for (std::size_t i = 0; i < workers; ++i) set(i, State::Connecting);
}

void StateBoard::set(std::size_t worker, State state) noexcept {
  states_[worker].store(static_cast<uint8_t>(state), std::memory_order_relaxed);
}

State StateBoard::get(std::size_t worker) const noexcept {
  return static_cast<State>(states_[worker].load(std::memory_order_relaxed));
}

std::array<std::size_t, kStateCount> StateBoard::count() const noexcept {
  std::array<std::size_t, kStateCount> counts{};
  for (std::size_t i = 0; i < workers_; ++i) ++counts[static_cast<std::size_t>(get(i))];
  return counts;
}

}  // namespace gw::redis
