#pragma once
// A redis::Client for plugin unit tests: it records each command and holds it until the test
// answers it (a reply built here, or a failure), in the order sent, as Redis would. The test can
// also make it refuse commands at once (Down, Overloaded), as the real client does while its
// breaker is open. The real client is tested against a real Redis (test/integration/redis).

#include <hiredis/hiredis.h>

#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/redis/client.h"
#include "gateway/redis/script.h"

namespace gw::test {

// A reply tree the test builds; view() gives the hiredis struct a decoder reads.
class FakeReply {
 public:
  static FakeReply integer(long long value) {
    FakeReply r(REDIS_REPLY_INTEGER);
    r.reply_.integer = value;
    return r;
  }
  static FakeReply string(std::string_view text) { return FakeReply(REDIS_REPLY_STRING, text); }
  static FakeReply status(std::string_view text) { return FakeReply(REDIS_REPLY_STATUS, text); }
  static FakeReply error(std::string_view text) { return FakeReply(REDIS_REPLY_ERROR, text); }
  static FakeReply nil() { return FakeReply(REDIS_REPLY_NIL); }
  static FakeReply array(std::vector<FakeReply> elements) {
    FakeReply r(REDIS_REPLY_ARRAY);
    r.children_ = std::make_shared<std::vector<FakeReply>>(std::move(elements));
    return r;
  }
  static FakeReply integers(std::initializer_list<long long> values) {
    std::vector<FakeReply> elements;
    for (long long v : values) elements.push_back(integer(v));
    return array(std::move(elements));
  }

  // The hiredis view; valid while this FakeReply lives and is not copied.
  const redisReply* view() {
    if (children_) {
      pointers_.clear();
      for (FakeReply& child : *children_)
        pointers_.push_back(const_cast<redisReply*>(child.view()));
      reply_.element = pointers_.data();
      reply_.elements = pointers_.size();
    }
    if (text_) {
      reply_.str = text_->data();
      reply_.len = text_->size();
    }
    return &reply_;
  }
  bool isError() const { return reply_.type == REDIS_REPLY_ERROR; }

 private:
  explicit FakeReply(int type, std::string_view text = {}) {
    std::memset(&reply_, 0, sizeof reply_);
    reply_.type = type;
    if (type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS || type == REDIS_REPLY_ERROR)
      text_ = std::make_shared<std::string>(text);
  }
  redisReply reply_;
  std::shared_ptr<std::string> text_;
  std::shared_ptr<std::vector<FakeReply>> children_;
  std::vector<redisReply*> pointers_;
};

class FakeRedis final : public redis::Client {
 public:
  struct Sent {
    std::vector<std::string> argv;  // eval: {"EVALSHA", sha, numkeys, keys..., args...}
    redis::PendingCommand link;     // to its waiter (cut when the waiter cancels)
    bool hasWaiter = false;
  };

  redis::State currentState = redis::State::Closed;
  // What the next commands get instead of being queued (None: queued).
  redis::Failure refuseWith = redis::Failure::None;
  std::vector<const redis::Script*> used;
  redis::KeySpace keys;

  redis::State state() const override { return currentState; }
  const redis::KeySpace& keySpace() const override { return keys; }
  void use(const redis::Script& script) override { used.push_back(&script); }

  redis::Failure eval(const redis::Script& script, std::span<const std::string_view> keys,
                      std::span<const std::string_view> args, redis::Waiter& waiter) override {
    std::vector<std::string> argv{"EVALSHA", script.sha1(), std::to_string(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return queue(std::move(argv), &waiter);
  }
  redis::Failure command(std::span<const std::string_view> argv, redis::Waiter* waiter) override {
    return queue(std::vector<std::string>(argv.begin(), argv.end()), waiter);
  }

  std::size_t pending() const { return sent_.size(); }
  // The oldest command not answered yet.
  const std::vector<std::string>& oldest() const { return sent_.front()->argv; }
  const std::vector<std::string>& newest() const { return sent_.back()->argv; }
  std::size_t answered() const { return answered_; }

  // Answers the oldest command with `reply` (an error reply comes as ServerError, as from the
  // real client). Its waiter, if it still waits, runs inside this call.
  void respond(FakeReply reply) {
    const redis::Failure failure =
        reply.isError() ? redis::Failure::ServerError : redis::Failure::None;
    deliver(reply.view(), failure);
  }
  // The oldest command fails (Timeout, Disconnected) without a reply.
  void fail(redis::Failure failure) { deliver(nullptr, failure); }

 private:
  redis::Failure queue(std::vector<std::string> argv, redis::Waiter* waiter) {
    if (refuseWith != redis::Failure::None) return refuseWith;
    auto sent = std::make_unique<Sent>();
    sent->argv = std::move(argv);
    if (waiter) {
      sent->link.attach(*waiter);
      sent->hasWaiter = true;
    }
    sent_.push_back(std::move(sent));
    return redis::Failure::None;
  }
  void deliver(const redisReply* reply, redis::Failure failure) {
    std::unique_ptr<Sent> sent = std::move(sent_.front());
    sent_.pop_front();
    ++answered_;
    if (redis::Waiter* waiter = sent->link.detach()) waiter->onReply(reply, failure);
  }

  std::deque<std::unique_ptr<Sent>> sent_;
  std::size_t answered_ = 0;
};

}  // namespace gw::test
