#include "plugins/cache/purge_query.h"

#include <algorithm>
#include <vector>

#include "gateway/core/log.h"
#include "gateway/http/headers.h"
#include "gateway/http/path.h"
#include "plugins/cache/cache_config.h"

namespace gw::plugins::cache {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX only; false on a malformed escape.
bool percentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (in.size() - i < 3) return false;
    const int high = hexValue(in[i + 1]);
    const int low = hexValue(in[i + 2]);
    if (high < 0 || low < 0) return false;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return true;
}

core::Error badRequest(std::string message) {
  return core::Error::downstream(core::ErrorCode::BadRequest, std::move(message));
}

}  // namespace

core::Result<PurgeQuery> parsePurgeQuery(std::string_view query) {
  std::optional<std::string> path, prefix, host, route;
  std::string name, value;
  while (!query.empty()) {
    const std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    if (pair.empty()) continue;  // "a=1&&b=2", a trailing '&'
    const std::size_t equals = pair.find('=');
    if (!percentDecode(pair.substr(0, equals), name) ||
        (equals != std::string_view::npos && !percentDecode(pair.substr(equals + 1), value))) {
      return badRequest("malformed percent-encoding in the query");
    }
    std::optional<std::string>* slot = name == "path"     ? &path
                                       : name == "prefix" ? &prefix
                                       : name == "host"   ? &host
                                       : name == "route"  ? &route
                                                          : nullptr;
    if (slot == nullptr) {
      return badRequest("unknown parameter '" + name + "' (known: path, prefix, host, route)");
    }
    if (slot->has_value()) return badRequest("parameter '" + name + "' given twice");
    if (equals == std::string_view::npos || value.empty()) {
      return badRequest("parameter '" + name + "' needs a value");
    }
    *slot = value;
  }
  if (path.has_value() == prefix.has_value()) {
    return badRequest("give exactly one of 'path' (one path) and 'prefix' (every path under it)");
  }
  PurgeQuery purge;
  purge.prefix = prefix.has_value();
  // Stored entries carry the path as routed, so the operator's spelling is normalised the same
  // way: "/items//7" and "/items/./7" purge what a request for /items/7 stored. Spellings that
  // `http:` may refuse are kept: whatever was stored under the configured rules stays purgeable.
  constexpr http::PathRules kKeepSpelling{http::EscapedSlashes::Keep, http::PathParameters::Keep};
  if (http::normalisePath(purge.prefix ? *prefix : *path, purge.path, kKeepSpelling) !=
      http::PathError::None) {
    return badRequest(purge.prefix ? "'prefix' must be a valid absolute path"
                                   : "'path' must be a valid absolute path");
  }
  if (host && !http::normaliseHost(*host, purge.host)) {
    return badRequest("'host' is not a valid host");
  }
  purge.route = std::move(route);
  return purge;
}

core::Result<std::string> purge(std::string_view query,
                                std::span<const plugin::BoundRoute> routes) {
  auto parsed = parsePurgeQuery(query);
  if (!parsed) return parsed.error();
  const PurgeQuery& what = *parsed;
  if (what.route) {
    const auto named = std::find_if(routes.begin(), routes.end(), [&](const plugin::BoundRoute& r) {
      return r.name == *what.route;
    });
    if (named == routes.end()) {
      return core::Error::downstream(kNoSuchRoute, "no route named '" + *what.route + "'");
    }
    routes = {&*named, 1};
  }
  // A global binding is one settings object shared by every route's list: purge each store once.
  std::vector<const Settings*> stores;
  for (const plugin::BoundRoute& route : routes) {
    for (const plugin::RouteConfig* bound : route.settings) {
      const auto* settings = static_cast<const Settings*>(bound);
      const bool seen = std::any_of(stores.begin(), stores.end(), [&](const Settings* s) {
        return s->shared == settings->shared;
      });
      if (!seen) stores.push_back(settings);
    }
  }
  // Checked before anything is dropped, so a refused purge has done nothing.
  std::size_t redisTiers = 0;
  for (const Settings* settings : stores) {
    if (!settings->redisStore) continue;
    ++redisTiers;
    if (settings->shared->redisPurges.queued() >= RedisPurges::kMaxQueued) {
      return core::Error::downstream(kPurgeBusy, "too many Redis purges are waiting; retry later");
    }
  }
  std::size_t purged = 0;
  for (const Settings* settings : stores) {
    purged += settings->shared->store.purge(what.host, what.path, what.prefix);
    if (settings->redisStore) {
      settings->shared->redisPurges.enqueue({what.host, what.path, what.prefix});
    }
  }
  core::log::info("admin cache purge", {{"query", query}, {"purged", std::to_string(purged)}});
  std::string answer = "{\"purged\":" + std::to_string(purged);
  // The Redis tier is purged in the background: the answer cannot wait for a walk of its keys.
  if (redisTiers > 0) answer += ",\"redis_purges_queued\":" + std::to_string(redisTiers);
  return answer + "}\n";
}

}  // namespace gw::plugins::cache
