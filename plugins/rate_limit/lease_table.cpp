#include "plugins/rate_limit/lease_table.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

namespace gw::plugins::rate_limit {

void LeaseWaiter::leave() noexcept {
  if (list_) list_->unlink(*this);
}

void WaitList::push(LeaseWaiter& waiter) noexcept {
  waiter.list_ = this;
  waiter.prev_ = tail;
  waiter.next_ = nullptr;
  (tail ? tail->next_ : head) = &waiter;
  tail = &waiter;
  ++size;
}

LeaseWaiter* WaitList::pop() noexcept {
  LeaseWaiter* first = head;
  if (first) unlink(*first);
  return first;
}

void WaitList::unlink(LeaseWaiter& waiter) noexcept {
  (waiter.prev_ ? waiter.prev_->next_ : head) = waiter.next_;
  (waiter.next_ ? waiter.next_->prev_ : tail) = waiter.prev_;
  waiter.list_ = nullptr;
  waiter.prev_ = waiter.next_ = nullptr;
  --size;
}

void WaitList::takeAll(WaitList& from) noexcept {
  while (LeaseWaiter* waiter = from.pop()) push(*waiter);
}

void WaitList::clear() noexcept {
  while (pop()) {
  }
}

LeaseTable::LeaseTable(plugin::Dispatcher& dispatcher, const RedisWindow& window, int64_t batch,
                       std::size_t capacity, RefusalMemo& memo)
    : dispatcher_(dispatcher),
      window_(window),
      batch_(batch),
      batchText_(std::to_string(batch)),
      capacity_(std::max<std::size_t>(1, capacity)),
      memo_(memo) {}

LeaseTable::Lease* LeaseTable::find(const Digest& digest, std::string_view redisKey,
                                    int64_t nowMs) {
  if (const auto found = index_.find(digest); found != index_.end()) {
    lru_.splice(lru_.begin(), lru_, found->second);
    return &lru_.front();
  }
  if (lru_.size() >= capacity_) {
    auto victim = lru_.end();
    for (std::size_t scanned = 0; scanned < kEvictionScan && victim != lru_.begin(); ++scanned) {
      if (!std::prev(victim)->busy()) break;
      --victim;
    }
    if (victim == lru_.begin() || std::prev(victim)->busy()) return nullptr;
    --victim;
    index_.erase(victim->digest);
    lru_.erase(victim);
  }
  Lease& lease = lru_.emplace_front();
  lease.table = this;
  lease.digest = digest;
  lease.key.assign(redisKey);
  lease.deadlineMs = nowMs;
  index_.emplace(digest, lru_.begin());
  return &lease;
}

bool LeaseTable::takeToken(Lease& lease, int64_t nowMs, Decision& decision) {
  if (lease.tokens <= 0 || nowMs >= lease.deadlineMs) return false;
  --lease.tokens;
  // Approximate: what Redis had left at the grant plus the tokens still held here.
  const int64_t aged = std::max<int64_t>(0, nowMs - lease.grantedAtMs);
  decision = lease.granted;
  decision.remaining = lease.granted.remaining + lease.tokens;
  decision.resetMs = std::max<int64_t>(0, lease.granted.resetMs - aged);
  return true;
}

LeaseTable::Result LeaseTable::take(redis::Client& client, const Digest& digest,
                                    std::string_view redisKey, int64_t nowMs, LeaseWaiter& waiter) {
  Result result;
  Lease* lease = find(digest, redisKey, nowMs);
  if (!lease) {
    result.failure = redis::Failure::Overloaded;
    return result;
  }
  if (takeToken(*lease, nowMs, result.decision)) {
    result.outcome = Outcome::Admitted;
    // Ahead of need: a failure here costs nothing, the next request that finds none asks again.
    if (!lease->waiting() && lease->tokens <= batch_ / 4) refill(client, *lease, nowMs);
    return result;
  }
  if (lease->waiters.size >= kMaxWaiters) {
    result.failure = redis::Failure::Overloaded;
    return result;
  }
  if (!lease->waiting()) {
    result.failure = refill(client, *lease, nowMs);
    if (result.failure != redis::Failure::None) return result;
  }
  lease->waiters.push(waiter);
  result.outcome = Outcome::Waiting;
  return result;
}

redis::Failure LeaseTable::refill(redis::Client& client, Lease& lease, int64_t nowMs) {
  std::array<std::string_view, RedisWindow::kMaxArgs> args;
  const std::size_t count = window_.args(batchText_, "", args);
  const std::string_view keys[] = {lease.key};
  const redis::Failure failure =
      client.eval(windowScript(), keys, {args.data(), count}, static_cast<redis::Waiter&>(lease));
  if (failure == redis::Failure::None) {
    lease.sentMs = nowMs;
    ++refills_;
  }
  return failure;
}

void LeaseTable::refilled(Lease& lease, const redisReply* reply, redis::Failure failure) {
  const int64_t nowMs = dispatcher_.nowMs();
  std::optional<Grant> grant;
  if (failure == redis::Failure::None) {
    grant = decodeGrant(reply, window_.limitCount(), batch_);
    if (!grant) failure = redis::Failure::BadReply;
  }
  if (grant && grant->granted > 0) {
    // sentMs is no later than Redis's clock at the grant, so the deadline errs early. Tokens
    // left from before stay only within the same window (the earlier deadline).
    const int64_t deadline = lease.sentMs + grant->validMs - kDeadlineMarginMs;
    const bool keepOld = lease.tokens > 0 && nowMs < lease.deadlineMs;
    lease.tokens = (keepOld ? lease.tokens : 0) + grant->granted;
    lease.deadlineMs = keepOld ? std::min(lease.deadlineMs, deadline) : deadline;
    lease.granted = grant->decision;
    lease.grantedAtMs = nowMs;
  } else {
    lease.tokens = 0;
    if (grant) memo_.remember(lease.digest, grant->decision, nowMs);
  }

  // Serve in FIFO order from a list of our own: each callback may resume an exchange that ends,
  // issues requests (back into this table) or cancels other waiters.
  WaitList serving;
  serving.takeAll(lease.waiters);
  lease.handingOut = true;
  while (LeaseWaiter* waiter = serving.pop()) {
    Decision decision;
    if (grant && grant->granted == 0) {
      waiter->onLease(&grant->decision, redis::Failure::None);
    } else if (!grant) {
      waiter->onLease(nullptr, failure);
    } else if (lease.tokens > 0) {
      // Served at reply time whatever the deadline: Redis decided for them now.
      --lease.tokens;
      decision = lease.granted;
      decision.remaining = lease.granted.remaining + lease.tokens;
      waiter->onLease(&decision, redis::Failure::None);
    } else {
      // Still first in line for the next refill, before any that came meanwhile.
      WaitList leftover;
      leftover.push(*waiter);
      leftover.takeAll(serving);
      leftover.takeAll(lease.waiters);
      lease.waiters.takeAll(leftover);
    }
  }
  lease.handingOut = false;
  if (lease.waiters.size == 0 || lease.waiting()) return;
  redis::Client* client = dispatcher_.redis();
  const redis::Failure again = client ? refill(*client, lease, nowMs) : redis::Failure::Down;
  if (again == redis::Failure::None) return;
  serving.takeAll(lease.waiters);
  while (LeaseWaiter* waiter = serving.pop()) waiter->onLease(nullptr, again);
}

}  // namespace gw::plugins::rate_limit
