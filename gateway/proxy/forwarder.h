#pragma once
// One exchange's way to its upstream: it picks a backend, leases a pooled connection or opens
// one, queues the request head (with the backend's Host line when the route asks for it) ahead
// of the body, and decides what a failed attempt means: another backend, one fresh connection,
// or an error for the client. It reports every attempt to the upstream's metrics and passive
// health, at most once per backend per exchange. The response bytes go to the exchange's
// response handler; the Owner hears when they were parsed, when the request went out and when
// nothing more can be tried (as Envoy's UpstreamRequest and RetryState, Pingora's
// fail_to_connect).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/core/error.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/core/out_queue.h"
#include "gateway/core/recycler.h"
#include "gateway/http/parser.h"
#include "gateway/observability/metrics.h"
#include "gateway/proxy/response_relay.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/connection.h"

namespace gw::proxy {

// What the exchange knows of its request when an attempt failed.
struct AttemptFacts {
  bool idempotent = false;      // the method may run twice (RFC 9110 §9.2.2)
  bool requestHasBody = false;  // a streamed body cannot be sent again
  bool retriedReuse = false;    // the one retry after a stale pooled connection is spent
  bool bodyBuffered = false;    // the body is held whole (a plugin buffered it): it can be resent
  bool responseBegun = false;   // a byte of the response arrived on the failed attempt
};

enum class NextAttempt : uint8_t {
  Fail,             // answer the client with the error
  AnotherBackend,   // nothing was sent: the next backend the balancer picks
  FreshConnection,  // a new connection (the same backend may be picked again), never a pooled one
  Resend,           // a route's retry policy: the request again, on another backend if there is one
};

// What to do after `error` ended an attempt. Pure: the table the Forwarder applies.
NextAttempt nextAttempt(const core::Error& error, const AttemptFacts& facts);
// The same under a route's retry policy, after try number `tries` (the first is 1);
// `perTryExpired`: the error is the policy's per-try timeout. The budget is not asked here.
NextAttempt nextAttempt(const core::Error& error, const AttemptFacts& facts,
                        const config::RetryPolicy& policy, uint32_t tries, bool perTryExpired);
// Whether a final response `status` is retried under `policy` after try `tries` (its bytes are
// then dropped before any reaches the client).
bool retriesStatus(const config::RetryPolicy& policy, int status, const AttemptFacts& facts,
                   uint32_t tries);

// Why a retry started, named by observability::kRetryReasonNames.
enum class RetryReason : uint8_t { ConnectFailure, Reset, Status, PerTryTimeout };

// How an attempt's failure counts: its metrics label and whether it holds against the backend's
// passive health (a client picks a slow path, and our own limits are no sign of a sick backend).
struct FailureVerdict {
  observability::UpstreamErrorKind kind = observability::UpstreamErrorKind::Reset;
  bool countsAgainstBackend = true;
};
FailureVerdict judgeFailure(const core::Error& error, bool countReadTimeouts,
                            bool responseOverOurLimits);

class Forwarder final : public upstream::Connection::Listener, private RetryJudge {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    // A read of the response was parsed into the response handler: flush toward the client.
    virtual void onResponseParsed() = 0;
    // The backend closed the connection in order; true when that completed the response.
    virtual bool responseEndsAtClose(upstream::Connection& lease) = 0;
    // Nothing more can be tried: the client gets `error` (or the cut response).
    virtual void onForwardFailed(const core::Error& error) = 0;
    // The upstream took what was queued: a paused client may be read again.
    virtual void onRequestDrained() = 0;
    // The upstream's queue is full: stop reading the client's body.
    virtual void onUpstreamBackpressure() = 0;
    virtual bool requestComplete() const = 0;
    // Why the response handler refused the response head ("" if it did not).
    virtual std::string_view responseRefusal() const = 0;
    virtual std::string_view logRoute() const = 0;
    virtual void recoverFromBug(const char* what) = 0;
  };

  // `policy`: the route's retry policy (null: only what is always retried).
  Forwarder(upstream::Cluster& cluster, const upstream::Timeouts& timeouts,
            core::Recycler<std::string>& heads, Owner& owner, ResponseRelay& response,
            const config::RetryPolicy* policy);
  ~Forwarder() override;
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // The request head toward the upstream, built by the exchange before start().
  std::string& head() { return head_; }
  // Where the Host line goes when it names the backend (npos: the head is complete).
  void setHostSplit(std::size_t split) { hostSplit_ = split; }
  // The request's key for `load_balancing: {policy: hash}` (none: no key, round robin).
  void setHashKey(std::optional<uint64_t> key) { hashKey_ = key; }

  // The first attempt: `body` is a body the exchange buffered whole ("" when it streams).
  // Fails the exchange through the Owner when no backend can be tried.
  void start(const AttemptFacts& facts, std::string_view body);
  // Writes what is queued toward the upstream (head and the body so far).
  void send();
  // The connection the request goes on (null between attempts and after the end).
  upstream::Connection* lease() { return lease_.get(); }

  // The response is complete: the backend is judged by its own status (`upstreamStatus`), the
  // attempt counted, and the connection goes back to the pool when `reusable`.
  void finish(int upstreamStatus, bool reusable);
  // The exchange ends without a complete response: the backend may hold part of the request,
  // so its connection is closed, never pooled.
  void abandon();
  // The backend of the last attempt (null before any) and the time it took, for the log.
  const upstream::Backend* backend() const { return backend_; }
  int64_t upstreamMicros() const { return upstreamUs_; }
  // Tries the request took so far (each backend or connection it was handed to).
  uint32_t tries() const { return tries_; }

  // upstream::Connection::Listener
  void onUpstreamConnected() override;
  void onUpstreamDrained() override;
  void onUpstreamRead() override;
  void onUpstreamClosed() override;
  void onUpstreamFailure(const core::Error& error) override;
  void onUpstreamBug(const char* what) override { owner_.recoverFromBug(what); }

 private:
  template <typename Body>
  void guarded(Body&& body);
  // Leases a connection to the next usable backend and queues the request on it. False when
  // none could be had: the failure went to the owner, and the exchange (this too) may be gone.
  bool connect();
  void failed(const core::Error& error);
  void queueHead(core::OutQueue& out, const upstream::Backend& backend);
  void countFailure(const upstream::Backend& backend, const FailureVerdict& verdict);
  void reportBackendFailure(const upstream::Backend& backend);
  // RetryJudge: a retried status is dropped before the relay queues a byte of it.
  bool retryStatus(int status) override;
  // Counts a retry; under a policy, false when the upstream's budget refuses it.
  bool startRetry(RetryReason reason);
  // The request again from its first byte, after a pause when the policy asks for one.
  void resend();
  void armTimer(core::EventPtr& timer, int64_t ms, event_callback_fn callback);
  static void onTryTimer(evutil_socket_t, short, void* self);
  static void onDeadline(evutil_socket_t, short, void* self);
  // The exchange has its response head (or ends): the per-try and overall deadlines are over,
  // and a retry budget held is given back.
  void endTries() {
    if (policy_) endPolicyTries();
  }
  void endPolicyTries();
  AttemptFacts factsNow() const;
  void logEjection(const upstream::Backend& backend,
                   std::optional<upstream::EjectionReason> reason);

  upstream::Cluster& cluster_;
  const upstream::Timeouts& timeouts_;
  core::Recycler<std::string>& heads_;
  Owner& owner_;
  ResponseRelay& response_;
  std::string head_;
  std::size_t hostSplit_ = std::string::npos;
  // Bytes of the head at the front of the lease's output: what a retry on another backend
  // replaces, keeping the body bytes queued behind it.
  std::size_t queuedHeadBytes_ = 0;
  std::string_view bufferedBody_;
  std::unique_ptr<upstream::Connection> lease_;
  const upstream::Backend* backend_ = nullptr;
  AttemptFacts facts_;
  std::optional<uint64_t> hashKey_;
  uint64_t triedBackends_ = 0;   // bit per backend index, for connect retries
  uint64_t failedBackends_ = 0;  // bit per backend index, each reported to passive health once
  // How the last connect attempt failed (refused, timed out, or its TLS handshake failed), for
  // the client when no backend is left to try; empty when none got that far (every connect
  // refused at once: UPSTREAM_CONNECT_FAILED). Empty until then, so an exchange allocates nothing.
  std::optional<core::Error> connectFailure_;
  std::optional<upstream::Cap> refusedBy_;  // the cap of the last backend passed over for it
  int64_t startUs_ = 0;  // core::monotonicUs() when the current attempt's request was handed over
  int64_t upstreamUs_ = -1;
  const config::RetryPolicy* policy_;
  uint32_t tries_ = 0;
  bool holdsBudget_ = false;  // one of the upstream's retries in flight is this exchange's
  bool perTryExpired_ = false;
  bool backingOff_ = false;  // tryTimer_ is the wait before the next try
  core::EventPtr tryTimer_;  // per-try timeout, or the back-off wait (routes with a policy)
  core::EventPtr deadline_;  // the policy's overall timeout
};

}  // namespace gw::proxy
