#pragma once
// Conditional requests answered from the cache (RFC 9111 §4.3.2, RFC 9110 §13), the fields a 304
// carries (RFC 9110 §15.4.5), and freshening a stored response from an upstream 304
// (RFC 9111 §4.3.4, §3.2).

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "plugins/cache/fields.h"
#include "plugins/cache/freshness.h"

namespace gw::plugins::cache {

// RFC 9110 §8.8.3.2. Weak: opaque-tags equal, W/ ignored. Strong: both strong and equal.
// Malformed entity-tags never match.
bool weakEtagMatch(std::string_view a, std::string_view b);
bool strongEtagMatch(std::string_view a, std::string_view b);

// If-None-Match ("*" or a list of entity-tags) against the stored ETag, weak comparison
// (§13.1.2). "*" matches any stored response; a list needs a stored ETag.
bool ifNoneMatchMatches(std::string_view ifNoneMatch, std::string_view storedEtag);

// Should the cache answer this request with 304 from the stored response? Only for GET/HEAD and
// a stored 200. If-None-Match decides when present; otherwise a valid If-Modified-Since is
// compared with the stored Last-Modified, else its Date, else the time it was received (§4.3.2).
bool answersNotModified(std::string_view method, const FieldsView& request, const StoredMeta& meta);

// The stored fields a 304 from the cache carries (RFC 9110 §15.4.5): Cache-Control,
// Content-Location, Date, ETag, Expires, Vary, and Last-Modified when there is no ETag.
// Appended to `out` in stored order.
void notModifiedFields(std::span<const Field> stored, std::vector<Field>& out);

// RFC 9111 §4.3.4 / §3.2: every field the upstream 304 carries replaces all stored lines of that
// name, except Content-Length, Age (the cache computes it) and fields a cache does not store
// (hop-by-hop, those Connection nominates). The body is untouched. The caller re-analyses the
// merged fields with the new request/response times and checks storability again (a 304 may
// add Set-Cookie or no-store).
void mergeNotModified(std::vector<Field>& stored, const FieldsView& notModified);

// Fields a cache never stores or updates (RFC 9111 §3.1): hop-by-hop ones, those the message's
// Connection field nominates (`connection` is its combined value), and Age.
bool isUnstorableField(std::string_view name, std::string_view connection);

}  // namespace gw::plugins::cache
