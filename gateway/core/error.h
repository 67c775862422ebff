#pragma once
// Typed operational errors. An Error says what went wrong (code) and, for a failed upstream
// attempt, whether sending the request again is safe (retry). proxy/local_reply is the one place
// an Error becomes an HTTP status and a JSON body; nothing else formats error responses.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace gw::core {

// What went wrong, as the client is told: the HTTP status and the machine code on the wire. The
// core's codes are the static members below; a plugin defines its own codes the same way, as
// constants in its folder (e.g. `inline constexpr core::ErrorCode kRateLimitExceeded{429,
// "RATE_LIMIT_EXCEEDED"}`), so the core names none of them.
struct ErrorCode {
  uint16_t status = 500;
  std::string_view wire = "INTERNAL_ERROR";
  friend constexpr bool operator==(const ErrorCode&, const ErrorCode&) = default;

// One line per core code: name, HTTP status, machine code on the wire.
#define GW_ERROR_CODES(X)                                    \
  X(BadRequest, 400, "BAD_REQUEST")                          \
  X(MissingHost, 400, "MISSING_HOST")                        \
  X(InvalidPath, 400, "INVALID_PATH")                        \
  X(RequestTimeout, 408, "REQUEST_TIMEOUT")                  \
  X(PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE")               \
  X(UriTooLong, 414, "URI_TOO_LONG")                         \
  X(HeadersTooLarge, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE") \
  X(MethodNotAllowed, 405, "METHOD_NOT_ALLOWED")             \
  X(RouteNotFound, 404, "ROUTE_NOT_FOUND")                   \
  X(ExpectationFailed, 417, "EXPECTATION_FAILED")            \
  X(NotImplemented, 501, "NOT_IMPLEMENTED")                  \
  X(UpstreamConnectFailed, 502, "UPSTREAM_CONNECT_FAILED")   \
  X(UpstreamTlsError, 502, "UPSTREAM_TLS_ERROR")             \
  X(UpstreamUnavailable, 503, "UPSTREAM_UNAVAILABLE")        \
  X(UpstreamOverloaded, 503, "UPSTREAM_OVERLOADED")          \
  X(RouteOverloaded, 503, "ROUTE_OVERLOADED")                \
  X(UpstreamConnectTimeout, 504, "UPSTREAM_CONNECT_TIMEOUT") \
  X(UpstreamTimeout, 504, "UPSTREAM_TIMEOUT")                \
  X(UpstreamReset, 502, "UPSTREAM_RESET")                    \
  X(UpstreamProtocol, 502, "UPSTREAM_PROTOCOL_ERROR")        \
  X(ServiceUnavailable, 503, "SERVICE_UNAVAILABLE")          \
  X(Internal, 500, "INTERNAL_ERROR")

#define GW_ERROR_DECLARE(name, status, wire) static const ErrorCode name;
  GW_ERROR_CODES(GW_ERROR_DECLARE)
#undef GW_ERROR_DECLARE
};

#define GW_ERROR_DEFINE(name, status, wire) \
  inline constexpr ErrorCode ErrorCode::name{status, wire};
GW_ERROR_CODES(GW_ERROR_DEFINE)
#undef GW_ERROR_DEFINE

// Whether a failed upstream attempt may be repeated on another connection, as far as the
// request's delivery goes (the Forwarder adds the method, the body and its retry budget).
enum class Retry : uint8_t {
  Never,         // the backend may have acted on the request, or answered part of it
  Safe,          // nothing reached a backend (the connection was never established)
  IfIdempotent,  // a reused connection closed before any response byte: the backend may or may
                 // not have read the request (RFC 9110 §9.2.2 allows a repeat of idempotent ones)
};

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string message;
  Retry retry = Retry::Never;

  static Error downstream(ErrorCode code, std::string message) {
    return {code, std::move(message)};
  }
  static Error upstream(ErrorCode code, std::string message, Retry retry = Retry::Never) {
    return {code, std::move(message), retry};
  }
  static Error internal(std::string message) { return {ErrorCode::Internal, std::move(message)}; }
};

inline int httpStatus(const ErrorCode& code) { return code.status; }
inline std::string_view wireCode(const ErrorCode& code) { return code.wire; }

// A value or an Error; the data plane returns these instead of throwing.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}      // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace gw::core
