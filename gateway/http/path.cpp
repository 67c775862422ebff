#include "gateway/http/path.h"

namespace gw::http {
namespace {

constexpr char kUpperHex[] = "0123456789ABCDEF";

constexpr int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

constexpr bool isUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

constexpr bool isRefusedRaw(unsigned char c) {
  return c <= 0x20 || c >= 0x7F || c == '#' || c == '?' || c == '\\';
}

}  // namespace

TargetParts splitTarget(std::string_view target) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}, false};
  return {target.substr(0, q), target.substr(q + 1), true};
}

std::string_view describe(PathError error) {
  switch (error) {
    case PathError::None:
      break;
    case PathError::Invalid:
      return "invalid request path";
    case PathError::EscapesRoot:
      return "request path escapes the root";
    case PathError::EscapedSlash:
      return "encoded slash or backslash (%2F, %5C) in the request path";
    case PathError::PathParameter:
      return "path parameter (';' or %3B) in the request path";
  }
  return "request path accepted";
}

PathError normalisePath(std::string_view raw, std::string& out, PathRules rules) {
  if (raw.empty() || raw[0] != '/') return PathError::Invalid;
  // Decoding, merging, parameter and dot removal only shrink, so the input length bounds the
  // output and plain pointer writes need no capacity checks.
  out.resize(raw.size());
  char* const base = out.data();
  const std::size_t n = raw.size();
  std::size_t len = 1;  // base[0..len) is the output; it ends with '/' before every segment
  base[0] = '/';
  std::size_t i = 0;
  while (true) {
    while (i < n && raw[i] == '/') ++i;
    if (i == n) break;
    const std::size_t segment = len;
    // Where the segment's ";params" start in the output when they are stripped. They are still
    // written and checked like the rest, then cut off.
    std::size_t params = std::string::npos;
    for (; i < n && raw[i] != '/'; ++i) {
      const auto c = static_cast<unsigned char>(raw[i]);
      if (c == '%') {
        if (n - i < 3) return PathError::Invalid;
        const int hi = hexValue(raw[i + 1]);
        const int lo = hexValue(raw[i + 2]);
        if (hi < 0 || lo < 0) return PathError::Invalid;
        const auto decoded = static_cast<unsigned char>(hi * 16 + lo);
        if (decoded == 0) return PathError::Invalid;
        if ((decoded == '/' || decoded == '\\') &&
            rules.escaped_slashes == EscapedSlashes::Reject) {
          return PathError::EscapedSlash;
        }
        // Backends disagree on whether an encoded ';' starts parameters: only Keep forwards it.
        if (decoded == ';' && rules.path_parameters != PathParameters::Keep) {
          return PathError::PathParameter;
        }
        if (isUnreserved(decoded)) {
          base[len++] = static_cast<char>(decoded);
        } else {
          base[len++] = '%';
          base[len++] = kUpperHex[hi];
          base[len++] = kUpperHex[lo];
        }
        i += 2;
      } else if (isRefusedRaw(c)) {
        return PathError::Invalid;
      } else {
        if (c == ';') {
          if (rules.path_parameters == PathParameters::Reject) return PathError::PathParameter;
          if (rules.path_parameters == PathParameters::Strip && params == std::string::npos) {
            params = len;
          }
        }
        base[len++] = static_cast<char>(c);
      }
    }
    if (params != std::string::npos) len = params;
    const std::string_view decoded(base + segment, len - segment);
    if (decoded.empty() || decoded == ".") {
      len = segment;  // a segment that was only ";params" leaves nothing, like a doubled '/'
    } else if (decoded == "..") {
      if (segment == 1) return PathError::EscapesRoot;
      len = segment - 1;  // drop "..", then the segment before it, keeping that one's '/'
      while (base[len - 1] != '/') --len;
    } else if (i < n) {
      base[len++] = '/';
    }
  }
  out.resize(len);
  return PathError::None;
}

}  // namespace gw::http
