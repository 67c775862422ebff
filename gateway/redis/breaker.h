#pragma once
// The circuit breaker around one worker's Redis connection, as a pure state machine: the
// connection reports what happened (connected, a reply, an error, dropped) and asks whether a
// command may go out; the breaker answers and says when to try to reconnect. No clock or socket
// of its own (the caller passes the time), so every transition is unit tested.
//
//   Connecting --handshake done--> HalfOpen --`probes` successes--> Closed
//        |                            |                                |
//        +---- failed / dropped ------+---- any failure ---------------+-- `errors` in a row,
//        v                                                                 or dropped
//      Open --reconnect delay--> Connecting
//
// The reconnect delay doubles from `reconnectInitialMs` to `reconnectMaxMs` with every failed
// attempt, drawn uniformly from [d/2, d] so that the workers of many instances do not reconnect
// in step after an outage.

#include <cstdint>

#include "gateway/core/fast_random.h"
#include "gateway/redis/client.h"

namespace gw::redis {

struct BreakerSettings {
  uint32_t errors = 5;  // consecutive error replies that open a Closed breaker
  uint32_t probes = 8;  // commands a HalfOpen breaker lets out; all must succeed to close
  int64_t reconnectInitialMs = 100;
  int64_t reconnectMaxMs = 5000;
};

class Breaker {
 public:
  Breaker(const BreakerSettings& settings, uint64_t seed);

  State state() const { return state_; }
  // Whether a command may go out now (Closed, or HalfOpen with a probe left); counts the probe.
  bool admit();

  // A connection attempt starts.
  void connecting() { state_ = State::Connecting; }
  // The handshake succeeded: probes go out next.
  void connected();
  // A command got its reply.
  void succeeded();
  // A command got an error reply; true when the connection should be dropped (the breaker is
  // then Open, see opened()).
  bool failed();
  // The connection failed or was dropped: Open. Returns the delay until the next attempt.
  int64_t opened();

 private:
  BreakerSettings settings_;
  core::FastRandom random_;
  State state_ = State::Connecting;
  uint32_t failedAttempts_ = 0;  // since the last Closed: the back-off's exponent
  uint32_t errorsInRow_ = 0;
  uint32_t probesSent_ = 0;
  uint32_t probesPassed_ = 0;
};

}  // namespace gw::redis
