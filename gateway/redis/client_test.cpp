#include "gateway/redis/client.h"

#include <doctest/doctest.h>

namespace gw::redis {

namespace {
struct CountingWaiter : Waiter {
  int replies = 0;
  void onReply(const redisReply*, Failure) override { ++replies; }
};
}  // namespace

TEST_CASE("a cancelled waiter is detached from its command, which then reaches no one") {
  PendingCommand command;
  CountingWaiter waiter;
  command.attach(waiter);
  CHECK(waiter.waiting());
  waiter.cancel();
  CHECK_FALSE(waiter.waiting());
  CHECK(command.detach() == nullptr);
}

TEST_CASE("detaching hands the waiter over once and leaves it free for its next command") {
  PendingCommand command;
  CountingWaiter waiter;
  command.attach(waiter);
  Waiter* reached = command.detach();
  CHECK(reached == &waiter);
  CHECK_FALSE(waiter.waiting());
  CHECK(command.detach() == nullptr);
  waiter.cancel();  // harmless when not waiting
}

TEST_CASE("a waiter destroyed while waiting cuts its link") {
  PendingCommand command;
  {
    CountingWaiter waiter;
    command.attach(waiter);
  }
  CHECK(command.detach() == nullptr);
}

TEST_CASE("states and failures have the names metrics and /status use") {
  CHECK(stateName(State::HalfOpen) == "half_open");
  CHECK(stateName(State::Closed) == "closed");
  CHECK(failureName(Failure::Timeout) == "timeout");
  CHECK(failureName(Failure::ServerError) == "server_error");
}

}  // namespace gw::redis
