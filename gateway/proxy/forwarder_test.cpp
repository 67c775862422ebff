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
