#include "gateway/proxy/local_reply.h"

#include <doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace {
std::string drain(gw::core::OutQueue& out) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  REQUIRE(out.flush(fds[0]) == gw::core::OutQueue::WriteStatus::Drained);
  ::close(fds[0]);
  std::string bytes;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[1], buf, sizeof buf)) > 0) bytes.append(buf, static_cast<size_t>(n));
  ::close(fds[1]);
  return bytes;
}
}  // namespace

TEST_CASE("local reply renders status, JSON body and request id") {
  gw::core::OutQueue out;
  auto error = gw::core::Error::upstream(gw::core::ErrorCode::UpstreamConnectFailed, "no \"backend\"");
  gw::proxy::appendLocalReply(out, error, "abc123", {.closeConnection = true});
  std::string bytes = drain(out);
  std::string body =
      "{\"error\":{\"code\":\"UPSTREAM_CONNECT_FAILED\",\"message\":\"no \\\"backend\\\"\","
      "\"request_id\":\"abc123\"}}\n";
  CHECK(bytes.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(bytes.find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(bytes.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
  CHECK(bytes.find("Connection: close\r\n\r\n") != std::string::npos);
  CHECK(bytes.ends_with("\r\n\r\n" + body));
}

TEST_CASE("ROUTE_OVERLOADED comes with Retry-After, other errors without") {
  using gw::core::Error;
  using gw::core::ErrorCode;
  const auto overloaded =
      gw::proxy::makeErrorResponse(Error::downstream(ErrorCode::RouteOverloaded, "full"), "id");
  CHECK(overloaded.status == 503);
  CHECK(overloaded.headers.get("Retry-After") == "1");
  const auto upstream =
      gw::proxy::makeErrorResponse(Error::upstream(ErrorCode::UpstreamOverloaded, "cap"), "id");
  CHECK_FALSE(upstream.headers.get("Retry-After"));
}

TEST_CASE("local reply to HEAD has the head only") {
  gw::core::OutQueue out;
  gw::proxy::appendLocalReply(out, gw::core::Error::downstream(gw::core::ErrorCode::RouteNotFound, "x"),
                              "id", {.headRequest = true});
  std::string bytes = drain(out);
  CHECK(bytes.starts_with("HTTP/1.1 404 Not Found\r\n"));
  CHECK(bytes.ends_with("\r\n\r\n"));
}

TEST_CASE("a local reply tells an HTTP/1.0 keep-alive client its connection stays open") {
  using gw::core::Error;
  using gw::core::ErrorCode;
  const Error error = Error::downstream(ErrorCode::RouteNotFound, "x");
  gw::core::OutQueue kept;
  gw::proxy::appendLocalReply(kept, error, "id", {.http10KeepAlive = true});
  CHECK(drain(kept).find("\r\nConnection: keep-alive\r\n\r\n") != std::string::npos);
  gw::core::OutQueue closing;  // closing wins: the connection goes whatever was asked
  gw::proxy::appendLocalReply(closing, error, "id", {.closeConnection = true, .http10KeepAlive = true});
  const std::string bytes = drain(closing);
  CHECK(bytes.find("Connection: close\r\n") != std::string::npos);
  CHECK(bytes.find("keep-alive") == std::string::npos);
}

TEST_CASE("a local 204 or 304 has no body and no framing or type fields") {
  for (int status : {204, 304}) {
    INFO(status);
    const gw::proxy::LocalResponse response = gw::proxy::makeResponse(status, "ignored", "text/plain", "id");
    CHECK(response.body.empty());
    CHECK_FALSE(response.headers.get("Content-Length"));
    CHECK_FALSE(response.headers.get("Content-Type"));
    CHECK(response.headers.get("X-Request-Id") == "id");
  }
  CHECK(gw::proxy::makeResponse(200, "", "text/plain", "").headers.get("Content-Length") == "0");
}

TEST_CASE("a plugin's own response keeps its fields; framing is ours") {
  const std::pair<std::string_view, std::string_view> fields[] = {
      {"Content-Type", "text/plain"}, {"Content-Length", "999"}, {"Transfer-Encoding", "chunked"},
      {"Connection", "close"},        {"ETag", "\"v1\""},        {"Age", "3"}};
  gw::proxy::LocalResponse response = gw::proxy::makeResponseWith(200, fields, "hello");
  CHECK(response.status == 200);
  CHECK(response.body == "hello");
  CHECK(response.headers.get("Content-Type") == "text/plain");
  CHECK(response.headers.get("Content-Length") == "5");
  CHECK_FALSE(response.headers.get("Transfer-Encoding"));
  CHECK_FALSE(response.headers.get("Connection"));
  CHECK(response.headers.get("ETag") == "\"v1\"");
  CHECK(response.headers.get("Age") == "3");
  gw::proxy::LocalResponse notModified = gw::proxy::makeResponseWith(304, fields, "hello");
  CHECK(notModified.body.empty());
  CHECK_FALSE(notModified.headers.get("Content-Length"));
  CHECK(notModified.headers.get("ETag") == "\"v1\"");
}
