#include "plugins/cache/redis_purge.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <string_view>

#include "gateway/core/log.h"
#include "plugins/cache/redis_tier.h"

namespace gw::plugins::cache {

bool RedisPurges::enqueue(RedisPurge purge) {
  std::lock_guard lock(mu_);
  if (queued_.size() >= kMaxQueued) return false;
  queued_.push_back(std::move(purge));
  if (!runners_.empty()) wake(runners_.front());
  return true;
}

std::size_t RedisPurges::queued() const {
  std::lock_guard lock(mu_);
  return queued_.size();
}

void RedisPurges::wake(const Attached& runner) {
  runner.dispatcher->post([link = runner.link] {
    if (link->runner) link->runner->start();
  });
}

void RedisPurges::attach(RedisPurgeRunner& runner, plugin::Dispatcher& dispatcher) {
  std::lock_guard lock(mu_);
  runners_.push_back({std::make_shared<Link>(Link{&runner}), &dispatcher});
  // Purges queued while no worker was attached (or whose runner went away) start now.
  if (!queued_.empty()) wake(runners_.back());
}

void RedisPurges::detach(RedisPurgeRunner& runner) {
  std::lock_guard lock(mu_);
  std::erase_if(runners_, [&](const Attached& attached) {
    if (attached.link->runner != &runner) return false;
    attached.link->runner = nullptr;
    return true;
  });
  if (!queued_.empty() && !runners_.empty()) wake(runners_.front());
}

std::optional<RedisPurge> RedisPurges::take() {
  std::lock_guard lock(mu_);
  if (queued_.empty()) return std::nullopt;
  RedisPurge purge = std::move(queued_.front());
  queued_.pop_front();
  return purge;
}

void RedisPurges::putBack(RedisPurge purge) {
  std::lock_guard lock(mu_);
  queued_.push_front(std::move(purge));
}

RedisPurgeRunner::RedisPurgeRunner(RedisPurges& purges, plugin::Dispatcher& dispatcher)
    : purges_(purges), dispatcher_(dispatcher) {
  purges_.attach(*this, dispatcher_);
}

RedisPurgeRunner::~RedisPurgeRunner() {
  cancel();
  // Unfinished: another worker starts it over (a purge may run twice; it cannot run wider).
  if (current_) purges_.putBack(std::move(*current_));
  purges_.detach(*this);
}

void RedisPurgeRunner::start() {
  if (current_) return;
  current_ = purges_.take();
  if (!current_) return;
  cursor_.assign(1, '0');  // SCAN starts at cursor 0
  purged_ = 0;
  scan();
}

void RedisPurgeRunner::scan() {
  redis::Client* client = dispatcher_.redis();
  if (!client) return finish("no redis connection");
  const std::string pattern = redisScanPattern(client->keySpace());
  const std::string_view argv[] = {"SCAN", cursor_, "MATCH", pattern, "COUNT", kScanBatch};
  const redis::Failure failure = client->command(argv, this);
  if (failure != redis::Failure::None) finish(redis::failureName(failure));
}

void RedisPurgeRunner::onReply(const redisReply* reply, redis::Failure failure) {
  if (failure != redis::Failure::None) return finish(redis::failureName(failure));
  if (reply->type == REDIS_REPLY_INTEGER) {
    // A batch was purged: on to the next, or done when SCAN's cursor came back to 0.
    purged_ += static_cast<uint64_t>(std::max<long long>(0, reply->integer));
    if (cursor_ == "0") return finish("done");
    return scan();
  }
  onScanned(*reply);
}

void RedisPurgeRunner::onScanned(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 2 ||
      reply.element[0]->type != REDIS_REPLY_STRING || reply.element[1]->type != REDIS_REPLY_ARRAY) {
    return finish(redis::failureName(redis::Failure::BadReply));
  }
  cursor_.assign(reply.element[0]->str, reply.element[0]->len);
  const redisReply& keys = *reply.element[1];
  if (keys.elements == 0) {
    if (cursor_ == "0") return finish("done");
    return scan();
  }
  redis::Client* client = dispatcher_.redis();
  if (!client) return finish("no redis connection");
  const std::string keyCount = std::to_string(keys.elements);
  std::vector<std::string_view> argv{"EVAL", kPurgeScript, keyCount};
  for (std::size_t i = 0; i < keys.elements; ++i) {
    if (keys.element[i]->type != REDIS_REPLY_STRING) {
      return finish(redis::failureName(redis::Failure::BadReply));
    }
    argv.emplace_back(keys.element[i]->str, keys.element[i]->len);
  }
  argv.insert(argv.end(), {current_->host, current_->path, current_->prefix ? "1" : "0"});
  const redis::Failure failure = client->command(argv, this);
  if (failure != redis::Failure::None) finish(redis::failureName(failure));
}

void RedisPurgeRunner::finish(std::string_view outcome) {
  const std::string_view what = current_->prefix ? "prefix" : "path";
  core::log::info("redis cache purge", {{"host", current_->host},
                                        {what, current_->path},
                                        {"purged", std::to_string(purged_)},
                                        {"outcome", outcome}});
  current_.reset();
  start();
}

}  // namespace gw::plugins::cache
