#pragma once
// store: hybrid. A worker takes quota from Redis in small batches (leases) and admits locally
// from its batch, so most requests cost no round trip. The script counts a lease in Redis when it
// grants it, and a lease is used only before the earliest of its windows ends, so hybrid never
// admits more than store: redis; what it costs is under-admission (tokens leased but unused when
// the window ends are lost; docs/plugins.md states the bound).
//
// Per key: tokens, their deadline, and the requests waiting for a refill (FIFO, at most
// kMaxWaiters). One refill per key is in flight at a time; one goes out early when the tokens run
// low (<= batch / 4), so steady traffic rarely waits. Waiters are served when the refill's reply
// comes, whatever the deadline: Redis decided for them then, exactly as with store: redis. A
// refused refill refuses every waiter and goes into the refusal memo.
//
// Bounded: at most `capacity` keys per worker; a new key evicts the least recently used key that
// has no refill in flight and nobody waiting (its unused tokens are lost: under-admission only),
// or, when there is none among the oldest few, the request gets the failure policy.

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "gateway/plugin/dispatcher.h"
#include "gateway/redis/client.h"
#include "plugins/rate_limit/redis_window.h"
#include "plugins/rate_limit/refusal_memo.h"

namespace gw::plugins::rate_limit {

class LeaseTable;
struct WaitList;

// A request waiting for a lease (the rate_limit plugin instance of its exchange).
class LeaseWaiter {
 public:
  LeaseWaiter() = default;
  LeaseWaiter(const LeaseWaiter&) = delete;
  LeaseWaiter& operator=(const LeaseWaiter&) = delete;
  virtual ~LeaseWaiter() { leave(); }

  // Served: `decision` (admitted with a token, or refused), or the refill failed (`decision` null,
  // `failure` says why). The waiter has left its list before the call and may do anything.
  virtual void onLease(const Decision* decision, redis::Failure failure) = 0;
  // Stops waiting; harmless when not waiting.
  void leave() noexcept;
  bool waitingForLease() const noexcept { return list_ != nullptr; }

 private:
  friend struct WaitList;
  WaitList* list_ = nullptr;
  LeaseWaiter* prev_ = nullptr;
  LeaseWaiter* next_ = nullptr;
};

// Intrusive FIFO of waiters.
struct WaitList {
  LeaseWaiter* head = nullptr;
  LeaseWaiter* tail = nullptr;
  std::size_t size = 0;

  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList() { clear(); }
  void push(LeaseWaiter& waiter) noexcept;
  LeaseWaiter* pop() noexcept;
  void unlink(LeaseWaiter& waiter) noexcept;
  void takeAll(WaitList& from) noexcept;  // appends `from`'s waiters, in order
  void clear() noexcept;
};

class LeaseTable {
 public:
  static constexpr std::size_t kMaxWaiters = 256;
  // A lease ends this much before the window end its grant reported, for the loop clock's lag.
  static constexpr int64_t kDeadlineMarginMs = 5;
  // How many of the least recently used keys an insertion looks at for one to evict.
  static constexpr std::size_t kEvictionScan = 8;

  LeaseTable(plugin::Dispatcher& dispatcher, const RedisWindow& window, int64_t batch,
             std::size_t capacity, RefusalMemo& memo);
  LeaseTable(const LeaseTable&) = delete;
  LeaseTable& operator=(const LeaseTable&) = delete;

  enum class Outcome : uint8_t {
    Admitted,  // a token was taken: `decision` is set
    Waiting,   // `waiter` waits for a refill; onLease comes later, never inside this call
    Failed,    // no lease now and none can be asked for: `failure` says why (apply the policy)
  };
  struct Result {
    Outcome outcome = Outcome::Failed;
    Decision decision;
    redis::Failure failure = redis::Failure::None;
  };
  // `client` is this request's Redis (Dispatcher::redis()); `redisKey` the key's name in it.
  Result take(redis::Client& client, const Digest& digest, std::string_view redisKey, int64_t nowMs,
              LeaseWaiter& waiter);

  // Refills sent since the last call (the caller adds them to its route's counter).
  uint64_t takeRefillCount() noexcept { return std::exchange(refills_, 0); }
  std::size_t size() const { return index_.size(); }

 private:
  struct Lease final : redis::Waiter {
    LeaseTable* table = nullptr;
    Digest digest;
    std::string key;
    int64_t tokens = 0;
    int64_t deadlineMs = 0;
    int64_t sentMs = 0;  // of the refill in flight
    int64_t grantedAtMs = 0;
    Decision granted;  // the last grant's decision, for the headers of requests it admits
    WaitList waiters;
    bool handingOut = false;  // refilled() is serving waiters: not evictable

    void onReply(const redisReply* reply, redis::Failure failure) override {
      table->refilled(*this, reply, failure);
    }
    bool busy() const { return waiting() || waiters.size > 0 || handingOut; }
  };
  using Index = std::unordered_map<Digest, std::list<Lease>::iterator, SaltedDigestHash>;

  Lease* find(const Digest& digest, std::string_view redisKey, int64_t nowMs);
  bool takeToken(Lease& lease, int64_t nowMs, Decision& decision);
  redis::Failure refill(redis::Client& client, Lease& lease, int64_t nowMs);
  void refilled(Lease& lease, const redisReply* reply, redis::Failure failure);

  plugin::Dispatcher& dispatcher_;
  const RedisWindow& window_;
  int64_t batch_;
  std::string batchText_;
  std::size_t capacity_;
  RefusalMemo& memo_;
  std::list<Lease> lru_;  // most recent first
  Index index_;
  uint64_t refills_ = 0;
};

}  // namespace gw::plugins::rate_limit
