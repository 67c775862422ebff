#include "gateway/proxy/local_reply.h"

#include "gateway/core/json.h"
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

void appendLocalReply(core::OutQueue& out, const core::Error& error, std::string_view requestId,
                      const LocalReplyOptions& options) {
  int status = core::httpStatus(error.code);
  std::string body = errorBody(error, requestId);
  std::string head = "HTTP/1.1 ";
  head += std::to_string(status);
  head += ' ';
  head += http::reasonPhrase(status);
  head += "\r\nContent-Type: application/json\r\nContent-Length: ";
  head += std::to_string(body.size());
  head += "\r\nCache-Control: no-store\r\n";
  if (!requestId.empty()) {
    head += "X-Request-Id: ";
    head += requestId;
    head += "\r\n";
  }
  head += options.closeConnection ? "Connection: close\r\n\r\n" : "\r\n";
  out.append(head);
  if (!options.headRequest) out.append(body);
}

}  // namespace gw::proxy
