#include "gateway/proxy/route_gate.h"

#include <algorithm>

namespace gw::proxy {

RouteGate::RouteGate(const config::RouteConcurrency& limit, unsigned workers)
    : limit_(limit), workers_(workers), lanes_(std::make_unique<Lane[]>(workers)) {}

bool RouteGate::take() {
  // A compare-exchange, not an add undone: a failed try never hides a free slot from a release.
  int64_t now = inFlight_.load();
  while (now < int64_t(limit_.max_requests)) {
    if (inFlight_.compare_exchange_weak(now, now + 1)) return true;
  }
  return false;
}

bool RouteGate::enter() { return queued_.load() == 0 && take(); }

bool RouteGate::joinQueue() {
  if (queued_.fetch_add(1) < int64_t(limit_.queue)) return true;
  queued_.fetch_sub(1);
  return false;
}

void RouteGate::release(RouteQueue* here) {
  inFlight_.fetch_sub(1);
  unsigned best = workers_;
  int64_t oldest = kNobody;
  for (unsigned i = 0; i < workers_; ++i) {
    if (lanes_[i].waiting.load() == 0) continue;
    const int64_t since = lanes_[i].oldestUs.load(std::memory_order_relaxed);
    if (best == workers_ || since < oldest) {
      best = i;
      oldest = since;
    }
  }
  if (best != workers_ && take()) grant(best, here);
}

void RouteGate::grant(unsigned lane, RouteQueue* here) {
  Lane& to = lanes_[lane];
  if (to.granted.fetch_add(1) != 0) return;  // its worker is woken already
  if (here && here->laneIndex_ == lane) {
    here->grantTimer_->arm(0);
    return;
  }
  to.worker.load()->post([gate = shared_from_this(), lane] { gate->serveLane(lane); });
}

void RouteGate::serveLane(unsigned lane) {
  if (RouteQueue* queue = lanes_[lane].queue.load()) {
    queue->serveGrants();
    return;
  }
  // The worker's queue is gone (a reload dropped the route): nobody there waits.
  for (int64_t n = lanes_[lane].granted.exchange(0); n > 0; --n) release(nullptr);
}

RouteQueue::RouteQueue(std::shared_ptr<RouteGate> gate, unsigned lane, plugin::Dispatcher& worker)
    : gate_(std::move(gate)),
      laneIndex_(lane),
      lane_(gate_->lanes_[lane]),
      worker_(worker),
      grantTimer_(worker.createTimer([this] { serveGrants(); })),
      expiryTimer_(worker.createTimer([this] { expire(); })) {
  lane_.worker.store(&worker);
  lane_.queue.store(this);
}

RouteQueue::~RouteQueue() {
  lane_.queue.store(nullptr);
  for (int64_t n = lane_.granted.exchange(0); n > 0; --n) gate_->release(nullptr);
}

bool RouteQueue::join(Waiter& waiter) {
  if (!gate_->joinQueue()) return false;
  push(waiter);
  // A slot that ended before this lane counted its waiter found nobody: take it now.
  if (gate_->take()) gate_->grant(laneIndex_, this);
  return true;
}

int64_t RouteQueue::leave(Waiter& waiter) {
  if (!waiter.queued_) return 0;
  const bool first = &waiter == head_;
  unlink(waiter);
  gate_->leaveQueue();
  if (first) armExpiry();
  return nowUs() - waiter.sinceUs_;
}

void RouteQueue::push(Waiter& waiter) {
  waiter.sinceUs_ = nowUs();
  waiter.queued_ = true;
  waiter.prev_ = tail_;
  waiter.next_ = nullptr;
  (tail_ ? tail_->next_ : head_) = &waiter;
  tail_ = &waiter;
  ++count_;
  if (head_ == &waiter) {
    lane_.oldestUs.store(waiter.sinceUs_, std::memory_order_relaxed);
    armExpiry();
  }
  lane_.waiting.fetch_add(1);
}

void RouteQueue::unlink(Waiter& waiter) {
  (waiter.prev_ ? waiter.prev_->next_ : head_) = waiter.next_;
  (waiter.next_ ? waiter.next_->prev_ : tail_) = waiter.prev_;
  waiter.next_ = waiter.prev_ = nullptr;
  waiter.queued_ = false;
  --count_;
  lane_.oldestUs.store(head_ ? head_->sinceUs_ : RouteGate::kNobody, std::memory_order_relaxed);
  lane_.waiting.fetch_sub(1);
}

void RouteQueue::serveGrants() {
  int64_t granted = lane_.granted.exchange(0);
  // Each admitted exchange may end at once and release its slot: that only arms the timer again.
  for (; granted > 0 && head_; --granted) {
    Waiter& first = *head_;
    unlink(first);
    gate_->leaveQueue();
    first.admitted(nowUs() - first.sinceUs_);
  }
  for (; granted > 0; --granted) gate_->release(this);
  armExpiry();
}

void RouteQueue::expire() {
  const int64_t now = nowUs();
  const int64_t timeoutUs = gate_->limit().queue_timeout.count() * 1000;
  while (head_ && now - head_->sinceUs_ >= timeoutUs) {
    Waiter& first = *head_;
    unlink(first);
    gate_->leaveQueue();
    first.timedOut(now - first.sinceUs_);
  }
  armExpiry();
}

void RouteQueue::armExpiry() {
  if (!head_) {
    expiryTimer_->cancel();
    return;
  }
  const int64_t dueUs = head_->sinceUs_ + gate_->limit().queue_timeout.count() * 1000;
  expiryTimer_->arm(std::max<int64_t>(0, (dueUs - nowUs() + 999) / 1000));
}

}  // namespace gw::proxy
