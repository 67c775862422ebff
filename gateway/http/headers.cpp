#include "gateway/http/headers.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace gw::http {
namespace {

constexpr bool isDigit(char c) { return c >= '0' && c <= '9'; }
constexpr bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

constexpr auto kTchar = [] {
  std::array<bool, 256> table{};
  for (std::size_t c = 0; c < table.size(); ++c) {
    table[c] = isAlpha(static_cast<char>(c)) || isDigit(static_cast<char>(c));
  }
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

constexpr bool isOws(char c) { return c == ' ' || c == '\t'; }

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

bool isValidPort(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) {
    if (!isDigit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

bool isValidIpv6Literal(std::string_view inner) {
  char buffer[INET6_ADDRSTRLEN];  // includes room for the terminating NUL
  if (inner.empty() || inner.size() >= sizeof buffer) return false;
  std::memcpy(buffer, inner.data(), inner.size());
  buffer[inner.size()] = '\0';
  in6_addr address;
  return inet_pton(AF_INET6, buffer, &address) == 1;
}

// A reg-name restricted to what DNS names and common internal hosts use; no empty labels.
bool isValidRegName(std::string_view name) {
  if (name.empty() || name.front() == '.') return false;
  char previous = '\0';
  for (char c : name) {
    if (c == '.' && previous == '.') return false;
    if (!isAlpha(c) && !isDigit(c) && c != '-' && c != '.' && c != '_') return false;
    previous = c;
  }
  return true;
}

}  // namespace

bool ListElements::next(std::string_view& element) {
  if (pos_ > list_.size()) return false;
  const std::size_t start = pos_;
  std::size_t i = pos_;
  bool quoted = false;
  for (; i < list_.size(); ++i) {
    const char c = list_[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      break;
    }
  }
  const std::size_t end = std::min(i, list_.size());
  element = trimOws(list_.substr(start, end - start));
  pos_ = end + 1;
  return true;
}

void asciiLower(std::string_view in, std::string& out) {
  out.resize(in.size());
  std::transform(in.begin(), in.end(), out.begin(), [](char c) { return asciiLower(c); });
}


FieldName classifyField(std::string_view name) {
  auto is = [&](std::string_view lower, FieldName kind) {
    return iequals(name, lower) ? kind : FieldName::Other;
  };
  switch (name.size()) {
    case 2:
      return is("te", FieldName::TE);
    case 4:
      return is("host", FieldName::Host);
    case 6:
      return is("expect", FieldName::Expect);
    case 7:
      return asciiLower(name[0]) == 't' ? is("trailer", FieldName::Trailer)
                                        : is("upgrade", FieldName::Upgrade);
    case 9:
      return asciiLower(name[0]) == 'f' ? is("forwarded", FieldName::Forwarded)
                                        : is("x-real-ip", FieldName::XRealIp);
    case 10:
      switch (asciiLower(name[0])) {
        case 'c': return is("connection", FieldName::Connection);
        case 't': return is("tracestate", FieldName::TraceState);
        default: return is("keep-alive", FieldName::KeepAlive);
      }
    case 11:
      return is("traceparent", FieldName::TraceParent);
    case 14:
      return is("content-length", FieldName::ContentLength);
    case 15:
      return is("x-forwarded-for", FieldName::XForwardedFor);
    case 16:
      return asciiLower(name[0]) == 'p' ? is("proxy-connection", FieldName::ProxyConnection)
                                        : is("x-forwarded-host", FieldName::XForwardedHost);
    case 17:
      return asciiLower(name[0]) == 't' ? is("transfer-encoding", FieldName::TransferEncoding)
                                        : is("x-forwarded-proto", FieldName::XForwardedProto);
    case 19:
      return is("proxy-authorization", FieldName::ProxyAuthorization);
    default:
      return FieldName::Other;
  }
}

void ConnectionTokens::add(std::string_view fieldValue) {
  ListElements elements(fieldValue);
  std::string_view option;
  while (elements.next(option)) {
    if (option.empty()) continue;
    if (!isToken(option)) {
      bad_ = true;
    } else if (iequals(option, "close")) {
      close_ = true;
    } else if (iequals(option, "keep-alive")) {
      keepAlive_ = true;
    } else if (iequals(option, "upgrade")) {
      upgrade_ = true;
    } else if (framesOrRoutes(classifyField(option))) {
      // End-to-end fields a sender must not list (RFC 9110 §7.6.1); honouring the option would
      // let a peer strip the framing or the Host the gateway chose. It is ignored.
    } else if (!nominates(option)) {
      if (count_ == kMaxNominated) {
        bad_ = true;
      } else {
        others_[count_++] = option;
      }
    }
  }
}

bool ConnectionTokens::nominates(std::string_view name) const {
  if ((close_ && iequals(name, "close")) || (keepAlive_ && iequals(name, "keep-alive")) ||
      (upgrade_ && iequals(name, "upgrade"))) {
    return true;
  }
  return std::any_of(others_.begin(), others_.begin() + count_,
                     [name](std::string_view other) { return iequals(other, name); });
}

bool isValidFieldValue(std::string_view value) {
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
  }
  return true;
}

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!kTchar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

std::optional<std::string_view> hostWithoutPort(std::string_view host) {
  std::string_view name;
  std::size_t portSeparator;
  if (!host.empty() && host.front() == '[') {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos || !isValidIpv6Literal(host.substr(1, close - 1))) {
      return std::nullopt;
    }
    name = host.substr(0, close + 1);
    portSeparator = close + 1;
  } else {
    portSeparator = std::min(host.find(':'), host.size());
    name = host.substr(0, portSeparator);
    if (!isValidRegName(name)) return std::nullopt;
    if (name.back() == '.') name.remove_suffix(1);
  }
  if (portSeparator < host.size()) {
    if (host[portSeparator] != ':' || !isValidPort(host.substr(portSeparator + 1))) {
      return std::nullopt;
    }
  }
  return name;
}

bool normaliseHost(std::string_view host, std::string& out) {
  const auto name = hostWithoutPort(host);
  if (!name) return false;
  asciiLower(*name, out);
  return true;
}

bool hasToken(std::string_view listValue, std::string_view token) {
  ListElements elements(listValue);
  std::string_view element;
  while (elements.next(element)) {
    if (iequals(trimOws(element.substr(0, element.find(';'))), token)) return true;
  }
  return false;
}

}  // namespace gw::http
