#include "gateway/proxy/request_head.h"

#include "gateway/http/path.h"

namespace gw::proxy {

namespace {

using core::Error;
using core::ErrorCode;

Error badRequest(std::string message) {
  return Error::downstream(ErrorCode::BadRequest, std::move(message));
}

}  // namespace

core::Result<HeadFields> readHeadFields(const http::Parser& parser, const char* base,
                                        const config::Config& config,
                                        std::vector<http::FieldName>& kinds) {
  if (parser.versionMajor() != 1) return badRequest("unsupported HTTP version");
  if (parser.hasTransferEncoding() && !parser.chunked()) {
    // RFC 9112 §6.1: without chunked last nothing says where the body ends. llhttp refuses it
    // only past the head, when a plugin's answer or the backend could already have acted on it.
    return badRequest("malformed request: Transfer-Encoding does not end with chunked");
  }
  HeadFields head;
  head.method = parser.method();
  head.methodName = llhttp_method_name(head.method);
  if (head.method == HTTP_CONNECT) {
    return Error::downstream(ErrorCode::NotImplemented, "CONNECT is not supported");
  }
  std::string_view traceParent;
  int traceParentCount = 0;
  // llhttp (strict) already refused control bytes, bare CR/LF and obs-fold in every field.
  kinds.resize(parser.fieldCount());
  const config::UnderscoreHeaders underscores = config.underscores_in_headers;
  for (std::size_t i = 0; i < parser.fieldCount(); ++i) {
    const http::FieldName kind = http::classifyField(parser.fieldName(base, i));
    kinds[i] = kind;
    switch (kind) {
      case http::FieldName::Host:
        head.host = parser.fieldValue(base, i);
        ++head.hostCount;
        break;
      case http::FieldName::Connection:
        head.tokens.add(parser.fieldValue(base, i));
        break;
      case http::FieldName::TraceParent:
        traceParent = parser.fieldValue(base, i);
        ++traceParentCount;
        break;
      case http::FieldName::Expect:
        if (!http::hasToken(parser.fieldValue(base, i), "100-continue")) {
          return Error::downstream(ErrorCode::ExpectationFailed, "unsupported expectation");
        }
        head.expectContinue = true;
        break;
      case http::FieldName::Other:
        if (underscores != config::UnderscoreHeaders::Allow &&
            parser.fieldName(base, i).find('_') != std::string_view::npos) {
          if (underscores == config::UnderscoreHeaders::Reject) {
            return badRequest("header field name with an underscore");
          }
          kinds[i] = http::FieldName::Dropped;
        }
        break;
      default:
        break;
    }
  }
  if (head.tokens.bad()) return badRequest("invalid Connection header");
  if (traceParentCount == 1) head.traceParent = traceParent;
  return head;
}

core::Result<HeadTarget> readHeadTarget(const http::Parser& parser, const char* base,
                                        const config::Config& config, const HeadFields& fields,
                                        std::string& host, std::string& path) {
  std::string_view authority = fields.host;
  int hostCount = fields.hostCount;
  std::string_view target = parser.target(base);
  if (target.empty() || target.front() != '/') {
    // absolute-form (RFC 9112 3.2.2): the authority in the target replaces Host.
    constexpr std::string_view kHttp = "http://";
    if (target.size() <= kHttp.size() || !http::iequals(target.substr(0, kHttp.size()), kHttp)) {
      return Error::downstream(ErrorCode::InvalidPath, "unsupported request target form");
    }
    const std::string_view rest = target.substr(kHttp.size());
    const std::size_t slash = rest.find_first_of("/?");
    authority = rest.substr(0, slash);
    hostCount = 1;
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (target.front() == '?') return badRequest("request target without a path");
  }
  if (hostCount > 1 || (hostCount == 0 && parser.versionMinor() >= 1)) {
    return Error::downstream(ErrorCode::MissingHost,
                             hostCount ? "duplicate Host header" : "missing Host header");
  }
  if (hostCount == 1 && !http::normaliseHost(authority, host)) {
    return badRequest("invalid Host header");
  }
  if (hostCount == 0) host.clear();
  const http::TargetParts parts = http::splitTarget(target);
  if (const auto bad = http::normalisePath(parts.path, path, config.path_rules);
      bad != http::PathError::None) {
    return Error::downstream(ErrorCode::InvalidPath, std::string(http::describe(bad)));
  }
  return HeadTarget{host, hostCount ? authority : std::string_view(), path, parts.query,
                    parts.has_query};
}

}  // namespace gw::proxy
