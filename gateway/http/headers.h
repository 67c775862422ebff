#pragma once
// Header helpers for the proxy: case-insensitive names, hop-by-hop classification, the
// Connection header, Host parsing and list-valued fields. All ASCII, no locale, no allocation
// (except the helpers that write into a caller's reusable std::string).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace gw::http {

constexpr char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Overwrites `out` with `in` lower-cased (ASCII only; other bytes unchanged).
void asciiLower(std::string_view in, std::string& out);

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  }
  return true;
}

// The header names the proxy itself acts on; everything else is Other and passes through.
enum class FieldName : uint8_t {
  Other,
  Host,
  Expect,
  ContentLength,
  XForwardedFor,
  XForwardedHost,
  XForwardedProto,
  TraceParent,  // W3C trace context: replaced by the gateway's hop when tracing is on
  TraceState,
  XRealIp,      // client-address fields only a trusted proxy may set
  Forwarded,
  // Never returned by classifyField(): the proxy marks a field it removes from the request (a
  // name with an underscore, see config::UnderscoreHeaders).
  Dropped,
  // Hop-by-hop from here on.
  Connection,
  KeepAlive,
  TE,
  Trailer,
  TransferEncoding,
  Upgrade,
  ProxyConnection,
  ProxyAuthorization,
};

// One pass over the name: its length and first letter pick the single candidate.
FieldName classifyField(std::string_view name);
constexpr bool isHopByHop(FieldName kind) { return kind >= FieldName::Connection; }
// The fields that frame a message or say where it goes: only the gateway writes them upstream
// and downstream, so nothing a peer sends (a Connection option included) may remove them.
constexpr bool framesOrRoutes(FieldName kind) {
  return kind == FieldName::ContentLength || kind == FieldName::TransferEncoding ||
         kind == FieldName::Host;
}

// Headers that describe one connection and are never forwarded (RFC 9110 §7.6.1), plus the
// legacy Proxy-Connection and Proxy-Authorization: credentials meant for the gateway must not
// leak to a backend. Proxy-Authenticate is deliberately NOT here: we do not authenticate
// proxies, so a backend's challenge is end-to-end for us (RFC 9110 §11.7.1) and is relayed.
// Names a Connection header nominates are hop-by-hop too; see ConnectionTokens.
inline bool isHopByHop(std::string_view name) { return isHopByHop(classifyField(name)); }

// Fields that frame the message, route it or describe one connection: Host, Content-Length and
// the hop-by-hop names. Only the proxy sets them, so no plugin setting may name one (a request id
// sent as Content-Length would make the backend read a different body).
inline bool isProxyOwned(std::string_view name) {
  const FieldName kind = classifyField(name);
  return kind == FieldName::Host || kind == FieldName::ContentLength || isHopByHop(kind);
}

// The options of one message's Connection header(s) (RFC 9110 §7.6.1). Views point into the
// header values, which must outlive this object. Reuse one per message with reset().
class ConnectionTokens {
 public:
  static constexpr std::size_t kMaxNominated = 16;

  // Adds the options of one Connection field value; repeated headers accumulate.
  // An element that is not a token, or more than kMaxNominated distinct other names, marks the
  // message bad() (answer 400) rather than silently forwarding a header that was meant to stop.
  // Options naming a field that framesOrRoutes() are ignored: they are never hop-by-hop.
  void add(std::string_view fieldValue);
  void reset() { *this = ConnectionTokens(); }

  bool close() const { return close_; }
  bool keepAlive() const { return keepAlive_; }
  bool upgrade() const { return upgrade_; }
  bool bad() const { return bad_; }

  // True if `name` was listed, case-insensitively; "close", "keep-alive" and "upgrade" included.
  bool nominates(std::string_view name) const;
  // The listed names other than close / keep-alive / upgrade, each once, in order of appearance.
  std::span<const std::string_view> others() const { return {others_.data(), count_}; }

 private:
  std::array<std::string_view, kMaxNominated> others_{};
  uint8_t count_ = 0;
  bool close_ = false;
  bool keepAlive_ = false;
  bool upgrade_ = false;
  bool bad_ = false;
};

// A field value as sent on the wire: no NUL, CR, LF or other CTL except HTAB (obs-text allowed).
// llhttp checks this already; the proxy re-checks values it synthesises or lets plugins set.
bool isValidFieldValue(std::string_view value);

// RFC 9110 token: one or more tchar.
bool isToken(std::string_view s);

// Walks the elements of a comma-separated list (RFC 9110 §5.6.1), OWS trimmed, empty elements
// included (callers skip them), commas inside quoted strings not splitting.
class ListElements {
 public:
  explicit ListElements(std::string_view list) : list_(list) {}
  // The next element; false once the list is exhausted.
  bool next(std::string_view& element);

 private:
  std::string_view list_;
  std::size_t pos_ = 0;
};

// The host of a Host header value (or authority) without its port: "Example.COM:8080" ->
// "Example.COM", "[::1]:80" -> "[::1]" (brackets kept, so it compares like the config's host).
// A trailing dot is dropped ("example.com." names the same host). nullopt for an empty host,
// userinfo ('@'), any character outside ALPHA DIGIT '-' '.' '_' (so no percent-encoding that
// could make two spellings route differently), an empty label (".a", "a..b"), a malformed IPv6
// literal, or a port that is empty, not all digits, or above 65535.
std::optional<std::string_view> hostWithoutPort(std::string_view host);

// hostWithoutPort() lower-cased into `out`, the form the router matches. False if invalid.
bool normaliseHost(std::string_view host, std::string& out);

// True if the comma-separated list `listValue` has an element equal to `token`, ignoring case,
// optional whitespace and any ";parameters" of the element (e.g. hasToken(expect,
// "100-continue"), hasToken(transferEncoding, "chunked")). Commas inside quoted strings do not
// split elements.
bool hasToken(std::string_view listValue, std::string_view token);

}  // namespace gw::http
