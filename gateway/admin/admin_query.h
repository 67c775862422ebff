#pragma once
// The query of an admin cache purge (DELETE /cache?...), checked before anything is dropped: a
// typo must be a 400, never a purge wider than the operator meant.

#include <optional>
#include <string>
#include <string_view>

#include "gateway/core/error.h"

namespace gw::admin {

// What to drop: entries for `path` (or every path starting with it when `prefix`), of `host`
// only when given, in the caches of `route` only when given.
struct PurgeQuery {
  std::string path;  // normalised like a routed request's path (gateway/http/path.h)
  bool prefix = false;
  std::string host;  // lower-case; empty: any host
  std::optional<std::string> route;
};

// Parses "path=/items/7" or "prefix=/items/", plus optional "host=" and "route=". Names and
// values are percent-decoded ('+' stays '+': it is a legal path character). Exactly one of path
// and prefix; each parameter at most once, with a value; any other parameter is refused.
// Errors are BadRequest with a message for the operator.
core::Result<PurgeQuery> parsePurgeQuery(std::string_view query);

}  // namespace gw::admin
