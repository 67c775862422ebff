#pragma once
// The cache plugin: one exchange's part in the route's shared response cache. A request either
// is answered from the store (fresh, allowed stale, a 304 or a range of it), or goes upstream —
// alone, as the leader of concurrent misses on its key, or after waiting for such a leader —
// possibly as a conditional revalidation of a stale entry. The response is then stored (bodies
// accumulated up to the entry cap), used to freshen the stale entry (304), or replaced by the
// stale entry when the upstream failed and stale-if-error allows it. Every response of a GET or
// HEAD says what happened in Cache-Status (RFC 9211). With `store: redis`, a memory miss asks
// Redis first (redis_tier.h) and a stored response is also sent there, for the other instances;
// Redis failing is a miss there, never a failed request.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/plugin/plugin.h"
#include "gateway/redis/client.h"
#include "plugins/cache/cache_config.h"

namespace gw::plugins::cache {

// The answer to `Cache-Control: only-if-cached` when nothing usable is stored (RFC 9111 §5.2.1.7).
inline constexpr core::ErrorCode kNotCached{504, "NOT_CACHED"};

class Cache final : public plugin::Plugin {
 public:
  Cache(const Settings& settings, plugin::Slots slots) : settings_(settings), slots_(slots) {}

  plugin::Status onRequestHeaders(plugin::Context& ctx) override;
  plugin::Status onResponseHeaders(plugin::Context& ctx) override;
  plugin::Status onResponseBody(plugin::Context& ctx, plugin::BodyView body, bool end) override;
  void onDestroy() noexcept override;

  // The leader of the fetch this exchange waits for has finished (posted to our worker).
  void leaderFinished(FetchGate::End end);

 private:
  enum class Phase : uint8_t {
    Idle,        // not a cacheable exchange (e.g. OPTIONS)
    Invalidate,  // an unsafe method: a success invalidates what is stored for its URL
    Bypass,      // the request may not use the cache
    InRedis,     // asking Redis after a memory miss (bounded by its command timeout)
    Waiting,     // another exchange fetches this key; we wait for it (bounded)
    Fetching,    // forwarded upstream: miss, revalidation, or fetch after a wait
    Answered,    // answered by the cache itself (from the store, or only-if-cached's 504)
  };
  // Shared with the gate's callback, which may outlive this exchange; cut in onDestroy.
  struct WaitLink {
    Cache* cache = nullptr;  // read and cut on this exchange's worker only
  };
  // Our GET in flight; cancelled in onDestroy.
  class RedisLookup final : public redis::Waiter {
   public:
    explicit RedisLookup(Cache& cache) : cache_(cache) {}
    void onReply(const redisReply* reply, redis::Failure failure) override {
      cache_.redisAnswered(reply, failure);
    }

   private:
    Cache& cache_;
  };

  // The request goes upstream without the cache: nothing read, nothing stored.
  plugin::Status bypass(std::string cacheStatus);
  // Answers from `entry` if it may serve this request now; else forwards (or waits).
  plugin::Status lookupAndDecide(plugin::Context& ctx, bool mayWait);
  plugin::Status forward(plugin::Context& ctx, bool mayWait);
  // Sends the GET of a Redis lookup; false (counted) when it cannot be sent: a miss.
  bool askRedis(plugin::Context& ctx, std::string_view key);
  void redisAnswered(const redisReply* reply, redis::Failure failure);
  // After a memory insert: the entry goes to Redis too (counted).
  void shareInRedis(plugin::Context& ctx, const FieldsView& request, const StoredResponse& stored);
  // What a Redis reply comes to: a hit (the entry is then in redisFound_), a miss, or another
  // GET sent for the variant a Vary stub points to (nullopt).
  std::optional<RedisResult> readRedisReply(plugin::Context& ctx, const redisReply* reply,
                                            redis::Failure failure);
  // Readies the request for the upstream: a stale entry's validators replace the client's
  // conditional and range fields (RFC 9111 §4.3.1), which are kept for answering it after a 304.
  void prepareFetch(plugin::Context& ctx);
  void resumeAlone();
  // Starts the one refresh of a stale entry that stale-while-revalidate allows, unless one of
  // this key is under way; the request itself is answered from the stale copy meanwhile.
  void refreshInBackground(plugin::Context& ctx,
                           const std::shared_ptr<const StoredResponse>& stale);
  // Answers the request from a stored response (304, 206/416 or the whole of it).
  void serve(plugin::Context& ctx, std::shared_ptr<const StoredResponse> entry,
             std::string cacheStatus, Outcome outcome);
  void handleUpstreamHead(plugin::Context& ctx);
  void freshenFromNotModified(plugin::Context& ctx);
  void invalidateAfterUnsafe(plugin::Context& ctx);
  void invalidateInRedis(plugin::Context& ctx);
  // Cache-Status and the configured downstream fields on what goes to the client.
  void decorate(plugin::Context& ctx);
  void finishLeading(FetchGate::End end = FetchGate::End::Answered);
  void stopWaiting();
  void onWaitTimeout();

  const Settings& settings_;
  plugin::Slots slots_;
  Phase phase_ = Phase::Idle;
  Outcome outcome_ = Outcome::Miss;
  plugin::Context* ctx_ = nullptr;  // the exchange's, valid until onDestroy
  RequestKey key_;
  RequestDirectives directives_;
  bool counted_ = false;
  bool shareable_ = false;  // the answer is one a shared cache may keep (see decorate())
  // The client's If-None-Match / If-Modified-Since / Range / If-Range, when prepareFetch()
  // replaced them with the stale entry's validators.
  bool conditionalsReplaced_ = false;
  std::vector<Field> clientConditionals_;
  std::string cacheStatus_;
  std::shared_ptr<const StoredResponse> stale_;   // the stored entry this fetch may replace
  std::shared_ptr<const StoredResponse> served_;  // keeps the fields serve() handed out alive
  std::vector<Field> notModified_;                // likewise for a 304's fields
  std::string age_;
  int64_t requestTime_ = 0;
  bool leading_ = false;
  // Response being stored.
  bool collecting_ = false;
  StoredMeta pendingMeta_;
  std::vector<Field> pendingFields_;
  std::string pendingBody_;
  // Waiting for a leader.
  std::shared_ptr<WaitLink> waitLink_;
  uint64_t waiterId_ = 0;
  std::unique_ptr<plugin::Timer> waitTimer_;
  int64_t waitDeadlineMs_ = 0;  // coalesce_timeout from the first wait (ctx.nowMs() clock)
  // The Redis tier: asked at most once per exchange.
  RedisLookup redisLookup_{*this};
  bool redisAsked_ = false;
  bool mayWaitAfterRedis_ = false;
  std::string redisKey_;                     // c:{D}
  std::vector<std::string> redisVaryNames_;  // from its stub, when the GET was for a variant
  uint64_t redisGeneration_ = 0;             // likewise (0: none)
  std::shared_ptr<const StoredResponse> redisFound_;
};

}  // namespace gw::plugins::cache
