#pragma once
// A route's concurrency limit (routes[].concurrency): at most `max_requests` of its requests in
// flight toward the upstream for the whole process, the rest waiting in a bounded queue for a
// slot, each at most `queue_timeout`.
//
// RouteGate is the process's part, shared by every worker: the slots in use and the waiters, as
// relaxed-cost atomics (one fetch_add to take a slot, as the upstream LoadBoard counts). Each
// worker keeps its own FIFO of waiting exchanges (RouteQueue, its thread only) and publishes on
// its lane of the gate how many wait and since when. A slot that ends while requests wait is not
// freed but handed to the lane whose first waiter has waited longest, so queued requests go first,
// oldest first across workers. Handing it to another worker posts to that worker's loop (a lock),
// once per batch of slots: that happens only while requests wait, never on the path of a route
// whose slots suffice.
//
// Ordering: a waiter counts itself on its lane, then tries for a slot; a slot's end frees it,
// then looks for waiters (sequentially consistent read-modify-writes, so one of the two always
// sees the other and no slot stays free while a request waits).

#include <atomic>
#include <cstdint>
#include <memory>

#include "gateway/config/model.h"
#include "gateway/plugin/dispatcher.h"

namespace gw::proxy {

class RouteQueue;

class RouteGate : public std::enable_shared_from_this<RouteGate> {
 public:
  RouteGate(const config::RouteConcurrency& limit, unsigned workers);
  RouteGate(const RouteGate&) = delete;
  RouteGate& operator=(const RouteGate&) = delete;

  const config::RouteConcurrency& limit() const { return limit_; }
  // A slot for a request, unless one is taken or requests already wait (they go first).
  bool enter();
  // A place in the queue (false: it is full); leaveQueue() gives it back.
  bool joinQueue();
  void leaveQueue() { queued_.fetch_sub(1); }
  // The end of a slot's request: the slot goes to the longest-waiting lane, or is freed.
  // `here`: the caller's queue of this gate, woken without a post when its lane gets the slot.
  void release(RouteQueue* here);

  // For the tests: what is in flight, and waits, now.
  int64_t inFlight() const { return inFlight_.load(std::memory_order_relaxed); }
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }

 private:
  friend class RouteQueue;
  static constexpr int64_t kNobody = INT64_MAX;
  struct alignas(64) Lane {
    std::atomic<RouteQueue*> queue{nullptr};  // dereferenced on its worker's thread only
    std::atomic<plugin::Dispatcher*> worker{nullptr};
    std::atomic<int64_t> waiting{0};
    std::atomic<int64_t> oldestUs{kNobody};  // when its first waiter joined
    std::atomic<int64_t> granted{0};         // slots handed to it, not yet taken
  };
  // One more slot, if one is free.
  bool take();
  // Hands a slot held for a waiter to `lane`, waking its worker when it was not woken already.
  void grant(unsigned lane, RouteQueue* here);
  // On `lane`'s worker: its queue takes the slots granted to it (those it has no waiter for
  // are released).
  void serveLane(unsigned lane);

  const config::RouteConcurrency limit_;
  const unsigned workers_;
  alignas(64) std::atomic<int64_t> inFlight_{0};
  alignas(64) std::atomic<int64_t> queued_{0};
  std::unique_ptr<Lane[]> lanes_;
};

// One worker's waiters for one gate, in arrival order. Belongs to the worker's generations that
// serve the gate (a reload that keeps the gate keeps the queue); its thread only.
class RouteQueue {
 public:
  // A request waiting for a slot (an Exchange). Exactly one of its hooks runs once it joined,
  // unless it leaves first (leave(), also on destruction of its Ticket).
  class Waiter {
   public:
    // It has a slot now (release it at its end).
    virtual void admitted(int64_t waitedUs) = 0;
    // queue_timeout passed first: it no longer waits, and holds no slot.
    virtual void timedOut(int64_t waitedUs) = 0;

    // In the queue now (joined, and neither admitted, timed out nor left yet).
    bool queued() const { return queued_; }

   protected:
    ~Waiter() = default;

   private:
    friend class RouteQueue;
    Waiter* next_ = nullptr;
    Waiter* prev_ = nullptr;
    int64_t sinceUs_ = 0;
    bool queued_ = false;
  };

  RouteQueue(std::shared_ptr<RouteGate> gate, unsigned lane, plugin::Dispatcher& worker);
  ~RouteQueue();
  RouteQueue(const RouteQueue&) = delete;
  RouteQueue& operator=(const RouteQueue&) = delete;

  RouteGate& gate() { return *gate_; }
  // A slot at once, unless all are taken or requests already wait (they go first).
  bool admit() { return gate_->enter(); }
  // Not admitted: the waiter waits for a slot; false when the queue is full.
  bool join(Waiter& waiter);
  // The waiter stops waiting (its exchange ended): its place goes back. Returns how long it
  // waited.
  int64_t leave(Waiter& waiter);
  std::size_t waiting() const { return count_; }

 private:
  friend class RouteGate;
  void push(Waiter& waiter);
  void unlink(Waiter& waiter);
  // Slots granted to this lane go to its first waiters.
  void serveGrants();
  void expire();
  void armExpiry();
  int64_t nowUs() const { return worker_.nowMs() * 1000; }

  std::shared_ptr<RouteGate> gate_;
  const unsigned laneIndex_;
  RouteGate::Lane& lane_;
  plugin::Dispatcher& worker_;
  std::unique_ptr<plugin::Timer> grantTimer_;   // a slot was granted: served next loop turn
  std::unique_ptr<plugin::Timer> expiryTimer_;  // the first waiter's queue_timeout
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace gw::proxy
