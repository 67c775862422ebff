#include "plugins/cache/cache_config.h"

#include <algorithm>
#include <cctype>

#include "gateway/http/headers.h"
#include "gateway/config/node_reader.h"
#include "plugins/cache/cache.h"
#include "plugins/cache/purge_query.h"

namespace gw::plugins::cache {
namespace {

using config::NodeReader;

// A duration setting in whole seconds (HTTP's unit for every lifetime).
void readSeconds(NodeReader& reader, std::string_view key, int64_t& seconds) {
  config::Duration duration(0);
  if (!reader.readDuration(key, duration)) return;
  if (duration.count() % 1000 != 0) {
    reader.error(*reader.value(key), std::string(key) + " must be whole seconds, got " +
                                         config::describe(*reader.value(key)));
    return;
  }
  seconds = std::min<int64_t>(duration.count() / 1000, kDeltaMax);
}

// Request field names, lower-cased as the key builder compares them.
void readFieldNames(NodeReader& reader, std::string_view key, std::vector<std::string>& out) {
  if (!reader.readStrings(key, out)) return;
  for (std::string& name : out) {
    if (!http::isToken(name)) {
      reader.error(*reader.value(key), std::string(key) + ": " + config::quote(name) +
                                           " is not a header field name");
    }
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
}

// A field value we send as configured (Cache-Control, Surrogate-Control).
void readFieldValue(NodeReader& reader, std::string_view key, std::string& out) {
  if (reader.readString(key, out) && !http::isValidFieldValue(out)) {
    reader.error(*reader.value(key), std::string(key) + " is not a valid header field value");
  }
}

void readKey(NodeReader& parent, std::vector<plugin::ConfigError>& errors, KeyOptions& key) {
  const auto node = parent.readMap("key");
  if (!node) return;
  NodeReader reader(*node, "cache key", errors);
  reader.allowKeys({"headers", "sort_query", "ignore_query_params"});
  readFieldNames(reader, "headers", key.headers);
  reader.readBool("sort_query", key.sortQuery);
  reader.readStrings("ignore_query_params", key.ignoredParams);
}

}  // namespace

std::shared_ptr<const plugin::RouteConfig> Factory::parse(
    const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const {
  const std::size_t errorsBefore = errors.size();
  auto reader = NodeReader::settings(settings, "cache", errors);
  reader.allowKeys({"max_bytes", "max_entry_bytes", "default_ttl", "heuristic", "heuristic_max",
                    "stale_if_error", "key", "targeted_field", "allow_authorized",
                    "allow_cookies", "store_set_cookie", "ignore_no_store", "ignore_private",
                    "ignore_no_cache", "honour_request_directives", "coalesce",
                    "coalesce_timeout", "max_waiters", "response_cache_control",
                    "surrogate_control", "store", "redis_max_entry_bytes"});
  auto config = std::make_shared<Settings>();
  StoreOptions storeOptions;
  reader.readSize("max_bytes", storeOptions.maxBytes, 1);
  reader.readSize("max_entry_bytes", storeOptions.maxEntryBytes, 1);
  if (storeOptions.maxEntryBytes > storeOptions.maxBytes && reader.has("max_entry_bytes")) {
    reader.error(*reader.value("max_entry_bytes"), "max_entry_bytes must not exceed max_bytes");
  }
  Policy& policy = config->policy;
  int64_t defaultTtl = 0;
  readSeconds(reader, "default_ttl", defaultTtl);
  if (defaultTtl > 0) policy.defaultTtl = defaultTtl;
  reader.readBool("heuristic", policy.heuristic);
  readSeconds(reader, "heuristic_max", policy.heuristicMax);
  readSeconds(reader, "stale_if_error", policy.staleIfErrorDefault);
  readKey(reader, errors, config->key);
  if (reader.readString("targeted_field", policy.targetedField) &&
      !http::isToken(policy.targetedField)) {
    reader.error(*reader.value("targeted_field"), "targeted_field must be a header field name");
  }
  reader.readBool("allow_authorized", config->allowAuthorized);
  reader.readBool("allow_cookies", config->allowCookies);
  reader.readBool("store_set_cookie", policy.storeSetCookie);
  reader.readBool("ignore_no_store", policy.ignoreNoStore);
  reader.readBool("ignore_private", policy.ignorePrivate);
  reader.readBool("ignore_no_cache", policy.ignoreNoCache);
  reader.readBool("honour_request_directives", policy.honourRequestDirectives);
  reader.readBool("coalesce", config->coalesce);
  config::Duration coalesceTimeout = config->coalesceTimeout;
  if (reader.readDuration("coalesce_timeout", coalesceTimeout, config::Duration(1))) {
    config->coalesceTimeout = coalesceTimeout;
  }
  std::size_t maxWaiters = 256;
  reader.readInt("max_waiters", maxWaiters, 1, 1 << 20);
  readFieldValue(reader, "response_cache_control", config->responseCacheControl);
  readFieldValue(reader, "surrogate_control", config->surrogateControl);
  reader.readEnum("store", config->redisStore, {{"memory", false}, {"redis", true}});
  reader.readSize("redis_max_entry_bytes", config->redisMaxEntryBytes, 1);
  if (errors.size() != errorsBefore) return nullptr;
  config->shared = std::make_unique<SharedCache>(storeOptions, maxWaiters);
  return config;
}

std::unique_ptr<plugin::WorkerState> Factory::makeWorkerState(
    const plugin::RouteConfig& config, plugin::Dispatcher& dispatcher) const {
  const auto& settings = static_cast<const Settings&>(config);
  if (!settings.redisStore) return nullptr;
  return std::make_unique<RedisPurgeRunner>(settings.shared->redisPurges, dispatcher);
}

std::unique_ptr<plugin::Plugin> Factory::create(const plugin::RouteConfig& config,
                                                plugin::WorkerState*) const {
  return std::make_unique<Cache>(static_cast<const Settings&>(config), slots());
}

std::span<const plugin::AdminEndpoint> Factory::adminEndpoints() const {
  return {&kPurgeEndpoint, 1};
}

}  // namespace gw::plugins::cache
