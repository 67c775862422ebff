#pragma once
// What a worker holds of Redis's counts per key, for store: redis and store: hybrid. At most one
// script call per key is in flight on a worker; requests of the key that come meanwhile wait for
// its reply (FIFO, at most kMaxWaiters) and are served by it, or by the next call, which asks for
// all of them. Redis counts what it grants when it grants it, and a grant is used only before the
// earliest of its windows ends, so neither store admits more than one call per request would.
//
// - Grants::Exact (store: redis): a call asks for exactly the requests waiting (Share::All), so
//   one EVALSHA decides a whole group of a hot key's requests. It goes out at the end of the loop
//   turn (Timer::arm(0)), so the requests of a key that one turn reads share it. A grant for a
//   waiter that left before the reply is kept for the key's next request until the deadline.
// - Grants::Lease (hybrid): a call asks for a lease of `batch` tokens (Share::Half) that the
//   worker admits from locally, so most requests cost no round trip. The next lease is asked for
//   early, when half of the current one is left; a hot key whose early refill came back too late
//   (requests were waiting) doubles its lease size, up to `max_batch`, and a lease that ends
//   unused halves it again, down to `batch`. What it costs is under-admission: tokens leased but
//   unused when the window ends are lost (docs/plugins.md states the bound).
//
// Waiters are served when the reply comes, whatever the deadline: Redis decided for them then,
// exactly as one call each would. A refused call refuses every waiter and goes into the refusal
// memo; a partial grant serves the first waiters and asks again for the rest.
//
// Bounded: at most `capacity` keys per worker; a new key evicts the least recently used key that
// has no call in flight or due and nobody waiting (its unused tokens are lost: under-admission
// only). Only busy keys take the table past `capacity`, and those are bounded by the calls in
// flight (the Redis connection's max_pending) and the requests waiting.

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

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

  // Served: `decision` (admitted with a token, or refused), or the call failed (`decision` null,
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

enum class Grants : uint8_t { Exact, Lease };

class LeaseTable {
 public:
  // Per key and worker; also the most one call asks for.
  static constexpr std::size_t kMaxWaiters = 1024;
  // A lease ends this much before the window end its grant reported, for the loop clock's lag.
  static constexpr int64_t kDeadlineMarginMs = 5;
  // How many of the least recently used keys an insertion looks at for one to evict.
  static constexpr std::size_t kEvictionScan = 8;

  // `batch` and `maxBatch`: the lease sizes of Grants::Lease (unused by Exact).
  LeaseTable(plugin::Dispatcher& dispatcher, const RedisWindow& window, Grants grants,
             int64_t batch, int64_t maxBatch, std::size_t capacity, RefusalMemo& memo);
  LeaseTable(const LeaseTable&) = delete;
  LeaseTable& operator=(const LeaseTable&) = delete;

  enum class Outcome : uint8_t {
    Admitted,  // a token was taken: `decision` is set
    Waiting,   // `waiter` waits for a call's reply; onLease comes later, never inside this call
    Failed,    // no lease now and none can be asked for: `failure` says why (apply the policy)
  };
  struct Result {
    Outcome outcome = Outcome::Failed;
    Decision decision;
    redis::Failure failure = redis::Failure::None;
  };
  // `client` is this request's Redis (Dispatcher::redis()), whose key space names the key.
  // While Redis is known to be unreachable (its breaker open), Failed at once.
  Result take(redis::Client& client, const Digest& digest, int64_t nowMs, LeaseWaiter& waiter);

  // Script calls sent since the last call (the caller adds them to its route's counter; those
  // sent from a reply are taken by the next request served).
  uint64_t takeCallCount() noexcept { return std::exchange(calls_, 0); }
  std::size_t size() const { return index_.size(); }

 private:
  struct Lease final : redis::Waiter {
    LeaseTable* table = nullptr;
    Digest digest;
    std::string key;
    int64_t tokens = 0;
    int64_t deadlineMs = 0;
    int64_t sentMs = 0;  // of the call in flight
    int64_t asked = 0;   // by the call in flight
    int64_t grantedAtMs = 0;
    int64_t leaseSize = 0;  // Grants::Lease: what the next call asks for
    Decision granted;       // the last grant's decision, for the headers of requests it admits
    WaitList waiters;
    bool handingOut = false;  // received() is serving waiters: not evictable
    bool early = false;       // the call in flight went out while tokens were left
    bool due = false;         // Grants::Exact: in due_, its call goes out at the turn's end

    void onReply(const redisReply* reply, redis::Failure failure) override {
      table->received(*this, reply, failure);
    }
    bool busy() const { return waiting() || waiters.size > 0 || handingOut || due; }
  };
  using Index = std::unordered_map<Digest, std::list<Lease>::iterator, SaltedDigestHash>;

  Lease& find(const redis::KeySpace& keySpace, const Digest& digest, int64_t nowMs);
  bool takeToken(Lease& lease, int64_t nowMs, Decision& decision);
  // Sends the key's next call: for the waiters (Exact) or a lease (Lease).
  redis::Failure send(redis::Client& client, Lease& lease, int64_t nowMs, bool early);
  void received(Lease& lease, const redisReply* reply, redis::Failure failure);
  // Grants::Exact: the key's call goes out at the end of this loop turn.
  void sendAtTurnEnd(Lease& lease);
  void sendDue();
  // Every waiter of the key hears `failure` (the policy applies).
  static void failWaiters(Lease& lease, redis::Failure failure);

  plugin::Dispatcher& dispatcher_;
  const RedisWindow& window_;
  Grants grants_;
  int64_t batch_;
  int64_t maxBatch_;
  std::size_t capacity_;
  RefusalMemo& memo_;
  std::list<Lease> lru_;  // most recent first
  Index index_;
  std::string keyPrefix_;  // the key space's prefix the keys held were named with
  uint64_t calls_ = 0;
  std::vector<Lease*> due_;
  std::unique_ptr<plugin::Timer> turnEnd_;  // made on first use, on the worker's thread
};

}  // namespace gw::plugins::rate_limit
