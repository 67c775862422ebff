#include "gateway/proxy/forwarder.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "gateway/core/clock.h"
#include "gateway/core/fast_random.h"
#include "gateway/core/guard.h"
#include "gateway/core/log.h"
#include "gateway/proxy/watermarks.h"

namespace gw::proxy {

namespace {

using core::Error;
using core::ErrorCode;
using Kind = observability::UpstreamErrorKind;

uint64_t bitOf(const upstream::Cluster& cluster, const upstream::Backend& backend) {
  return uint64_t(1) << (cluster.indexOf(backend) & 63);
}

// The wait before the try after try `tries`: the policy's back-off doubled per retry up to its
// cap, and jittered into [half, whole] so the clients of a failed backend do not come back in step.
int64_t backoffMs(const config::RetryPolicy& policy, uint32_t tries) {
  const int64_t base = policy.backoff.count();
  if (base == 0) return 0;
  const int64_t whole =
      std::min<int64_t>(base << std::min<uint32_t>(tries - 1, 16), policy.max_backoff.count());
  thread_local core::FastRandom random;
  return whole / 2 + static_cast<int64_t>(random.next() % static_cast<uint64_t>(whole / 2 + 1));
}

}  // namespace

NextAttempt nextAttempt(const Error& error, const AttemptFacts& facts) {
  switch (error.retry) {
    case core::Retry::Safe:
      return NextAttempt::AnotherBackend;
    case core::Retry::IfIdempotent:
      // A pooled connection the backend had closed, likely before it read the request: one
      // retry on a fresh one, only for methods that may run twice (the backend may have acted on
      // the request before closing, which nothing here can rule out) and without a streamed
      // body (it is gone).
      return facts.idempotent && !facts.requestHasBody && !facts.retriedReuse
                 ? NextAttempt::FreshConnection
                 : NextAttempt::Fail;
    case core::Retry::Never:
      break;
  }
  return NextAttempt::Fail;
}

namespace {

// A policy may try again: tries left, and a request that can be sent again as it was.
bool mayResend(const config::RetryPolicy& policy, const AttemptFacts& facts, uint32_t tries) {
  if (tries >= policy.attempts) return false;
  if (facts.requestHasBody && !facts.bodyBuffered) return false;  // a streamed body is gone
  // The backend may have acted on the request: only a method that may run twice, or a route that
  // says its non-idempotent ones may.
  return facts.idempotent || policy.non_idempotent;
}

}  // namespace

NextAttempt nextAttempt(const Error& error, const AttemptFacts& facts,
                        const config::RetryPolicy& policy, uint32_t tries, bool perTryExpired) {
  const NextAttempt always = nextAttempt(error, facts);
  if (always != NextAttempt::Fail) return tries < policy.attempts ? always : NextAttempt::Fail;
  if (!mayResend(policy, facts, tries)) return NextAttempt::Fail;
  if (perTryExpired) return policy.on_per_try_timeout ? NextAttempt::Resend : NextAttempt::Fail;
  // A reset after part of the response arrived is not the backend refusing the request.
  if (error.code == ErrorCode::UpstreamReset && !facts.responseBegun && policy.on_reset) {
    return NextAttempt::Resend;
  }
  return NextAttempt::Fail;
}

bool retriesStatus(const config::RetryPolicy& policy, int status, const AttemptFacts& facts,
                   uint32_t tries) {
  return std::find(policy.statuses.begin(), policy.statuses.end(), status) !=
             policy.statuses.end() &&
         mayResend(policy, facts, tries);
}

FailureVerdict judgeFailure(const Error& error, bool countReadTimeouts,
                            bool responseOverOurLimits) {
  if (error.code == ErrorCode::UpstreamConnectFailed) return {Kind::Connect, true};
  if (error.code == ErrorCode::UpstreamTlsError) return {Kind::Connect, true};
  if (error.code == ErrorCode::UpstreamConnectTimeout) return {Kind::Timeout, true};
  // A client picks the path; one slow path does not prove the backend down.
  if (error.code == ErrorCode::UpstreamTimeout) return {Kind::Timeout, countReadTimeouts};
  // A head over our own limits is no sign of a sick backend.
  if (error.code == ErrorCode::UpstreamProtocol) return {Kind::Protocol, !responseOverOurLimits};
  return {Kind::Reset, true};
}

Forwarder::Forwarder(upstream::Cluster& cluster, const upstream::Timeouts& timeouts,
                     core::Recycler<std::string>& heads, Owner& owner, ResponseRelay& response,
                     const config::RetryPolicy* policy)
    : cluster_(cluster),
      timeouts_(timeouts),
      heads_(heads),
      owner_(owner),
      response_(response),
      head_(heads.take()),
      policy_(policy) {
  if (policy_ && !policy_->statuses.empty()) response_.setRetryJudge(this);
}

Forwarder::~Forwarder() {
  abandon();
  head_.clear();
  heads_.give(std::move(head_));
}

template <typename Body>
void Forwarder::guarded(Body&& body) {
  core::guarded(body, [&](const char* why) { owner_.recoverFromBug(why); });
}

void Forwarder::start(const AttemptFacts& facts, std::string_view body) {
  facts_ = facts;
  facts_.bodyBuffered = !body.empty();
  bufferedBody_ = body;
  if (policy_ && policy_->timeout.count() > 0) {
    armTimer(deadline_, policy_->timeout.count(), &Forwarder::onDeadline);
  }
  connect();
}

void Forwarder::armTimer(core::EventPtr& timer, int64_t ms, event_callback_fn callback) {
  if (!timer) timer.reset(event_new(cluster_.base(), -1, 0, callback, this));
  const timeval wait{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
  event_add(timer.get(), &wait);
}

void Forwarder::onTryTimer(evutil_socket_t, short, void* self) {
  auto& forwarder = *static_cast<Forwarder*>(self);
  forwarder.guarded([&] {
    if (std::exchange(forwarder.backingOff_, false)) {
      if (forwarder.connect()) forwarder.send();
      return;
    }
    if (!forwarder.lease_ || forwarder.response_.started()) return;
    ++forwarder.cluster_.metrics().per_try_timeouts;
    forwarder.perTryExpired_ = true;
    forwarder.failed(Error::upstream(ErrorCode::UpstreamTimeout,
                                     "the upstream did not answer within the per-try timeout"));
  });
}

void Forwarder::onDeadline(evutil_socket_t, short, void* self) {
  auto& forwarder = *static_cast<Forwarder*>(self);
  forwarder.guarded([&] {
    if (forwarder.response_.started()) return;
    forwarder.endTries();
    forwarder.owner_.onForwardFailed(
        Error::upstream(ErrorCode::UpstreamTimeout, "the route's retries timed out"));
  });
}

void Forwarder::endPolicyTries() {
  if (tryTimer_) event_del(tryTimer_.get());
  if (deadline_) event_del(deadline_.get());
  backingOff_ = false;
  if (std::exchange(holdsBudget_, false)) cluster_.load()->retryEnded();
}

AttemptFacts Forwarder::factsNow() const {
  AttemptFacts facts = facts_;
  facts.responseBegun = lease_ && lease_->receivedAny();
  return facts;
}

bool Forwarder::startRetry(RetryReason reason) {
  if (policy_ && !holdsBudget_) {
    upstream::LoadBoard* load = cluster_.load();
    if (load && !load->startRetry()) {
      ++cluster_.metrics().retry_budget_exhausted;
      return false;
    }
    holdsBudget_ = load != nullptr;
  }
  ++cluster_.metrics().retries[static_cast<std::size_t>(reason)];
  return true;
}

bool Forwarder::retryStatus(int status) {
  return retriesStatus(*policy_, status, factsNow(), tries_) && startRetry(RetryReason::Status);
}

void Forwarder::resend() {
  const upstream::Backend& failed = lease_->backend();
  if (tryTimer_) event_del(tryTimer_.get());
  lease_->output().clear();
  cluster_.retire(std::move(lease_));
  // Another backend than the one that failed while there is one; then any, that one included.
  const std::size_t backends = cluster_.backendCount();
  if (std::popcount(triedBackends_) >= static_cast<int>(std::min<std::size_t>(backends, 64))) {
    triedBackends_ = backends > 1 ? bitOf(cluster_, failed) : 0;
  }
  if (const int64_t pause = backoffMs(*policy_, tries_)) {
    backingOff_ = true;
    armTimer(tryTimer_, pause, &Forwarder::onTryTimer);
    return;
  }
  if (connect()) send();
}

bool Forwarder::connect() {
  // What an earlier attempt queued (head, body so far) moves to the next connection untouched.
  core::OutQueue queued;
  bool carryOver = false;
  if (lease_) {
    std::swap(queued, lease_->output());
    carryOver = true;
    cluster_.retire(std::move(lease_));
    if (queued.sentTotal() != 0) {
      // Part of the request is gone with that connection: a retry could not resend it exactly.
      owner_.onForwardFailed(
          Error::upstream(ErrorCode::UpstreamReset, "upstream failed mid-request"));
      return false;
    }
  }
  if (!cluster_.anyUsable()) {
    owner_.onForwardFailed(Error::upstream(ErrorCode::UpstreamUnavailable, "no healthy backend"));
    return false;
  }
  while (true) {
    upstream::Backend* backend = cluster_.pick(triedBackends_, hashKey_);
    if (!backend) {
      if (connectFailure_ && connectFailure_->code == ErrorCode::UpstreamOverloaded) {
        ++cluster_.metrics().overloaded[static_cast<std::size_t>(*refusedBy_)];
      }
      owner_.onForwardFailed(connectFailure_ ? *connectFailure_
                                             : Error::upstream(ErrorCode::UpstreamConnectFailed,
                                                               "no backend could be reached"));
      return false;
    }
    triedBackends_ |= bitOf(cluster_, *backend);
    backend_ = backend;
    // A backend at its cap is passed over for another; the request is refused only when every
    // backend left is (or the upstream as a whole is).
    if (const auto cap = cluster_.overCap(*backend, facts_.retriedReuse)) {
      refusedBy_ = cap;
      connectFailure_ = Error::upstream(ErrorCode::UpstreamOverloaded,
                                        "the upstream is at its cap of concurrent " +
                                            std::string(observability::kCapNames[size_t(*cap)]));
      continue;
    }
    // After a stale pooled connection, the retry must not draw another pooled one.
    std::unique_ptr<upstream::Connection> lease =
        facts_.retriedReuse ? nullptr : cluster_.takeIdle(*backend);
    const bool fresh = !lease;
    if (fresh) {
      int err = 0;
      lease = cluster_.connect(*backend, err);
      if (!lease) {
        countFailure(*backend, {Kind::Connect, true});
        cluster_.markDown(*backend);
        continue;
      }
    }
    lease->lease(*this, response_, timeouts_);
    response_.attach(*lease);
    core::OutQueue& out = lease->output();
    if (carryOver && hostSplit_ == std::string::npos) {
      std::swap(out, queued);  // the head names no backend: it all goes on as it is
    } else {
      const std::size_t previousHeadBytes = queuedHeadBytes_;
      queueHead(out, *backend);
      if (carryOver) {
        // The previous backend's Host line is replaced; the body bytes behind it follow.
        queued.discardFront(previousHeadBytes);
        out.appendFrom(queued);
      } else if (!bufferedBody_.empty()) {
        out.borrow(bufferedBody_.data(), bufferedBody_.size());
      }
    }
    lease_ = std::move(lease);
    ++tries_;
    if (policy_ && policy_->per_try_timeout.count() > 0) {
      armTimer(tryTimer_, policy_->per_try_timeout.count(), &Forwarder::onTryTimer);
    }
    startUs_ = core::monotonicUs();
    // A pooled connection already watches reads (idle timeout until the request is out); send()
    // writes the head together with whatever body is already here.
    if (fresh) lease_->startConnect();
    return true;
  }
}

void Forwarder::queueHead(core::OutQueue& out, const upstream::Backend& backend) {
  const uint64_t before = out.queuedTotal();
  if (hostSplit_ == std::string::npos) {
    out.borrow(head_.data(), head_.size());
  } else {
    out.borrow(head_.data(), hostSplit_);
    out.append("Host: ");
    out.append(backend.authority);
    out.append("\r\n");
    out.borrow(head_.data() + hostSplit_, head_.size() - hostSplit_);
  }
  queuedHeadBytes_ = static_cast<std::size_t>(out.queuedTotal() - before);
}

void Forwarder::send() {
  if (!lease_) return;
  upstream::Connection& up = *lease_;
  if (!up.connecting()) {
    const auto status = up.flush();
    if (status == core::OutQueue::WriteStatus::Failed) {
      failed(up.closedError());
      return;
    }
    if (status == core::OutQueue::WriteStatus::Drained && owner_.requestComplete()) {
      up.watchReads(timeouts_.read);
    }
  }
  // Body bytes borrowed from the client's input are copied before that input moves on.
  up.output().retainBorrowed();
  if (up.output().pending() > kHighWatermark) owner_.onUpstreamBackpressure();
}

void Forwarder::onUpstreamConnected() {
  guarded([&] {
    cluster_.markUp(lease_->backend());
    cluster_.connected(*lease_);
    lease_->watchReads(nullptr);
    send();
  });
}

void Forwarder::onUpstreamDrained() {
  guarded([&] {
    if (owner_.requestComplete()) {
      lease_->watchReads(timeouts_.read);
    } else {
      owner_.onRequestDrained();
    }
  });
}

void Forwarder::onUpstreamRead() {
  guarded([&] {
    if (response_.retryRequested()) {
      // The retried answer counts as the backend's (its passive health sees a 5xx).
      const upstream::Backend& backend = lease_->backend();
      ++cluster_.metrics().backends[cluster_.indexOf(backend)].requests;
      if (cluster_.config().passive_check.count_5xx) reportBackendFailure(backend);
      connectFailure_ = Error::upstream(ErrorCode::UpstreamUnavailable,
                                        "no backend left to retry the request on");
      resend();
      return;
    }
    if (policy_ && response_.started()) endTries();
    owner_.onResponseParsed();
  });
}

void Forwarder::onUpstreamClosed() {
  guarded([&] {
    if (owner_.responseEndsAtClose(*lease_)) {
      owner_.onResponseParsed();
    } else {
      failed(lease_->closedError());
    }
  });
}

void Forwarder::onUpstreamFailure(const Error& error) {
  guarded([&] { failed(error); });
}

void Forwarder::failed(const Error& error) {
  upstream::Connection& up = *lease_;
  const bool protocol = error.code == ErrorCode::UpstreamProtocol;
  if (protocol) {
    const std::string_view ours = owner_.responseRefusal();
    core::log::warn("invalid response from upstream",
                    {{"route", owner_.logRoute()},
                     {"reason", ours.empty() ? up.refusal() : std::string(ours)}});
  }
  countFailure(up.backend(),
               judgeFailure(error, cluster_.config().passive_check.count_read_timeouts,
                            protocol && up.parser().overLimit()));
  const bool perTry = std::exchange(perTryExpired_, false);
  const NextAttempt next = policy_ ? nextAttempt(error, factsNow(), *policy_, tries_, perTry)
                                   : nextAttempt(error, facts_);
  const RetryReason reason = next == NextAttempt::AnotherBackend ? RetryReason::ConnectFailure
                             : perTry                            ? RetryReason::PerTryTimeout
                                                                 : RetryReason::Reset;
  if (next != NextAttempt::Fail && !startRetry(reason)) {
    owner_.onForwardFailed(error);
    return;
  }
  switch (next) {
    case NextAttempt::Resend:
      connectFailure_ = Error::upstream(error.code, error.message);
      resend();
      return;
    case NextAttempt::AnotherBackend:
      cluster_.markDown(up.backend());
      connectFailure_ = Error::upstream(error.code, error.message);
      // Nothing was sent: the queued request moves to the next backend.
      if (connect()) send();
      return;
    case NextAttempt::FreshConnection:
      facts_.retriedReuse = true;
      triedBackends_ &= ~bitOf(cluster_, up.backend());
      lease_->output().clear();
      cluster_.retire(std::move(lease_));
      if (connect()) send();
      return;
    case NextAttempt::Fail:
      owner_.onForwardFailed(error);
      return;
  }
}

void Forwarder::countFailure(const upstream::Backend& backend, const FailureVerdict& verdict) {
  backend_ = &backend;
  cluster_.metrics().countError(verdict.kind);
  ++cluster_.metrics().backends[cluster_.indexOf(backend)].errors;
  if (verdict.countsAgainstBackend) reportBackendFailure(backend);
}

void Forwarder::reportBackendFailure(const upstream::Backend& backend) {
  // A retry on the same backend belongs to the same exchange: one failure, not two.
  const uint64_t bit = bitOf(cluster_, backend);
  if (failedBackends_ & bit) return;
  failedBackends_ |= bit;
  logEjection(backend, cluster_.reportFailure(backend));
}

void Forwarder::logEjection(const upstream::Backend& backend,
                            std::optional<upstream::EjectionReason> reason) {
  if (!reason) return;
  core::log::warn("backend ejected", {{"upstream", cluster_.config().name},
                                      {"backend", backend.authority},
                                      {"reason", upstream::reasonName(*reason)}});
}

void Forwarder::finish(int upstreamStatus, bool reusable) {
  endTries();
  const upstream::Backend& backend = lease_->backend();
  backend_ = &backend;
  upstreamUs_ = std::max<int64_t>(core::monotonicUs() - startUs_, 0);
  cluster_.metrics().duration.observe(static_cast<uint64_t>(upstreamUs_));
  ++cluster_.metrics().backends[cluster_.indexOf(backend)].requests;
  // The backend is judged by what it answered, not by what a plugin sent instead (a cache's
  // stale copy replacing a 503).
  // A 5xx after a failed attempt on the same backend is the same exchange: one failure.
  const uint64_t bit = bitOf(cluster_, backend);
  if (upstreamStatus < 500 || !(failedBackends_ & bit)) {
    if (upstreamStatus >= 500) failedBackends_ |= bit;
    logEjection(backend, cluster_.reportResponse(backend, upstreamStatus));
  }
  if (reusable && lease_->output().empty() && lease_->clean()) {
    lease_->parser().resume();
    cluster_.release(std::move(lease_));
  } else {
    cluster_.retire(std::move(lease_));
  }
}

void Forwarder::abandon() {
  endTries();
  if (lease_) cluster_.retire(std::move(lease_));
}

}  // namespace gw::proxy
