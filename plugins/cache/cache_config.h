#pragma once
// The cache plugin type: its settings (see docs/plugins.md#cache for every key) and the state
// all workers share for one route binding: the store and the gate that coalesces misses.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"
#include "plugins/cache/cache_key.h"
#include "plugins/cache/cache_store.h"
#include "plugins/cache/freshness.h"
#include "plugins/cache/redis_purge.h"

namespace gw::plugins::cache {

// What every worker's exchanges on the route share; thread-safe. The admin purge (DELETE /cache,
// purge_query.h) reaches it through the route's settings.
struct SharedCache {
  SharedCache(StoreOptions storeOptions, std::size_t maxWaiters)
      : store(storeOptions), gate(maxWaiters) {}

  CacheStore store;
  FetchGate gate;
  RedisPurges redisPurges;  // `store: redis` only
};

struct Settings final : plugin::RouteConfig {
  Policy policy;
  KeyOptions key;
  // Requests with Authorization may use the cache; their answers are still stored only when
  // public, s-maxage or must-revalidate says so (RFC 9111 §3.5).
  bool allowAuthorized = false;
  bool allowCookies = false;     // serve stored responses to requests with Cookie
  bool coalesce = true;
  std::chrono::milliseconds coalesceTimeout{5000};
  std::string responseCacheControl;  // empty: leave Cache-Control as it is
  std::string surrogateControl;      // empty: none
  // `store: redis`: a second tier shared by every instance on the configured Redis
  // (redis_tier.h); entries larger than redisMaxEntryBytes stay in memory only.
  bool redisStore = false;
  std::size_t redisMaxEntryBytes = 1 << 20;
  std::unique_ptr<SharedCache> shared;

  bool usesRedis() const override { return redisStore; }
};

// What a lookup came to: the `cache` access-log field and the `result` of the plugin's counter,
// whose numbers are the enumerators (one series per result).
enum class Outcome : uint8_t { Hit, Miss, Stale, Bypass };
inline constexpr std::string_view kOutcomeNames[] = {"hit", "miss", "stale", "bypass"};
// What the Redis tier did (`store: redis`): numbered after the outcomes.
enum class RedisResult : uint8_t { Hit, Miss, Error, Stored, TooLarge };
inline constexpr std::string_view kRedisResultNames[] = {"hit", "miss", "error", "stored",
                                                         "too_large"};
inline constexpr uint32_t kRedisCounters = std::size(kOutcomeNames);
inline constexpr observability::CounterFamily kCounterFamilies[] = {
    {"gatewayd_cache_requests_total", "Cache lookups by route and result.", "result",
     kOutcomeNames},
    {"gatewayd_cache_redis_total",
     "Cache Redis tier by route and result: lookups after a memory miss (hit, miss, error), "
     "fills (stored, too_large).",
     "result", kRedisResultNames},
};
inline constexpr std::string_view kLogFields[] = {"cache"};

class Factory final : public plugin::Factory {
 public:
  std::string_view name() const override { return "cache"; }
  std::span<const observability::CounterFamily> counters() const override {
    return kCounterFamilies;
  }
  std::span<const std::string_view> logFields() const override { return kLogFields; }
  std::span<const plugin::AdminEndpoint> adminEndpoints() const override;
  std::shared_ptr<const plugin::RouteConfig> parse(
      const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const override;
  std::unique_ptr<plugin::WorkerState> makeWorkerState(
      const plugin::RouteConfig& config, plugin::Dispatcher& dispatcher) const override;
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig& config,
                                         plugin::WorkerState*) const override;
};

}  // namespace gw::plugins::cache
