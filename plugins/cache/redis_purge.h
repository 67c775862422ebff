#pragma once
// The admin purge of the Redis tier. The admin thread has no Redis connection, and a purge must
// not make a request wait, so DELETE /cache queues the purge here and posts it to one worker,
// whose RedisPurgeRunner walks the cache's keys with SCAN MATCH (COUNT kScanBatch) and removes
// each batch's matches with one EVAL of kPurgeScript (GETRANGE of each value's head, UNLINK):
// bounded work per round trip, one round trip at a time, off every request's path.
//
// SCAN rather than a generation in the key names: a generation must be read from Redis by every
// lookup (one more round trip per memory miss, on every instance) to be shared, and it drops
// everything at once, while the purge names a path. Keys expire by their TTL, so whatever a purge
// does not reach (an instance filling the path again meanwhile) is bounded in time anyway.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gateway/plugin/dispatcher.h"
#include "gateway/plugin/plugin.h"
#include "gateway/redis/client.h"

namespace gw::plugins::cache {

struct RedisPurge {
  std::string host;  // "" any
  std::string path;
  bool prefix = false;
};

class RedisPurgeRunner;

// The purges waiting for a worker, and the workers' runners; thread-safe.
class RedisPurges {
 public:
  static constexpr std::size_t kMaxQueued = 64;

  // Any thread: queues the purge and wakes a runner. False when kMaxQueued wait already.
  bool enqueue(RedisPurge purge);
  std::size_t queued() const;

  // The runners' side, each on its own worker.
  void attach(RedisPurgeRunner& runner, plugin::Dispatcher& dispatcher);
  void detach(RedisPurgeRunner& runner);
  std::optional<RedisPurge> take();
  void putBack(RedisPurge purge);

 private:
  // Cut by the runner's destructor, on the runner's worker, where posted starts run.
  struct Link {
    RedisPurgeRunner* runner = nullptr;
  };
  struct Attached {
    std::shared_ptr<Link> link;
    plugin::Dispatcher* dispatcher;
  };
  void wake(const Attached& runner);  // with mu_ held

  mutable std::mutex mu_;
  std::deque<RedisPurge> queued_;
  std::vector<Attached> runners_;
};

// One per worker and route binding of a `store: redis` cache (its plugin::WorkerState).
class RedisPurgeRunner final : public plugin::WorkerState, private redis::Waiter {
 public:
  static constexpr std::string_view kScanBatch = "256";

  RedisPurgeRunner(RedisPurges& purges, plugin::Dispatcher& dispatcher);
  ~RedisPurgeRunner() override;

  // Runs queued purges one after the other until none is left. On this runner's worker.
  void start();

 private:
  void onReply(const redisReply* reply, redis::Failure failure) override;
  void scan();
  void onScanned(const redisReply& reply);
  void finish(std::string_view outcome);

  RedisPurges& purges_;
  plugin::Dispatcher& dispatcher_;
  std::optional<RedisPurge> current_;
  std::string cursor_;
  uint64_t purged_ = 0;
};

}  // namespace gw::plugins::cache
