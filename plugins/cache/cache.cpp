#include "plugins/cache/cache.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "gateway/core/fast_random.h"
#include "gateway/http/headers.h"
#include "plugins/cache/conditional.h"
#include "plugins/cache/http_date.h"
#include "plugins/cache/range.h"
#include "plugins/cache/redis_tier.h"

namespace gw::plugins::cache {
namespace {

// The engine's field lists as the cache core reads fields: a view, nothing copied.
template <typename List>
class ListFields final : public FieldsView {
 public:
  explicit ListFields(const List& list) : list_(list) {}
  std::size_t size() const override { return list_.size(); }
  std::pair<std::string_view, std::string_view> at(std::size_t i) const override {
    return list_.at(i);
  }

 private:
  const List& list_;
};
using HeaderFields = ListFields<plugin::HeaderMap>;
using BackgroundFields = ListFields<std::vector<std::pair<std::string, std::string>>>;

// HTTP's clocks are wall-clock seconds (Date, Expires, Age).
int64_t wallSeconds() { return static_cast<int64_t>(std::time(nullptr)); }

bool isCacheableMethod(std::string_view method) { return method == "GET" || method == "HEAD"; }

// RFC 9110 §9.2.1; every other method is unsafe and invalidates (RFC 9111 §4.4).
bool isSafeMethod(std::string_view method) {
  return isCacheableMethod(method) || method == "OPTIONS" || method == "TRACE";
}

std::optional<uint64_t> contentLength(const FieldsView& fields) {
  const auto text = firstValue(fields, "content-length");
  if (!text) return std::nullopt;
  uint64_t length = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), length);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return length;
}

// The fields a cache sends its own conditional with, and those a range request adds; kept from
// the client while the stale entry's validators go upstream.
constexpr std::string_view kClientConditionals[] = {"if-none-match", "if-modified-since",
                                                    "range", "if-range"};

bool isClientConditional(std::string_view name) {
  return std::any_of(std::begin(kClientConditionals), std::end(kClientConditionals),
                     [&](std::string_view c) { return http::iequals(c, name); });
}

// The conditional fields that revalidate a stored response (RFC 9111 §4.3.1).
std::vector<Field> validatorsOf(const StoredMeta& meta) {
  std::vector<Field> fields;
  if (!meta.etag.empty()) fields.push_back({"If-None-Match", meta.etag});
  if (meta.lastModified) {
    fields.push_back({"If-Modified-Since", formatHttpDate(*meta.lastModified)});
  }
  return fields;
}

std::string hitStatus(const StoredResponse& entry, int64_t now) {
  // RFC 9211 §2.5: ttl is the remaining freshness lifetime, negative when stale.
  return "gatewayd; hit; ttl=" + std::to_string(entry.meta.lifetime - currentAge(entry.meta, now));
}

void countRedis(plugin::Context& ctx, plugin::Slots slots, RedisResult result) {
  ctx.count(slots.counters + kRedisCounters + static_cast<uint32_t>(result));
}

// A new generation for a Vary stub; it only has to differ from the ones before it. Never 0,
// which stands for none.
uint64_t newGeneration() {
  thread_local core::FastRandom random;
  return random.next() | 1;
}

// After a memory insert with `store: redis`: the entry goes to Redis too, fire and forget, for as
// long as it may serve (redisLifetimeMs). Nothing when it has no time left or no key can hold
// it. A varying resource writes its stub and its variant (redis_tier.h), under `generation` (the
// stub's as read by this exchange, keeping the other variants stored with it) or, when 0, a new
// one.
std::optional<RedisResult> fillRedis(const Settings& settings, plugin::Dispatcher& dispatcher,
                                     const RequestKey& key, const FieldsView& request,
                                     const StoredResponse& response, uint64_t generation = 0) {
  if (!settings.redisStore) return std::nullopt;
  const int64_t lifetimeMs = redisLifetimeMs(response.meta, settings.policy, wallSeconds());
  std::string value;
  if (lifetimeMs <= 0 || !encodeRedisEntry(response, key.host, key.path, value)) {
    return std::nullopt;
  }
  if (value.size() > settings.redisMaxEntryBytes) return RedisResult::TooLarge;
  redis::Client* client = dispatcher.redis();
  if (!client) return RedisResult::Error;
  const std::string px = std::to_string(lifetimeMs);
  const std::string entryKey = redisEntryKey(client->keySpace(), key.primary);
  const auto set = [&](std::string_view target, std::string_view bytes) {
    const std::string_view argv[] = {"SET", target, bytes, "PX", px};
    return client->command(argv, nullptr) == redis::Failure::None;
  };
  if (response.varyNames.empty()) {
    return set(entryKey, value) ? RedisResult::Stored : RedisResult::Error;
  }
  std::string stub;
  std::string variant;
  const uint64_t stubGeneration = generation != 0 ? generation : newGeneration();
  encodeRedisVaryStub(response.varyNames, stubGeneration, key.host, key.path, stub);
  buildVariantKey(response.varyNames, request, variant);
  const bool sent =
      set(entryKey, stub) &&
      set(redisVariantKey(client->keySpace(), entryKey, stubGeneration, variant), value);
  return sent ? RedisResult::Stored : RedisResult::Error;
}

// RFC 9111 §4.3.4: the stale entry with a 304's fields merged in takes its place in the store,
// or, when the update made it unstorable (e.g. no-store now), the entry is removed. Returns the
// updated response (it still answers the request at hand) and whether it was stored.
std::pair<std::shared_ptr<const StoredResponse>, bool> freshen(
    const Settings& settings, const RequestKey& key, const FieldsView& request,
    const StoredResponse& stale, const FieldsView& notModified, int64_t requestTime,
    const RequestDirectives& directives, bool authorized) {
  std::vector<Field> merged = stale.fields;
  mergeNotModified(merged, notModified);
  const FieldSpan mergedView(merged);
  StoredMeta meta =
      analyseResponse(stale.status, mergedView, requestTime, wallSeconds(), settings.policy);
  const bool storable =
      storability("GET", authorized, directives, meta, settings.policy) == Storable::Yes;
  auto freshened = makeStoredResponse(stale.status, mergedView, stale.body, std::move(meta));
  CacheStore& store = settings.shared->store;
  if (storable) {
    store.insert(key, request, freshened);
  } else {
    store.invalidate(key.primary);
  }
  return {std::move(freshened), storable};
}

// A refresh running in the background (RFC 5861 §3): what its answer is judged and stored
// with. Owned by the engine's callback; it outlives the exchange that started it, never the
// worker (whose snapshot keeps the settings alive).
struct Refresh {
  const Settings* settings = nullptr;
  plugin::Dispatcher* dispatcher = nullptr;  // the worker the refresh runs and ends on
  RequestKey key;
  std::shared_ptr<const StoredResponse> stale;
  std::vector<Field> request;  // as sent upstream: the answer's variant is chosen by them
  bool authorized = false;
  int64_t requestTime = 0;

  // A 304 freshens the stale entry, a storable answer replaces it; anything else leaves it for
  // the next request within stale-while-revalidate to try again. The refresh is the cache's own
  // request: no client directive decides what it stores.
  void complete(plugin::BackgroundResponse& response) const {
    const FieldSpan requestView(request);
    const BackgroundFields fields(response.fields);
    const RequestDirectives own;
    if (response.status == 304) {
      auto [freshened, storable] =
          freshen(*settings, key, requestView, *stale, fields, requestTime, own, authorized);
      if (storable) fillRedis(*settings, *dispatcher, key, requestView, *freshened);
    } else if (response.status != 0) {
      StoredMeta meta =
          analyseResponse(response.status, fields, requestTime, wallSeconds(), settings->policy);
      CacheStore& store = settings->shared->store;
      if (storability("GET", authorized, own, meta, settings->policy) == Storable::Yes &&
          store.admits(response.body.size())) {
        auto body = std::make_shared<const std::string>(std::move(response.body));
        auto stored = makeStoredResponse(response.status, fields, std::move(body), std::move(meta));
        store.insert(key, requestView, stored);
        fillRedis(*settings, *dispatcher, key, requestView, *stored);
      }
    }
    // Whoever waits for this key looks again; after no answer at all, one of them fetches.
    settings->shared->gate.finishFetch(
        key.primary, response.status == 0 ? FetchGate::End::Abandoned : FetchGate::End::Answered);
  }
};

}  // namespace

plugin::Status Cache::onRequestHeaders(plugin::Context& ctx) {
  ctx_ = &ctx;
  const plugin::RequestInfo& info = ctx.request();
  const bool cacheable = isCacheableMethod(info.method);
  if (!cacheable && isSafeMethod(info.method)) return plugin::Status::Continue;
  const HeaderFields request(ctx.requestHeaders());
  // Keyed on what the backend receives: the Host value as forwarded, not the routing form.
  buildRequestKey(settings_.key, info.method, info.forwardedHost, info.path, info.query, request,
                  key_);
  if (!cacheable) {
    phase_ = Phase::Invalidate;
    return plugin::Status::Continue;
  }
  directives_ = requestDirectives(request, settings_.policy);
  // Safe by default: personalised requests neither read nor fill the cache unless opted in.
  const bool authorized = ctx.requestHeaders().get("authorization").has_value();
  const bool withCookie = ctx.requestHeaders().get("cookie").has_value();
  if ((authorized && !settings_.allowAuthorized) || (withCookie && !settings_.allowCookies)) {
    return bypass("gatewayd; fwd=bypass");
  }
  // The body is not in the key, and a backend may answer by it: such an answer is no one
  // else's, nor is a stored one this request's.
  if (info.hasBody) return bypass("gatewayd; fwd=bypass; detail=request-body");
  return lookupAndDecide(ctx, /*mayWait=*/true);
}

plugin::Status Cache::bypass(std::string cacheStatus) {
  phase_ = Phase::Bypass;
  outcome_ = Outcome::Bypass;
  cacheStatus_ = std::move(cacheStatus);
  return plugin::Status::Continue;
}

plugin::Status Cache::lookupAndDecide(plugin::Context& ctx, bool mayWait) {
  SharedCache& shared = *settings_.shared;
  bool otherVariants = false;
  auto entry = shared.store.lookup(key_.primary, HeaderFields(ctx.requestHeaders()), &otherVariants);
  if (!entry && settings_.redisStore && !redisAsked_) {
    redisAsked_ = true;
    mayWaitAfterRedis_ = mayWait;
    const redis::Client* client = ctx.dispatcher().redis();
    if (client) redisKey_ = redisEntryKey(client->keySpace(), key_.primary);
    if (askRedis(ctx, redisKey_)) return plugin::Status::Stop;
  }
  // Found in Redis but not kept in memory (e.g. larger than the memory store takes).
  if (auto fromRedis = std::exchange(redisFound_, nullptr); !entry) entry = std::move(fromRedis);
  const int64_t now = wallSeconds();
  cacheStatus_ = otherVariants ? "gatewayd; fwd=vary-miss" : "gatewayd; fwd=uri-miss";
  if (entry) {
    switch (evaluate(entry->meta, directives_, now, settings_.policy)) {
      case Decision::Fresh:
        serve(ctx, entry, hitStatus(*entry, now), Outcome::Hit);
        return plugin::Status::Respond;
      case Decision::ServeStale:
        serve(ctx, entry, hitStatus(*entry, now), Outcome::Stale);
        return plugin::Status::Respond;
      case Decision::StaleWhileRevalidate:
        // RFC 5861 §3: every request is answered from the stale copy at once, and the first one
        // starts one refresh that no client waits for.
        if (!directives_.onlyIfCached) refreshInBackground(ctx, entry);
        serve(ctx, entry, hitStatus(*entry, now) + "; detail=stale-while-revalidate",
              Outcome::Stale);
        return plugin::Status::Respond;
      case Decision::MustRevalidate:
      case Decision::Unusable:
        stale_ = std::move(entry);
        cacheStatus_ = directives_.noCache ? "gatewayd; fwd=request" : "gatewayd; fwd=stale";
        break;
    }
  }
  if (directives_.onlyIfCached) {
    // RFC 9111 §5.2.1.7: answer from the store or with 504, never upstream.
    phase_ = Phase::Answered;
    outcome_ = Outcome::Miss;
    cacheStatus_ = "gatewayd; fwd=miss; detail=only-if-cached";
    ctx.fail(core::Error::downstream(kNotCached,
                                     "only-if-cached: no stored response can answer this request"));
    return plugin::Status::Respond;
  }
  return forward(ctx, mayWait);
}

bool Cache::askRedis(plugin::Context& ctx, std::string_view key) {
  redis::Client* client = ctx.dispatcher().redis();
  const std::string_view argv[] = {"GET", key};
  if (!client || client->command(argv, &redisLookup_) != redis::Failure::None) {
    countRedis(ctx, slots_, RedisResult::Error);
    return false;
  }
  phase_ = Phase::InRedis;
  return true;
}

void Cache::redisAnswered(const redisReply* reply, redis::Failure failure) {
  plugin::Context& ctx = *ctx_;
  const auto result = readRedisReply(ctx, reply, failure);
  if (!result) return;  // the variant's GET is on its way
  countRedis(ctx, slots_, *result);
  if (lookupAndDecide(ctx, mayWaitAfterRedis_) == plugin::Status::Stop) return;
  ctx.resume();
}

std::optional<RedisResult> Cache::readRedisReply(plugin::Context& ctx, const redisReply* reply,
                                                 redis::Failure failure) {
  if (failure != redis::Failure::None) return RedisResult::Error;
  if (reply->type == REDIS_REPLY_NIL) return RedisResult::Miss;
  // Whatever Redis holds is checked like any input: too large or malformed is a miss.
  if (reply->type != REDIS_REPLY_STRING || reply->len > settings_.redisMaxEntryBytes) {
    return RedisResult::Error;
  }
  auto value = decodeRedisValue({reply->str, reply->len}, key_.host, key_.path, settings_.policy);
  if (!value) return RedisResult::Error;
  const HeaderFields request(ctx.requestHeaders());
  if (auto* stub = std::get_if<RedisVaryStub>(&*value)) {
    if (!redisVaryNames_.empty()) return RedisResult::Error;  // a stub where a variant should be
    redisVaryNames_ = std::move(stub->varyNames);
    redisGeneration_ = stub->generation;
    std::string variant;
    buildVariantKey(redisVaryNames_, request, variant);
    const redis::Client* client = ctx.dispatcher().redis();
    if (!client) return RedisResult::Error;
    if (!askRedis(ctx, redisVariantKey(client->keySpace(), redisKey_, redisGeneration_, variant))) {
      return RedisResult::Miss;  // counted as an error by askRedis
    }
    return std::nullopt;
  }
  auto& response = std::get<std::shared_ptr<const StoredResponse>>(*value);
  // Under the primary key only a response without Vary; under a variant key, its stub's names.
  if (response->varyNames != redisVaryNames_) return RedisResult::Error;
  settings_.shared->store.insert(key_, request, response);
  redisFound_ = std::move(response);
  return RedisResult::Hit;
}

void Cache::shareInRedis(plugin::Context& ctx, const FieldsView& request,
                         const StoredResponse& stored) {
  // The stub this exchange read stays, with its generation, when the names are still the same.
  const uint64_t generation = stored.varyNames == redisVaryNames_ ? redisGeneration_ : 0;
  if (const auto filled =
          fillRedis(settings_, ctx.dispatcher(), key_, request, stored, generation)) {
    countRedis(ctx, slots_, *filled);
  }
}

plugin::Status Cache::forward(plugin::Context& ctx, bool mayWait) {
  phase_ = Phase::Fetching;
  outcome_ = Outcome::Miss;
  if (mayWait && settings_.coalesce && !leading_) {
    waitLink_ = std::make_shared<WaitLink>(WaitLink{this});
    plugin::Dispatcher& dispatcher = ctx.dispatcher();
    // Runs on the leader's thread: hop to ours, where the link is read and cut.
    const auto ticket = settings_.shared->gate.beginFetch(
        key_.primary, [link = waitLink_, &dispatcher](FetchGate::End end) {
          dispatcher.post([link, end] {
            if (link->cache) link->cache->leaderFinished(end);
          });
        });
    switch (ticket.role) {
      case FetchGate::Role::Leader:
        leading_ = true;
        break;
      case FetchGate::Role::Alone:
        break;
      case FetchGate::Role::Waiter: {
        phase_ = Phase::Waiting;
        waiterId_ = ticket.id;
        if (!waitTimer_) {
          waitTimer_ = dispatcher.createTimer([this] { onWaitTimeout(); });
          waitDeadlineMs_ = ctx.nowMs() + settings_.coalesceTimeout.count();
        }
        // Waiting again behind a new leader does not extend the wait.
        waitTimer_->arm(std::max<int64_t>(0, waitDeadlineMs_ - ctx.nowMs()));
        return plugin::Status::Stop;
      }
    }
    waitLink_.reset();
  }
  prepareFetch(ctx);
  return plugin::Status::Continue;
}

void Cache::prepareFetch(plugin::Context& ctx) {
  phase_ = Phase::Fetching;
  requestTime_ = wallSeconds();
  if (!stale_ || !stale_->meta.hasValidator()) return;
  plugin::HeaderMap& request = ctx.requestHeaders();
  clientConditionals_.clear();
  for (std::string_view name : kClientConditionals) {
    if (const auto value = request.get(name)) {
      clientConditionals_.push_back({std::string(name), std::string(*value)});
      request.remove(name);
    }
  }
  conditionalsReplaced_ = true;
  for (const Field& validator : validatorsOf(stale_->meta)) {
    request.set(validator.name, validator.value);
  }
}

void Cache::refreshInBackground(plugin::Context& ctx,
                                const std::shared_ptr<const StoredResponse>& stale) {
  FetchGate& gate = settings_.shared->gate;
  const auto ticket = gate.beginFetch(key_.primary, {});
  if (ticket.role == FetchGate::Role::Waiter) gate.cancel(key_.primary, ticket.id);
  if (ticket.role != FetchGate::Role::Leader) return;  // a fetch of this key is under way
  auto refresh = std::make_shared<Refresh>();
  refresh->settings = &settings_;
  refresh->dispatcher = &ctx.dispatcher();
  refresh->key = key_;
  refresh->stale = stale;
  refresh->authorized = ctx.requestHeaders().get("authorization").has_value();
  refresh->requestTime = wallSeconds();
  // The whole answer is wanted, asked for with the entry's validators: the client's own
  // conditionals and range stay its business.
  ctx.requestHeaders().forEach([&](std::string_view name, std::string_view value) {
    if (!isClientConditional(name)) {
      refresh->request.push_back({std::string(name), std::string(value)});
    }
    return true;
  });
  for (Field& validator : validatorsOf(stale->meta)) {
    refresh->request.push_back(std::move(validator));
  }
  std::vector<plugin::Context::Field> fields;
  for (const Field& f : refresh->request) fields.emplace_back(f.name, f.value);
  const bool started = ctx.fetchInBackground(
      {fields, settings_.shared->store.entryLimit(), settings_.coalesceTimeout.count(),
       [refresh](plugin::BackgroundResponse& response) { refresh->complete(response); }});
  if (!started) gate.finishFetch(key_.primary, FetchGate::End::Abandoned);
}

void Cache::serve(plugin::Context& ctx, std::shared_ptr<const StoredResponse> entry,
                  std::string cacheStatus, Outcome outcome) {
  phase_ = Phase::Answered;
  outcome_ = outcome;
  shareable_ = true;  // it was stored, so a shared cache may keep it
  cacheStatus_ = std::move(cacheStatus);
  served_ = std::move(entry);
  const StoredResponse& stored = *served_;
  age_ = std::to_string(currentAge(stored.meta, wallSeconds()));
  const std::string_view method = ctx.request().method;
  const HeaderFields requestFields(ctx.requestHeaders());
  const FieldSpan savedFields(clientConditionals_);
  const FieldsView& asked =
      conditionalsReplaced_ ? static_cast<const FieldsView&>(savedFields) : requestFields;

  std::vector<plugin::Context::Field> fields;
  if (answersNotModified(method, asked, stored.meta)) {
    notModified_.clear();
    notModifiedFields(stored.fields, notModified_);
    for (const Field& f : notModified_) fields.emplace_back(f.name, f.value);
    fields.emplace_back("Age", age_);
    ctx.replyWith(304, fields, {});
    return;
  }
  const std::string& body = *stored.body;
  const RangeAnswer range = answerRange(method, firstValue(asked, "range"),
                                        firstValue(asked, "if-range"), body.size(), stored.meta);
  fields.reserve(stored.fields.size() + 2);
  for (const Field& f : stored.fields) fields.emplace_back(f.name, f.value);
  fields.emplace_back("Age", age_);
  switch (range.kind) {
    case RangeAnswer::Kind::Full:
      ctx.replyWith(stored.status, fields, body);
      return;
    case RangeAnswer::Kind::Partial:
      fields.emplace_back("Content-Range", range.contentRange);
      ctx.replyWith(range.status(), fields, body.substr(range.first, range.length));
      return;
    case RangeAnswer::Kind::Unsatisfiable:
      fields.emplace_back("Content-Range", range.contentRange);
      ctx.replyWith(range.status(), fields, {});
      return;
  }
}

plugin::Status Cache::onResponseHeaders(plugin::Context& ctx) {
  switch (phase_) {
    case Phase::Invalidate:
      invalidateAfterUnsafe(ctx);
      break;
    case Phase::Fetching:
      handleUpstreamHead(ctx);
      // Answered here means replaced: the phase runs again on our answer, decorated then.
      if (phase_ == Phase::Answered) return plugin::Status::Respond;
      break;
    default:
      break;
  }
  decorate(ctx);
  return plugin::Status::Continue;
}

void Cache::handleUpstreamHead(plugin::Context& ctx) {
  const int status = ctx.responseStatus();
  const int64_t now = wallSeconds();
  cacheStatus_ += "; fwd-status=" + std::to_string(status);
  if (stale_ && status == 304 && conditionalsReplaced_) {
    freshenFromNotModified(ctx);
    return;
  }
  if (stale_ && status >= 500 && staleIfErrorAllows(stale_->meta, directives_, now,
                                                    settings_.policy)) {
    finishLeading();
    std::string cacheStatus = std::move(cacheStatus_) + "; detail=stale-if-error";
    serve(ctx, std::move(stale_), std::move(cacheStatus), Outcome::Stale);
    return;
  }
  const HeaderFields response(ctx.responseHeaders());
  StoredMeta meta = analyseResponse(status, response, requestTime_, now, settings_.policy);
  const bool authorized = ctx.requestHeaders().get("authorization").has_value();
  Storable verdict = storability(ctx.request().method, authorized, directives_, meta,
                                 settings_.policy);
  const auto length = contentLength(response);
  if (verdict == Storable::Yes && length && !settings_.shared->store.admits(*length)) {
    cacheStatus_ += "; detail=too-large";
  } else if (verdict != Storable::Yes) {
    cacheStatus_ += "; detail=";
    cacheStatus_ += label(verdict);
  } else {
    cacheStatus_ += "; stored";
    shareable_ = true;
    collecting_ = true;
    pendingMeta_ = std::move(meta);
    pendingFields_.clear();
    for (std::size_t i = 0; i < response.size(); ++i) {
      auto [name, value] = response.at(i);
      pendingFields_.push_back({std::string(name), std::string(value)});
    }
    pendingBody_.clear();
    if (length) pendingBody_.reserve(*length);
    return;
  }
  // Nothing will be stored: whoever waits for this fetch may go on now.
  finishLeading();
}

void Cache::freshenFromNotModified(plugin::Context& ctx) {
  // The 304's fields update the stored response, which then answers.
  const bool authorized = ctx.requestHeaders().get("authorization").has_value();
  const HeaderFields request(ctx.requestHeaders());
  auto [freshened, storable] =
      freshen(settings_, key_, request, *stale_, HeaderFields(ctx.responseHeaders()), requestTime_,
              directives_, authorized);
  if (storable) shareInRedis(ctx, request, *freshened);
  finishLeading();
  std::string cacheStatus = std::move(cacheStatus_);
  if (storable) cacheStatus += "; stored";
  serve(ctx, std::move(freshened), std::move(cacheStatus), Outcome::Stale);
}

plugin::Status Cache::onResponseBody(plugin::Context& ctx, plugin::BodyView body, bool end) {
  if (collecting_) {
    CacheStore& store = settings_.shared->store;
    if (store.admits(pendingBody_.size() + body.size())) {
      pendingBody_.append(body);
    } else {
      // Larger than an entry may be: it streams on, uncached, and we stop holding a copy;
      // whoever waits for it may fetch on their own now.
      collecting_ = false;
      std::string().swap(pendingBody_);
      finishLeading();
    }
    if (end && collecting_) {
      collecting_ = false;
      auto stored = makeStoredResponse(pendingMeta_.status, FieldSpan(pendingFields_),
                                       std::make_shared<const std::string>(std::move(pendingBody_)),
                                       std::move(pendingMeta_));
      const HeaderFields request(ctx.requestHeaders());
      store.insert(key_, request, stored);
      shareInRedis(ctx, request, *stored);
    }
  }
  if (end) finishLeading();
  return plugin::Status::Continue;
}

void Cache::invalidateAfterUnsafe(plugin::Context& ctx) {
  // RFC 9111 §4.4: a non-error answer to an unsafe method invalidates the target URI, and the
  // Location / Content-Location URIs when they share its origin.
  const int status = ctx.responseStatus();
  if (status < 200 || status >= 400) return;
  CacheStore& store = settings_.shared->store;
  store.invalidateUrl(key_.url);
  invalidateInRedis(ctx);
  std::string url;
  for (std::string_view name : {"location", "content-location"}) {
    const auto target = ctx.responseHeaders().get(name);
    if (target && sameOriginUrl(settings_.key, *target, ctx.request().forwardedHost, url)) {
      store.invalidateUrl(url);
    }
  }
}

void Cache::invalidateInRedis(plugin::Context& ctx) {
  redis::Client* client = settings_.redisStore ? ctx.dispatcher().redis() : nullptr;
  if (!client) return;
  // The key a GET of this URL with this request's fields has: its entry or its Vary stub goes,
  // and with the stub its variants (a new stub gets a new generation). Other header values'
  // keys cannot be found from here; they leave Redis with their freshness.
  const plugin::RequestInfo& info = ctx.request();
  RequestKey asGet;
  buildRequestKey(settings_.key, "GET", info.forwardedHost, info.path, info.query,
                  HeaderFields(ctx.requestHeaders()), asGet);
  const std::string key = redisEntryKey(client->keySpace(), asGet.primary);
  const std::string_view argv[] = {"UNLINK", key};
  client->command(argv, nullptr);
}

void Cache::decorate(plugin::Context& ctx) {
  plugin::HeaderMap& response = ctx.responseHeaders();
  if (!cacheStatus_.empty()) {
    // RFC 9211 §2: each cache appends its member; the last one is the closest to the client.
    if (const auto upstream = response.get("cache-status")) {
      response.set("Cache-Status", std::string(*upstream) + ", " + cacheStatus_);
    } else {
      response.set("Cache-Status", cacheStatus_);
    }
    if (!counted_) {
      counted_ = true;
      const auto outcome = static_cast<uint32_t>(outcome_);
      ctx.count(slots_.counters + outcome);
      ctx.notes()[slots_.logFields] = kOutcomeNames[outcome];
    }
  }
  // What browsers and CDNs downstream are told: only for answers a shared cache may keep (served
  // from the store, or being stored), never for private, personalised or refused ones.
  if (!shareable_ || ctx.responseStatus() >= 400) return;
  if (!settings_.responseCacheControl.empty()) {
    response.set("Cache-Control", settings_.responseCacheControl);
  }
  if (!settings_.surrogateControl.empty()) {
    response.set("Surrogate-Control", settings_.surrogateControl);
  }
}

void Cache::finishLeading(FetchGate::End end) {
  if (!leading_) return;
  leading_ = false;
  settings_.shared->gate.finishFetch(key_.primary, end);
}

void Cache::stopWaiting() {
  if (phase_ == Phase::Waiting) settings_.shared->gate.cancel(key_.primary, waiterId_);
  if (waitLink_) {
    waitLink_->cache = nullptr;
    waitLink_.reset();
  }
  if (waitTimer_) waitTimer_->cancel();
}

void Cache::leaderFinished(FetchGate::End end) {
  if (phase_ != Phase::Waiting || !ctx_) return;
  stopWaiting();
  phase_ = Phase::Fetching;
  // The leader's answer is in the store if it could be stored; else we fetch on our own. A
  // leader whose exchange died left nothing: its waiters begin again, one leading the rest, so
  // one client leaving does not turn its waiters into as many origin fetches.
  const bool again = end == FetchGate::End::Abandoned;
  if (lookupAndDecide(*ctx_, /*mayWait=*/again) == plugin::Status::Stop) return;
  ctx_->resume();
}

void Cache::onWaitTimeout() {
  if (phase_ != Phase::Waiting) return;
  // If the leader's callback was already taken, its post will wake us: wait for that instead.
  if (!settings_.shared->gate.cancel(key_.primary, waiterId_)) return;
  resumeAlone();
}

void Cache::resumeAlone() {
  phase_ = Phase::Fetching;
  stopWaiting();
  prepareFetch(*ctx_);
  ctx_->resume();
}

void Cache::onDestroy() noexcept {
  redisLookup_.cancel();
  stopWaiting();
  finishLeading(FetchGate::End::Abandoned);  // still leading: the exchange ended unanswered
  ctx_ = nullptr;
}

}  // namespace gw::plugins::cache
