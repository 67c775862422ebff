#pragma once
// A plugin::Dispatcher for unit tests: the clock moves only when the test says so, timers fire
// when the test advances time past their deadline, and posted callbacks wait until the test runs
// them. So a plugin's waits (the cache's coalescing) are driven step by step, without a loop.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "gateway/plugin/dispatcher.h"

namespace gw::test {

class FakeDispatcher final : public plugin::Dispatcher {
 public:
  int64_t now = 1'000'000;

  void post(std::function<void()> fn) override {
    std::lock_guard lock(mutex_);
    posted_.push_back(std::move(fn));
  }
  std::unique_ptr<plugin::Timer> createTimer(std::function<void()> fired) override {
    return std::make_unique<FakeTimer>(*this, std::move(fired));
  }
  int64_t nowMs() const override { return now; }
  redis::Client* redis() override { return redisClient; }

  // What redis() answers: null (no `redis:` block) until the test sets one (test::FakeRedis).
  redis::Client* redisClient = nullptr;

  // Runs what was posted so far (and what those callbacks post); returns how many ran.
  std::size_t runPosted() {
    std::size_t ran = 0;
    for (;;) {
      std::vector<std::function<void()>> batch;
      {
        std::lock_guard lock(mutex_);
        batch.swap(posted_);
      }
      if (batch.empty()) return ran;
      for (auto& fn : batch) fn();
      ran += batch.size();
    }
  }
  // Moves the clock forward by `ms`, firing each timer whose deadline is reached, earliest first,
  // with the clock at its deadline.
  void advance(int64_t ms) {
    const int64_t until = now + ms;
    while (FakeTimer* next = earliestDue(until)) {
      now = std::max(now, next->deadline_);
      next->armed_ = false;
      next->fired_();
    }
    now = until;
  }
  std::size_t armedTimers() const {
    return static_cast<std::size_t>(std::count_if(timers_.begin(), timers_.end(),
                                                  [](const FakeTimer* t) { return t->armed_; }));
  }

 private:
  class FakeTimer final : public plugin::Timer {
   public:
    FakeTimer(FakeDispatcher& owner, std::function<void()> fired)
        : owner_(owner), fired_(std::move(fired)) {
      owner_.timers_.push_back(this);
    }
    ~FakeTimer() override { std::erase(owner_.timers_, this); }
    void arm(int64_t delayMs) override {
      deadline_ = owner_.now + delayMs;
      armed_ = true;
    }
    void cancel() override { armed_ = false; }
    bool armed() const override { return armed_; }

   private:
    friend class FakeDispatcher;
    FakeDispatcher& owner_;
    std::function<void()> fired_;
    int64_t deadline_ = 0;
    bool armed_ = false;
  };

  FakeTimer* earliestDue(int64_t until) const {
    FakeTimer* earliest = nullptr;
    for (FakeTimer* t : timers_) {
      if (t->armed_ && t->deadline_ <= until && (!earliest || t->deadline_ < earliest->deadline_)) {
        earliest = t;
      }
    }
    return earliest;
  }

  std::mutex mutex_;
  std::vector<std::function<void()>> posted_;
  std::vector<FakeTimer*> timers_;
};

}  // namespace gw::test
