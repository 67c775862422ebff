#include "plugins/rate_limit/lease_table.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>
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

LeaseTable::LeaseTable(plugin::Dispatcher& dispatcher, const RedisWindow& window, Grants grants,
                       int64_t batch, int64_t maxBatch, std::size_t capacity, RefusalMemo& memo)
    : dispatcher_(dispatcher),
      window_(window),
      grants_(grants),
      batch_(batch),
      maxBatch_(std::max(batch, maxBatch)),
      capacity_(std::max<std::size_t>(1, capacity)),
      memo_(memo) {}

LeaseTable::Lease& LeaseTable::find(const redis::KeySpace& keySpace, const Digest& digest,
                                    int64_t nowMs) {
  if (const auto found = index_.find(digest); found != index_.end()) {
    lru_.splice(lru_.begin(), lru_, found->second);
    return lru_.front();
  }
  if (lru_.size() >= capacity_) {
    // A busy key has a call in flight, so the Redis connection's max_pending bounds how many
    // there are: with none idle among the oldest, the table outgrows its capacity by those.
    auto victim = lru_.end();
    for (std::size_t scanned = 0; scanned < kEvictionScan && victim != lru_.begin(); ++scanned) {
      --victim;
      if (!victim->busy()) {
        index_.erase(victim->digest);
        lru_.erase(victim);
        break;
      }
    }
  }
  Lease& lease = lru_.emplace_front();
  lease.table = this;
  lease.digest = digest;
  window_.formatKey(keySpace, digest, lease.key);
  lease.deadlineMs = nowMs;
  lease.leaseSize = batch_;
  index_.emplace(digest, lru_.begin());
  return lease;
}

bool LeaseTable::takeToken(Lease& lease, int64_t nowMs, Decision& decision) {
  if (lease.tokens <= 0) return false;
  if (nowMs >= lease.deadlineMs) {
    // A lease that outlived its window unused was too big for the key's rate.
    lease.leaseSize = std::max(batch_, lease.leaseSize / 2);
    lease.tokens = 0;
    return false;
  }
  --lease.tokens;
  // Approximate: what Redis had left at the grant plus the tokens still held here.
  const int64_t aged = std::max<int64_t>(0, nowMs - lease.grantedAtMs);
  decision = lease.granted;
  decision.remaining = lease.granted.remaining + lease.tokens;
  decision.resetMs = std::max<int64_t>(0, lease.granted.resetMs - aged);
  return true;
}

LeaseTable::Result LeaseTable::take(redis::Client& client, const Digest& digest, int64_t nowMs,
                                    LeaseWaiter& waiter) {
  Result result;
  const redis::KeySpace& keySpace = client.keySpace();
  // A reload that kept the connection but changed key_prefix: the keys held are renamed (a
  // changed key secret changes the digests, so those keys are new ones anyway).
  if (keySpace.prefix != keyPrefix_) {
    keyPrefix_ = keySpace.prefix;
    for (Lease& held : lru_) window_.formatKey(keySpace, held.digest, held.key);
  }
  Lease& lease = find(keySpace, digest, nowMs);
  if (takeToken(lease, nowMs, result.decision)) {
    result.outcome = Outcome::Admitted;
    // Ahead of need: a failure here costs nothing, the next request that finds none asks again.
    if (grants_ == Grants::Lease && !lease.waiting() && lease.tokens <= lease.leaseSize / 2) {
      send(client, lease, nowMs, /*early=*/true);
    }
    return result;
  }
  if (lease.waiters.size >= kMaxWaiters) {
    result.failure = redis::Failure::Overloaded;
    return result;
  }
  if (const redis::State state = client.state();
      state != redis::State::Closed && state != redis::State::HalfOpen) {
    result.failure = redis::Failure::Down;
    return result;
  }
  lease.waiters.push(waiter);
  result.outcome = Outcome::Waiting;
  if (grants_ == Grants::Exact) {
    sendAtTurnEnd(lease);
    return result;
  }
  if (!lease.waiting()) {
    result.failure = send(client, lease, nowMs, /*early=*/false);
    if (result.failure != redis::Failure::None) {
      waiter.leave();
      result.outcome = Outcome::Failed;
    }
  }
  return result;
}

void LeaseTable::sendAtTurnEnd(Lease& lease) {
  if (lease.waiting() || lease.due) return;  // the reply in flight, or the turn's end, sends
  lease.due = true;
  due_.push_back(&lease);
  if (!turnEnd_) turnEnd_ = dispatcher_.createTimer([this] { sendDue(); });
  if (!turnEnd_->armed()) turnEnd_->arm(0);
}

void LeaseTable::sendDue() {
  const int64_t nowMs = dispatcher_.nowMs();
  redis::Client* client = dispatcher_.redis();
  // Failing waiters resumes exchanges, whose next requests may make keys due again: those wait
  // for the next turn's end, in a list of their own.
  std::vector<Lease*> due;
  due.swap(due_);
  for (Lease* lease : due) {
    lease->due = false;
    if (lease->waiters.size == 0) continue;  // all left
    const redis::Failure failure =
        client ? send(*client, *lease, nowMs, /*early=*/false) : redis::Failure::Down;
    if (failure != redis::Failure::None) failWaiters(*lease, failure);
  }
  due.clear();
  if (due_.empty()) due_.swap(due);  // keeps the capacity
}

void LeaseTable::failWaiters(Lease& lease, redis::Failure failure) {
  WaitList failing;
  failing.takeAll(lease.waiters);
  while (LeaseWaiter* waiter = failing.pop()) waiter->onLease(nullptr, failure);
}

redis::Failure LeaseTable::send(redis::Client& client, Lease& lease, int64_t nowMs, bool early) {
  const int64_t want =
      grants_ == Grants::Exact ? static_cast<int64_t>(lease.waiters.size) : lease.leaseSize;
  char wantText[24];
  const auto [end, ec] = std::to_chars(std::begin(wantText), std::end(wantText), want);
  std::array<std::string_view, RedisWindow::kMaxArgs> args;
  const std::size_t count =
      window_.args({wantText, end}, grants_ == Grants::Exact ? Share::All : Share::Half, "", args);
  const std::string_view keys[] = {lease.key};
  const redis::Failure failure =
      client.eval(windowScript(), keys, {args.data(), count}, static_cast<redis::Waiter&>(lease));
  if (failure == redis::Failure::None) {
    lease.sentMs = nowMs;
    lease.asked = want;
    lease.early = early;
    ++calls_;
  }
  return failure;
}

void LeaseTable::received(Lease& lease, const redisReply* reply, redis::Failure failure) {
  const int64_t nowMs = dispatcher_.nowMs();
  std::optional<Grant> grant;
  if (failure == redis::Failure::None) {
    grant = decodeGrant(reply, window_.limitCount(), lease.asked);
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
    // Requests ran out of tokens before an early call came back: the key outpaces its leases.
    if (lease.early && lease.waiters.size > 0) {
      lease.leaseSize = std::min(maxBatch_, 2 * lease.leaseSize);
    }
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
      // Still first in line for the next call, before any that came meanwhile.
      WaitList leftover;
      leftover.push(*waiter);
      leftover.takeAll(serving);
      leftover.takeAll(lease.waiters);
      lease.waiters.takeAll(leftover);
    }
  }
  lease.handingOut = false;
  if (lease.waiters.size == 0 || lease.waiting()) return;
  if (grants_ == Grants::Exact) {
    sendAtTurnEnd(lease);
    return;
  }
  redis::Client* client = dispatcher_.redis();
  const redis::Failure again =
      client ? send(*client, lease, nowMs, /*early=*/false) : redis::Failure::Down;
  if (again != redis::Failure::None) failWaiters(lease, again);
}

}  // namespace gw::plugins::rate_limit
