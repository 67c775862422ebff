#pragma once
// The ONE place an Error becomes an HTTP response: status from the error's code, and the body
// {"error":{"code":"...","message":"...","request_id":"..."}}. Everything the gateway answers
// on its own goes through here, so every such answer looks the same.

#include <string>
#include <string_view>

#include "gateway/core/error.h"
#include "gateway/core/out_queue.h"

namespace gw::proxy {

struct LocalReplyOptions {
  bool closeConnection = false;
  bool headRequest = false;  // HEAD: same head, no body
};

// Appends the complete response for `error` to `out`.
void appendLocalReply(core::OutQueue& out, const core::Error& error, std::string_view requestId,
                      const LocalReplyOptions& options);

// The JSON body alone (exposed for tests and for plugins that log it).
std::string errorBody(const core::Error& error, std::string_view requestId);

}  // namespace gw::proxy
