#pragma once
// The checks every request head passes before it is routed (RFC 9112 framing and target forms,
// Host, Expect, Connection, field names), and what they find: the fields that decide how the
// request is handled. A refused head ends its connection: whatever follows it cannot be trusted.
// Two steps, so the trace can start between them (a request refused for its target is traced).

#include <llhttp.h>

#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/core/error.h"
#include "gateway/http/headers.h"
#include "gateway/http/parser.h"

namespace gw::proxy {

struct HeadFields {
  llhttp_method_t method = HTTP_GET;
  std::string_view methodName;
  http::ConnectionTokens tokens;
  std::string_view host;  // as sent ("" when none)
  int hostCount = 0;
  bool expectContinue = false;
  // The client's traceparent when it sent exactly one (two make neither trustworthy, W3C Trace
  // Context 3.2).
  std::string_view traceParent;
};

// The first step: the version, the framing, the method and every field, classified into `kinds`
// (underscored names Dropped or refused per configuration).
core::Result<HeadFields> readHeadFields(const http::Parser& parser, const char* base,
                                        const config::Config& config,
                                        std::vector<http::FieldName>& kinds);

struct HeadTarget {
  std::string_view host;  // lower-case, without port ("" for HTTP/1.0 without Host), in `host`
  std::string_view forwardHost;  // the Host value as sent, or the absolute-form authority
  std::string_view path;  // normalised, in `path`
  std::string_view query;
  bool hasQuery = false;
};

// The second step: the target (origin- or absolute-form), Host, and the normalised path.
core::Result<HeadTarget> readHeadTarget(const http::Parser& parser, const char* base,
                                        const config::Config& config, const HeadFields& fields,
                                        std::string& host, std::string& path);

}  // namespace gw::proxy
