#pragma once
// The ONE place an Error becomes an HTTP response: status from the error's code, and the body
// {"error":{"code":"...","message":"...","request_id":"..."}}. Everything the gateway answers
// on its own goes through here, so every such answer looks the same.

#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "gateway/core/error.h"
#include "gateway/core/out_queue.h"
#include "gateway/proxy/field_list.h"

namespace gw::proxy {

struct LocalReplyOptions {
  bool closeConnection = false;
  bool headRequest = false;  // HEAD: same head, no body
  // An HTTP/1.0 client that asked for keep-alive is told it is kept (1.0 defaults to close).
  bool http10KeepAlive = false;
};

// A response the gateway writes itself, before it is serialised: response-phase plugins (e.g.
// security headers) get to change its headers first.
struct LocalResponse {
  int status = 500;
  FieldList headers;
  std::string body;
};

// The response for `error`: JSON body, Content-Type, Content-Length, Cache-Control, X-Request-Id.
LocalResponse makeErrorResponse(const core::Error& error, std::string_view requestId);
// A plugin's own answer with the standard framing headers.
LocalResponse makeResponse(int status, std::string body, std::string_view contentType,
                           std::string_view requestId);
// A response with the caller's fields (framing and hop-by-hop fields dropped) and our framing.
LocalResponse makeResponseWith(int status,
                               std::span<const std::pair<std::string_view, std::string_view>> fields,
                               std::string body);
// Serialises a local response; HEAD gets the head only.
void appendResponse(core::OutQueue& out, const LocalResponse& response,
                    const LocalReplyOptions& options);

// Appends the complete response for `error` to `out`.
void appendLocalReply(core::OutQueue& out, const core::Error& error, std::string_view requestId,
                      const LocalReplyOptions& options);

// The JSON body alone (exposed for tests and for plugins that log it).
std::string errorBody(const core::Error& error, std::string_view requestId);

}  // namespace gw::proxy
