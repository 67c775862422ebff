#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "gateway/config/model.h"
#include "gateway/plugin/plugin.h"
#include "gateway/proxy/field_list.h"
#include "gateway/proxy/filter_chain.h"
#include "gateway/proxy/local_reply.h"

namespace gw::proxy {

// What only an exchange on a route with plugins needs. Workers recycle these: strings and lists
// keep their capacity, so a plugin route does not pay a chain of allocations per request.
struct PluginExchange {
  // Readies a recycled (or new) instance for one exchange of `route`.
  void reset(const config::RouteConfig& route, std::span<plugin::WorkerState* const> states);

  FilterChain chain;
  plugin::RequestInfo info;
  // What `info` and the head toward the upstream read of the request (method, host, path, query,
  // forwarded host, client address), copied from buffers that move on while plugins may wait.
  std::string requestText;
  // Formatted from the worker's sequence number when first read (nothing reads it on most
  // exchanges), unless given (setRequestId, an unrouted answer's).
  std::string requestId;
  std::optional<uint64_t> requestIdSeq;
  plugin::ExchangeNotes notes;
  FieldList requestFields;
  FieldList upstreamResponseFields;
  FieldList* responseFields = &upstreamResponseFields;  // or a local response's headers
  std::optional<LocalResponse> answer;
  std::size_t bufferLimit = 0;
  std::string bufferedBody;
};

}  // namespace gw::proxy
