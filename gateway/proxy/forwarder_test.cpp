#include "gateway/proxy/forwarder.h"

#include <doctest.h>

using namespace gw;
using core::Error;
using core::ErrorCode;
using core::Retry;
using proxy::AttemptFacts;
using proxy::NextAttempt;
using Kind = observability::UpstreamErrorKind;

namespace {

Error failure(ErrorCode code, Retry retry) { return Error::upstream(code, "x", retry); }

}  // namespace

TEST_CASE("forwarder: a connect failure moves to another backend, whatever the method") {
  const Error refused = failure(ErrorCode::UpstreamConnectFailed, Retry::Safe);
  const Error timedOut = failure(ErrorCode::UpstreamConnectTimeout, Retry::Safe);
  for (const bool idempotent : {true, false}) {
    for (const bool body : {true, false}) {
      const AttemptFacts facts{.idempotent = idempotent, .requestHasBody = body};
      CHECK(proxy::nextAttempt(refused, facts) == NextAttempt::AnotherBackend);
      CHECK(proxy::nextAttempt(timedOut, facts) == NextAttempt::AnotherBackend);
    }
  }
}

TEST_CASE("forwarder: a reused connection lost before the response is retried once, fresh, "
          "only for an idempotent request without a body") {
  const Error lost = failure(ErrorCode::UpstreamReset, Retry::IfIdempotent);
  CHECK(proxy::nextAttempt(lost, {.idempotent = true}) == NextAttempt::FreshConnection);
  CHECK(proxy::nextAttempt(lost, {.idempotent = false}) == NextAttempt::Fail);  // POST runs once
  CHECK(proxy::nextAttempt(lost, {.idempotent = true, .requestHasBody = true}) ==
        NextAttempt::Fail);  // the streamed body is gone
  CHECK(proxy::nextAttempt(lost, {.idempotent = true, .retriedReuse = true}) ==
        NextAttempt::Fail);  // one retry only
}

TEST_CASE("forwarder: what the backend may have acted on is never retried") {
  for (const ErrorCode code : {ErrorCode::UpstreamReset, ErrorCode::UpstreamTimeout,
                               ErrorCode::UpstreamProtocol}) {
    CAPTURE(core::wireCode(code));
    CHECK(proxy::nextAttempt(failure(code, Retry::Never), {.idempotent = true}) ==
          NextAttempt::Fail);
  }
}

TEST_CASE("forwarder: each failure has its metrics label and its weight against the backend") {
  auto judge = [](ErrorCode code, bool countReadTimeouts = false, bool overLimits = false) {
    return proxy::judgeFailure(failure(code, Retry::Never), countReadTimeouts, overLimits);
  };
  CHECK(judge(ErrorCode::UpstreamConnectFailed).kind == Kind::Connect);
  CHECK(judge(ErrorCode::UpstreamConnectFailed).countsAgainstBackend);
  // A failed TLS handshake (an unverifiable certificate too) is a connect failure.
  CHECK(judge(ErrorCode::UpstreamTlsError).kind == Kind::Connect);
  CHECK(judge(ErrorCode::UpstreamTlsError).countsAgainstBackend);
  CHECK(judge(ErrorCode::UpstreamConnectTimeout).kind == Kind::Timeout);
  CHECK(judge(ErrorCode::UpstreamConnectTimeout).countsAgainstBackend);
  CHECK(judge(ErrorCode::UpstreamReset).kind == Kind::Reset);
  CHECK(judge(ErrorCode::UpstreamReset).countsAgainstBackend);
  // A client picks the slow path: a read timeout counts only when the upstream says so.
  CHECK(judge(ErrorCode::UpstreamTimeout).kind == Kind::Timeout);
  CHECK_FALSE(judge(ErrorCode::UpstreamTimeout).countsAgainstBackend);
  CHECK(judge(ErrorCode::UpstreamTimeout, true).countsAgainstBackend);
  // A head over the gateway's own limits is no sign of a sick backend.
  CHECK(judge(ErrorCode::UpstreamProtocol).kind == Kind::Protocol);
  CHECK(judge(ErrorCode::UpstreamProtocol).countsAgainstBackend);
  CHECK_FALSE(judge(ErrorCode::UpstreamProtocol, false, true).countsAgainstBackend);
}

TEST_CASE(
    "forwarder: under a retry policy, a reset or a per-try timeout is resent while tries "
    "are left, for a request that can be sent again") {
  config::RetryPolicy policy;
  policy.attempts = 3;
  const Error reset = failure(ErrorCode::UpstreamReset, Retry::Never);
  const Error timedOut = failure(ErrorCode::UpstreamTimeout, Retry::Never);
  const AttemptFacts get{.idempotent = true};
  CHECK(proxy::nextAttempt(reset, get, policy, 1, false) == NextAttempt::Resend);
  CHECK(proxy::nextAttempt(reset, get, policy, 2, false) == NextAttempt::Resend);
  CHECK(proxy::nextAttempt(reset, get, policy, 3, false) == NextAttempt::Fail);  // tries spent
  CHECK(proxy::nextAttempt(timedOut, get, policy, 1, true) == NextAttempt::Resend);
  // The route's own read timeout is not a per-try timeout.
  CHECK(proxy::nextAttempt(timedOut, get, policy, 1, false) == NextAttempt::Fail);
  // Part of the response had arrived: not a refusal of the request.
  CHECK(proxy::nextAttempt(reset, {.idempotent = true, .responseBegun = true}, policy, 1, false) ==
        NextAttempt::Fail);
  // A POST may have been acted on; a streamed body is gone; a buffered one can be resent.
  CHECK(proxy::nextAttempt(reset, {}, policy, 1, false) == NextAttempt::Fail);
  CHECK(proxy::nextAttempt(reset, {.idempotent = true, .requestHasBody = true}, policy, 1, false) ==
        NextAttempt::Fail);
  CHECK(proxy::nextAttempt(reset,
                           {.idempotent = true, .requestHasBody = true, .bodyBuffered = true},
                           policy, 1, false) == NextAttempt::Resend);
  policy.non_idempotent = true;
  CHECK(proxy::nextAttempt(reset, {}, policy, 1, false) == NextAttempt::Resend);
  policy.on_reset = false;
  policy.on_per_try_timeout = false;
  CHECK(proxy::nextAttempt(reset, get, policy, 1, false) == NextAttempt::Fail);
  CHECK(proxy::nextAttempt(timedOut, get, policy, 1, true) == NextAttempt::Fail);
}

TEST_CASE("forwarder: under a retry policy, what is always retried still is, within the tries") {
  config::RetryPolicy policy;
  policy.attempts = 2;
  const Error refused = failure(ErrorCode::UpstreamConnectFailed, Retry::Safe);
  const Error lost = failure(ErrorCode::UpstreamReset, Retry::IfIdempotent);
  CHECK(proxy::nextAttempt(refused, {}, policy, 1, false) == NextAttempt::AnotherBackend);
  CHECK(proxy::nextAttempt(refused, {}, policy, 2, false) == NextAttempt::Fail);
  CHECK(proxy::nextAttempt(lost, {.idempotent = true}, policy, 1, false) ==
        NextAttempt::FreshConnection);
}

TEST_CASE("forwarder: a status is retried when listed, with tries left, for a resendable request") {
  config::RetryPolicy policy;
  policy.statuses = {502, 503};
  const AttemptFacts get{.idempotent = true};
  CHECK(proxy::retriesStatus(policy, 503, get, 1));
  CHECK_FALSE(proxy::retriesStatus(policy, 504, get, 1));
  CHECK_FALSE(proxy::retriesStatus(policy, 503, get, 2));  // attempts: 2 by default
  CHECK_FALSE(proxy::retriesStatus(policy, 503, {}, 1));   // POST
  CHECK_FALSE(proxy::retriesStatus(policy, 503, {.idempotent = true, .requestHasBody = true}, 1));
}
