#include "gateway/core/error.h"

#include <doctest.h>

#include <set>
#include <string>
#include <string_view>

namespace gw::core {
namespace {

struct Expected {
  ErrorCode code;
  int status;
  std::string_view wire;
};

// Written out by hand (not generated from GW_ERROR_CODES) so a changed line in the table shows up.
constexpr Expected kTable[] = {
    {ErrorCode::BadRequest, 400, "BAD_REQUEST"},
    {ErrorCode::MissingHost, 400, "MISSING_HOST"},
    {ErrorCode::InvalidPath, 400, "INVALID_PATH"},
    {ErrorCode::RequestTimeout, 408, "REQUEST_TIMEOUT"},
    {ErrorCode::PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"},
    {ErrorCode::UriTooLong, 414, "URI_TOO_LONG"},
    {ErrorCode::HeadersTooLarge, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE"},
    {ErrorCode::MethodNotAllowed, 405, "METHOD_NOT_ALLOWED"},
    {ErrorCode::RouteNotFound, 404, "ROUTE_NOT_FOUND"},
    {ErrorCode::ExpectationFailed, 417, "EXPECTATION_FAILED"},
    {ErrorCode::NotImplemented, 501, "NOT_IMPLEMENTED"},
    {ErrorCode::UpstreamConnectFailed, 502, "UPSTREAM_CONNECT_FAILED"},
    {ErrorCode::UpstreamTlsError, 502, "UPSTREAM_TLS_ERROR"},
    {ErrorCode::UpstreamUnavailable, 503, "UPSTREAM_UNAVAILABLE"},
    {ErrorCode::UpstreamOverloaded, 503, "UPSTREAM_OVERLOADED"},
    {ErrorCode::RouteOverloaded, 503, "ROUTE_OVERLOADED"},
    {ErrorCode::UpstreamConnectTimeout, 504, "UPSTREAM_CONNECT_TIMEOUT"},
    {ErrorCode::UpstreamTimeout, 504, "UPSTREAM_TIMEOUT"},
    {ErrorCode::UpstreamReset, 502, "UPSTREAM_RESET"},
    {ErrorCode::UpstreamProtocol, 502, "UPSTREAM_PROTOCOL_ERROR"},
    {ErrorCode::ServiceUnavailable, 503, "SERVICE_UNAVAILABLE"},
    {ErrorCode::Internal, 500, "INTERNAL_ERROR"},
};

TEST_CASE("every error code maps to its HTTP status and wire code") {
  for (const Expected& e : kTable) {
    CAPTURE(e.wire);
    CHECK(httpStatus(e.code) == e.status);
    CHECK(wireCode(e.code) == e.wire);
  }
}

TEST_CASE("the table above covers every core code, each with its own wire code") {
  std::size_t count = 0;
#define GW_ERROR_COUNT(name, status, wire) ++count;
  GW_ERROR_CODES(GW_ERROR_COUNT)
#undef GW_ERROR_COUNT
  CHECK(count == std::size(kTable));
  std::set<std::string_view> distinct;
  for (const Expected& e : kTable) distinct.insert(e.code.wire);
  CHECK(distinct.size() == std::size(kTable));
}

TEST_CASE("a code defined outside the core compares and renders like a core one") {
  constexpr ErrorCode kTeapot{418, "TEAPOT"};
  CHECK(httpStatus(kTeapot) == 418);
  CHECK(wireCode(kTeapot) == "TEAPOT");
  CHECK(kTeapot == ErrorCode{418, "TEAPOT"});
  CHECK_FALSE(kTeapot == ErrorCode{418, "OTHER"});
  CHECK_FALSE(kTeapot == ErrorCode::BadRequest);
  const Error error = Error::downstream(kTeapot, "short and stout");
  CHECK(error.code == kTeapot);
}

TEST_CASE("Error factories set the code and whether a retry is safe") {
  Error d = Error::downstream(ErrorCode::BadRequest, "bad");
  CHECK(d.code == ErrorCode::BadRequest);
  CHECK(d.retry == Retry::Never);
  CHECK(d.message == "bad");

  Error u = Error::upstream(ErrorCode::UpstreamReset, "reset", Retry::IfIdempotent);
  CHECK(u.code == ErrorCode::UpstreamReset);
  CHECK(u.retry == Retry::IfIdempotent);
  CHECK(u.message == "reset");
  CHECK(Error::upstream(ErrorCode::UpstreamTimeout, "t").retry == Retry::Never);

  Error i = Error::internal("boom");
  CHECK(i.code == ErrorCode::Internal);
  CHECK(i.retry == Retry::Never);
  CHECK(i.message == "boom");
  CHECK(httpStatus(i.code) == 500);
}

TEST_CASE("Result holds either a value or an error") {
  Result<std::string> good(std::string("value"));
  CHECK(good.ok());
  CHECK(static_cast<bool>(good));
  CHECK(good.value() == "value");
  CHECK(*good == "value");
  CHECK(good->size() == 5);
  good->append("!");
  CHECK(good.value() == "value!");

  Result<std::string> bad(Error::downstream(ErrorCode::UriTooLong, "too long"));
  CHECK_FALSE(bad.ok());
  CHECK_FALSE(static_cast<bool>(bad));
  CHECK(bad.error().code == ErrorCode::UriTooLong);
  CHECK(bad.error().message == "too long");

  const Result<int> constGood(42);
  CHECK(*constGood == 42);
  CHECK(constGood.value() == 42);
}

TEST_CASE("Result converts implicitly from a value and from an Error in return statements") {
  auto parse = [](int x) -> Result<int> {
    if (x < 0) return Error::downstream(ErrorCode::BadRequest, "negative");
    return x * 2;
  };
  CHECK(parse(21).value() == 42);
  CHECK(parse(-1).error().code == ErrorCode::BadRequest);
}

}  // namespace
}  // namespace gw::core
