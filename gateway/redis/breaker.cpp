#include "gateway/redis/breaker.h"

#include <algorithm>

namespace gw::redis {

Breaker::Breaker(const BreakerSettings& settings, uint64_t seed)
    : settings_(settings), random_(seed) {}

bool Breaker::admit() {
  if (state_ == State::Closed) return true;
  if (state_ != State::HalfOpen || probesSent_ >= settings_.probes) return false;
  ++probesSent_;
  return true;
}

void Breaker::connected() {
  state_ = State::HalfOpen;
  probesSent_ = 0;
  probesPassed_ = 0;
}

void Breaker::succeeded() {
  errorsInRow_ = 0;
  if (state_ == State::HalfOpen && ++probesPassed_ >= settings_.probes) {
    state_ = State::Closed;
    failedAttempts_ = 0;
  }
}

bool Breaker::failed() {
  if (state_ == State::HalfOpen) return true;
  return state_ == State::Closed && ++errorsInRow_ >= settings_.errors;
}

int64_t Breaker::opened() {
  state_ = State::Open;
  errorsInRow_ = 0;
  int64_t full = settings_.reconnectInitialMs;
  for (uint32_t i = 0; i < failedAttempts_ && full < settings_.reconnectMaxMs; ++i) full *= 2;
  full = std::min(full, settings_.reconnectMaxMs);
  ++failedAttempts_;
  const int64_t half = full / 2;
  return half + static_cast<int64_t>(random_.next() % static_cast<uint64_t>(full - half + 1));
}

}  // namespace gw::redis
