#pragma once
// Request-target normalisation, done once per request before routing, so that the router, the
// plugins and the backend all see the same path (RFC 3986 §6.2.2, nginx's behaviour).

#include <cstdint>
#include <string>
#include <string_view>

namespace gw::http {

// An origin-form request-target split at the first '?'. Both views point into the target.
struct TargetParts {
  std::string_view path;
  std::string_view query;  // without the '?'
  // "/a?" has an empty query, "/a" has none; forwarding keeps the difference.
  bool has_query = false;
};

TargetParts splitTarget(std::string_view target);

// How to treat path spellings that common backends read differently from the router (the
// `http:` section of the configuration). The defaults refuse them, so a guard on "/admin" cannot
// be walked around; see docs/security.md.
enum class EscapedSlashes : uint8_t {
  Reject,  // %2F or %5C anywhere in the path: 400. WSGI, Go and others decode them to separators
  Keep,    // route on the encoded form and forward it as is
};
enum class PathParameters : uint8_t {
  Reject,  // ';' or %3B anywhere in the path: 400 (Spring Security's StrictHttpFirewall default)
  Strip,   // drop each segment's ";params" before routing, so all see what Tomcat/Spring route on
  Keep,    // route on the path with its parameters and forward it as is
};
struct PathRules {
  EscapedSlashes escaped_slashes = EscapedSlashes::Reject;
  PathParameters path_parameters = PathParameters::Reject;
};

enum class PathError : uint8_t {
  None,
  Invalid,        // not a path we are willing to route: 400
  EscapesRoot,    // a ".." climbs above "/": 400, like nginx
  EscapedSlash,   // %2F or %5C while EscapedSlashes::Reject: 400
  PathParameter,  // ';' or %3B while PathParameters::Reject, %3B while Strip: 400
};

// The message a client gets for the error (never None).
std::string_view describe(PathError error);

// Normalises the path part of an origin-form target (no query) into `out`:
//   - it must start with '/';
//   - %XX of an unreserved character (ALPHA DIGIT - . _ ~) is decoded, every other %XX is kept
//     with upper-case hex, so "%2F" never becomes a separator and "%25" is never decoded twice;
//   - with PathParameters::Strip, everything from a raw ';' to the end of its segment is removed
//     (before the dot test, so ".;x" is a "." segment, as Tomcat reads it);
//   - runs of '/' become one (nginx merge_slashes), also those left by a stripped ";params"
//     segment;
//   - "." and ".." segments are removed, also those spelled "%2e"; a trailing '/' is kept.
// Invalid: a malformed escape, %00, a raw CTL, space, byte >= 0x80, '#', '?' or '\'. The backslash
// is refused because some backends treat it as a separator, which would let "/public\..\admin"
// route as /public yet be served as /admin. `rules` adds EscapedSlash and PathParameter.
// `out` is overwritten; its capacity is reused, so a per-connection string never reallocates once
// it has grown to the longest path. On error `out` holds no meaningful value.
PathError normalisePath(std::string_view rawPath, std::string& out, PathRules rules = {});

// Segment-aware prefix test, the one definition the router and the config checks share (Envoy's
// path_separated_prefix, Kong's paths): "/api" covers "/api" and "/api/x" but not "/apix"; a
// prefix ending in '/' covers everything below it, so "/" covers every path. Both arguments are
// normalised paths.
constexpr bool pathHasPrefix(std::string_view path, std::string_view prefix) {
  return path.starts_with(prefix) && (prefix.empty() || prefix.back() == '/' ||
                                      path.size() == prefix.size() || path[prefix.size()] == '/');
}

}  // namespace gw::http
