#pragma once
// Each worker's Redis breaker state where the admin thread can read it (/ready, /status,
// gatewayd_redis_workers): one atomic byte per worker, written by that worker on every change.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "gateway/redis/client.h"

namespace gw::redis {

inline constexpr std::size_t kStateCount = 4;  // the values of State

class StateBoard {
 public:
  // Every worker starts Connecting.
  explicit StateBoard(std::size_t workers);

  std::size_t workers() const { return workers_; }
  void set(std::size_t worker, State state) noexcept;  // that worker's thread
  State get(std::size_t worker) const noexcept;        // any thread
  // How many workers are in each state, indexed by State.
  std::array<std::size_t, kStateCount> count() const noexcept;

 private:
  std::size_t workers_;
  std::unique_ptr<std::atomic<uint8_t>[]> states_;
};

}  // namespace gw::redis
