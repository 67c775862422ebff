#pragma once
// The request head as it goes to a backend (RFC 9110 §7.6): always HTTP/1.1; hop-by-hop fields
// and the ones the client's Connection nominates are gone; Host kept or set per backend;
// X-Forwarded-For extended with the client, X-Forwarded-Proto/-Host and Via set by us. Framing
// is always ours: the Content-Length the gateway parsed (or of the body a plugin buffered), or
// re-chunked; no field the client sent (Content-Length, a Connection option) decides it. One
// template serves the fast path (fields read straight from the parser) and plugin routes
// (fields from an edited list).

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/headers.h"
#include "gateway/http/parser.h"
#include "gateway/proxy/field_list.h"

namespace gw::proxy {

struct ForwardTarget {
  std::string_view method;
  std::string_view host;  // the client's Host ("" if none)
  std::string_view path;  // normalised, prefix stripped
  std::string_view query;
  bool hasQuery = false;
  // The body's length as the gateway read it (declared and parsed, or buffered by a plugin);
  // none for a chunked body or none at all.
  std::optional<uint64_t> contentLength;
  // The gateway's traceparent for this hop; empty when tracing is off (the client's fields then
  // pass unchanged). The client's tracestate is kept only when its traceparent was valid.
  std::string_view traceParent;
  bool keepTraceState = true;
  // The client is a proxy the configuration trusts: its X-Real-IP and Forwarded pass on.
  bool fromTrustedProxy = false;
  bool secure = false;  // the client came over TLS: X-Forwarded-Proto says https
};

// Fields of a parsed request head, with their classification and the Connection options.
struct ParserFields {
  const http::Parser& parser;
  const char* base;
  const std::vector<http::FieldName>& kinds;
  const http::ConnectionTokens& tokens;
  std::size_t size() const { return parser.fieldCount(); }
  std::string_view name(std::size_t i) const { return parser.fieldName(base, i); }
  std::string_view value(std::size_t i) const { return parser.fieldValue(base, i); }
  http::FieldName kind(std::size_t i) const { return kinds[i]; }
  bool nominated(std::string_view n) const {
    return !tokens.others().empty() && tokens.nominates(n);
  }
};

// Fields a plugin may have edited (hop-by-hop ones were never put in).
struct ListFields {
  const FieldList& list;
  std::size_t size() const { return list.size(); }
  std::string_view name(std::size_t i) const { return list.at(i).first; }
  std::string_view value(std::size_t i) const { return list.at(i).second; }
  http::FieldName kind(std::size_t i) const { return list.kind(i); }
  bool nominated(std::string_view) const { return false; }
};

// Writes the head into `head`. Returns where the backend's Host line must be inserted, or npos
// when the client's Host is preserved (and already written).
template <typename Fields>
std::size_t buildUpstreamHead(std::string& head, const ForwardTarget& target, const Fields& fields,
                              std::string_view clientIp, bool preserveHost, bool chunked) {
  auto field = [&](std::string_view name, std::string_view value) {
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  };
  head.reserve(512);
  head += target.method;
  head += ' ';
  head += target.path;
  if (target.hasQuery) {
    head += '?';
    head += target.query;
  }
  head += " HTTP/1.1\r\n";
  std::size_t hostSplit = std::string::npos;
  if (preserveHost && !target.host.empty()) {
    field("Host", target.host);
  } else {
    hostSplit = head.size();
  }
  std::string_view forwardedFor;
  std::string joinedForwardedFor;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    // A field the client's Connection header names ends at this hop, whatever its kind.
    if (fields.nominated(fields.name(i))) continue;
    switch (fields.kind(i)) {
      case http::FieldName::Other:
        field(fields.name(i), fields.value(i));
        continue;
      case http::FieldName::TraceParent:
        if (target.traceParent.empty()) field(fields.name(i), fields.value(i));
        continue;  // else ours follows
      case http::FieldName::TraceState:
        if (target.keepTraceState) field(fields.name(i), fields.value(i));
        continue;
      case http::FieldName::XRealIp:
      case http::FieldName::Forwarded:
        // Anyone may write these; only a proxy we trust knows what it says about the client.
        if (target.fromTrustedProxy) field(fields.name(i), fields.value(i));
        continue;
      case http::FieldName::XForwardedFor: {
        std::string_view value = fields.value(i);
        if (forwardedFor.empty()) {
          forwardedFor = value;
        } else {
          if (joinedForwardedFor.empty()) joinedForwardedFor = forwardedFor;
          joinedForwardedFor += ", ";
          joinedForwardedFor += value;
          forwardedFor = joinedForwardedFor;
        }
        continue;
      }
      default:
        // Host, X-Forwarded-Host/-Proto and Content-Length are written below, Expect was
        // answered by us, hop-by-hop fields end at this hop, and dropped ones go nowhere.
        continue;
    }
  }
  head += "X-Forwarded-For: ";
  if (!forwardedFor.empty()) {
    head += forwardedFor;
    head += ", ";
  }
  head += clientIp;
  head += target.secure ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n";
  if (!target.host.empty()) field("X-Forwarded-Host", target.host);
  head += "Via: 1.1 gatewayd\r\n";
  if (!target.traceParent.empty()) field("traceparent", target.traceParent);
  if (target.contentLength) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, *target.contentLength).ptr;
    field("Content-Length", {digits, static_cast<std::size_t>(end - digits)});
  } else if (chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  }
  head += "\r\n";
  return hostSplit;
}

}  // namespace gw::proxy
