#pragma once
// Cache keys. The primary key names the request as it is forwarded (method class, the Host value
// sent upstream byte for byte, path, query, configured request header values); the variant key
// picks one stored response among those the resource's Vary allows (RFC 9111 §4.1). Both are
// encoded injectively: every part is length-prefixed (and an absent header differs from an empty
// one), so no crafted URI or header value can make two different requests share a key.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/cache/fields.h"

namespace gw::plugins::cache {

struct KeyOptions {
  bool sortQuery = false;                 // parameters sorted by name, stable on equal names
  std::vector<std::string> ignoredParams;  // parameter names dropped (compared as sent)
  std::vector<std::string> headers;  // request fields (lower-case) whose values join the key
};

struct RequestKey {
  std::string primary;  // the store's key
  // The host (lower-case, without port or trailing dot), path and normalised query only: what
  // unsafe methods invalidate, whatever port or case their Host was written with.
  std::string url;
  std::string host;  // as in url, for purge
  std::string path;
};

// HEAD and GET share a key (a stored GET answers a HEAD). `authority` is the Host value the
// backend receives, exactly as sent: a backend may answer "victim.example:6666" differently from
// "victim.example", so they never share an entry. The strings in `out` are overwritten, keeping
// their capacity.
void buildRequestKey(const KeyOptions& options, std::string_view method, std::string_view authority,
                     std::string_view path, std::string_view query, const FieldsView& request,
                     RequestKey& out);

// The query as the key sees it: unchanged unless the options sort or drop parameters.
void normaliseQuery(const KeyOptions& options, std::string_view query, std::string& out);

// RFC 9111 §4.4: after an unsafe request, the URIs in the response's Location and
// Content-Location are invalidated too, but only when they share the request's origin. For such
// a URI reference ("/p?q" or "http://host[:port]/p?q", any case in scheme and host; the port
// must match `requestAuthority`'s), writes the URL part RequestKey::url would hold for it and
// returns true. `requestAuthority` is the request's Host value. Relative paths without a
// leading "/" and other origins return false.
bool sameOriginUrl(const KeyOptions& options, std::string_view uriReference,
                   std::string_view requestAuthority, std::string& url);

// The request fields a stored response varies on: its Vary names lower-cased, de-duplicated and
// sorted (RFC 9111 §4.1: only they select). Vary: * is not a name (see StoredMeta::varyStar).
// A content-coded response (Content-Encoding other than identity) varies on accept-encoding
// too, Vary or not: a client must not get a coding it did not ask for because its origin
// forgot to say so.
std::vector<std::string> varyNames(const FieldsView& responseFields);

// The request's values for `names` (as returned by varyNames): each field's lines combined with
// ", ", list elements OWS-trimmed and empty ones dropped (RFC 9111 §4.1 normalisation), each
// name and value length-prefixed, absent marked apart from empty. Overwrites `out`.
void buildVariantKey(std::span<const std::string> names, const FieldsView& request,
                     std::string& out);

}  // namespace gw::plugins::cache
