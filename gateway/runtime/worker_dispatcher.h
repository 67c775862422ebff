#pragma once
// plugin::Dispatcher on a worker's event loop: post() through the reactor, timers as libevent
// timer events on its base, the clock cached by the loop.

#include <cstdint>
#include <functional>
#include <memory>

#include "gateway/core/reactor.h"
#include "gateway/plugin/dispatcher.h"
#include "gateway/redis/client.h"

namespace gw::runtime {

class WorkerDispatcher final : public plugin::Dispatcher {
 public:
  explicit WorkerDispatcher(core::Reactor& reactor) : reactor_(reactor) {}

  void post(std::function<void()> fn) override { reactor_.post(std::move(fn)); }
  std::unique_ptr<plugin::Timer> createTimer(std::function<void()> fired) override;
  int64_t nowMs() const override;
  redis::Client* redis() override { return redis_; }
  // The worker's Redis connection from now on (null: none).
  void setRedis(redis::Client* client) { redis_ = client; }

 private:
  core::Reactor& reactor_;
  redis::Client* redis_ = nullptr;
};

}  // namespace gw::runtime
