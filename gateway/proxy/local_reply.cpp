#include "gateway/proxy/local_reply.h"

#include <algorithm>

#include "gateway/core/json.h"
#include "gateway/http/headers.h"
#include "gateway/http/status.h"

namespace gw::proxy {

std::string errorBody(const core::Error& error, std::string_view requestId) {
  std::string body = "{\"error\":{\"code\":\"";
  body += core::wireCode(error.code);
  body += "\",\"message\":\"";
  core::appendJsonEscaped(body, error.message);
  body += "\",\"request_id\":\"";
  core::appendJsonEscaped(body, requestId);
  body += "\"}}\n";
  return body;
}

LocalResponse makeResponse(int status, std::string body, std::string_view contentType,
                           std::string_view requestId) {
  LocalResponse response;
  response.status = status;
  // 1xx, 204 and 304 carry no content, and 1xx/204 must not even announce a length
  // (RFC 9110 6.4.1, 8.6): no body, no framing or type fields.
  const bool bodyless = status < 200 || status == 204 || status == 304;
  if (!bodyless) {
    response.headers.add("Content-Type", contentType);
    response.headers.add("Content-Length", std::to_string(body.size()));
    response.body = std::move(body);
  }
  response.headers.add("Cache-Control", "no-store");
  if (!requestId.empty()) response.headers.add("X-Request-Id", requestId);
  return response;
}

LocalResponse makeResponseWith(int status,
                               std::span<const std::pair<std::string_view, std::string_view>> fields,
                               std::string body) {
  LocalResponse response;
  response.status = status;
  for (const auto& [name, value] : fields) {
    const http::FieldName kind = http::classifyField(name);
    if (kind == http::FieldName::ContentLength || http::isHopByHop(kind)) continue;
    response.headers.add(name, value);
  }
  const bool bodyless = status < 200 || status == 204 || status == 304;
  if (!bodyless) {
    response.headers.add("Content-Length", std::to_string(body.size()));
    response.body = std::move(body);
  }
  return response;
}

LocalResponse makeErrorResponse(const core::Error& error, std::string_view requestId) {
  LocalResponse response = makeResponse(core::httpStatus(error.code), errorBody(error, requestId),
                                        "application/json", requestId);
  // A route's queue was full or too slow: a moment later a slot is likely free (RFC 9110 §10.2.3).
  if (error.code == core::ErrorCode::RouteOverloaded) response.headers.add("Retry-After", "1");
  return response;
}

void appendResponse(core::OutQueue& out, const LocalResponse& response,
                    const LocalReplyOptions& options) {
  // The head is written straight into the output queue: one reservation, no string in between.
  const std::string_view reason = http::reasonPhrase(response.status);
  const std::string_view connection = options.closeConnection    ? "Connection: close\r\n"
                                      : options.http10KeepAlive ? "Connection: keep-alive\r\n"
                                                                : "";
  const int status = std::clamp(response.status, 100, 999);
  char* dst = out.appendRaw(13 + reason.size() + 2 + response.headers.serializedSize() +
                            connection.size() + 2);
  dst = std::copy_n("HTTP/1.1 ", 9, dst);
  *dst++ = static_cast<char>('0' + status / 100);
  *dst++ = static_cast<char>('0' + status / 10 % 10);
  *dst++ = static_cast<char>('0' + status % 10);
  *dst++ = ' ';
  dst = std::copy(reason.begin(), reason.end(), dst);
  *dst++ = '\r';
  *dst++ = '\n';
  dst = response.headers.serializeTo(dst);
  dst = std::copy(connection.begin(), connection.end(), dst);
  *dst++ = '\r';
  *dst = '\n';
  if (!options.headRequest) out.append(response.body);
}

void appendLocalReply(core::OutQueue& out, const core::Error& error, std::string_view requestId,
                      const LocalReplyOptions& options) {
  appendResponse(out, makeErrorResponse(error, requestId), options);
}

}  // namespace gw::proxy
