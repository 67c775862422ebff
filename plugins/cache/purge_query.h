#pragma once
// The cache's admin endpoint, DELETE /cache?...: its query is checked before anything is dropped
// (a typo must be a 400, never a purge wider than the operator meant), then the matching entries
// of the chosen routes' stores go.

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "gateway/core/error.h"
#include "gateway/plugin/plugin.h"

namespace gw::plugins::cache {

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

// The answer to a purge naming a route that does not exist.
inline constexpr core::ErrorCode kNoSuchRoute{404, "NOT_FOUND"};
// The answer when a store's Redis purges already fill their queue (RedisPurges::kMaxQueued).
inline constexpr core::ErrorCode kPurgeBusy{503, "PURGE_BUSY"};

// Purges per the query in the stores of its route (every route's when none is named), each store
// once however many routes share it; answers {"purged":N}, with "redis_purges_queued":M when M
// of those stores have a Redis tier (purged later by a worker, redis_purge.h). Any thread:
// stores are thread-safe.
core::Result<std::string> purge(std::string_view query, std::span<const plugin::BoundRoute> routes);

inline constexpr plugin::AdminEndpoint kPurgeEndpoint{"DELETE", "/cache", &purge};

}  // namespace gw::plugins::cache
