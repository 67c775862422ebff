#include "gateway/proxy/forwarder.h"

#include <algorithm>
#include <utility>

#include "gateway/core/clock.h"
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
                     core::Recycler<std::string>& heads, Owner& owner, ResponseRelay& response)
    : cluster_(cluster),
      timeouts_(timeouts),
      heads_(heads),
      owner_(owner),
      response_(response),
      head_(heads.take()) {}

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
  bufferedBody_ = body;
  connect();
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
      owner_.onForwardFailed(connectFailure_ ? *connectFailure_
                                             : Error::upstream(ErrorCode::UpstreamConnectFailed,
                                                               "no backend could be reached"));
      return false;
    }
    triedBackends_ |= bitOf(cluster_, *backend);
    backend_ = backend;
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
  guarded([&] { owner_.onResponseParsed(); });
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
  switch (nextAttempt(error, facts_)) {
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
  if (lease_) cluster_.retire(std::move(lease_));
}

}  // namespace gw::proxy
