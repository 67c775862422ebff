#include "plugins/cache/cache.h"

#include <event2/event.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <string>
#include <utility>

#include "gateway/core/worker.h"
#include "gateway/http/headers.h"
#include "plugins/cache/conditional.h"
#include "plugins/cache/http_date.h"
#include "plugins/cache/range.h"

namespace gw::plugins::cache {
namespace {

// A plugin's header list as the cache core reads fields: a view, nothing copied.
class HeaderFields final : public FieldsView {
 public:
  explicit HeaderFields(const plugin::HeaderMap& map) : map_(map) {}
  std::size_t size() const override { return map_.size(); }
  std::pair<std::string_view, std::string_view> at(std::size_t i) const override {
    return map_.at(i);
  }

 private:
  const plugin::HeaderMap& map_;
};

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

std::string hitStatus(const StoredResponse& entry, int64_t now) {
  // RFC 9211 §2.5: ttl is the remaining freshness lifetime, negative when stale.
  return "gatewayd; hit; ttl=" + std::to_string(entry.meta.lifetime - currentAge(entry.meta, now));
}

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
      case Decision::StaleWhileRevalidate: {
        // One exchange refreshes the entry; meanwhile every other one is served the stale copy
        // (RFC 5861 §3), so a popular key never queues behind its refresh.
        const auto ticket = directives_.onlyIfCached ? FetchGate::Ticket{FetchGate::Role::Alone}
                                                     : shared.gate.beginFetch(key_.primary, {});
        if (ticket.role == FetchGate::Role::Leader) {
          leading_ = true;
          stale_ = std::move(entry);
          cacheStatus_ = "gatewayd; fwd=stale";
          return forward(ctx, /*mayWait=*/false);
        }
        if (ticket.role == FetchGate::Role::Waiter) shared.gate.cancel(key_.primary, ticket.id);
        serve(ctx, entry, hitStatus(*entry, now) + "; detail=stale-while-revalidate",
              Outcome::Stale);
        return plugin::Status::Respond;
      }
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
    ctx.fail(core::Error::downstream(core::ErrorCode::NotCached,
                                     "only-if-cached: no stored response can answer this request"));
    return plugin::Status::Respond;
  }
  return forward(ctx, mayWait);
}

plugin::Status Cache::forward(plugin::Context& ctx, bool mayWait) {
  phase_ = Phase::Fetching;
  outcome_ = Outcome::Miss;
  if (mayWait && settings_.coalesce && !leading_) {
    waitLink_ = std::make_shared<WaitLink>(WaitLink{this});
    core::Worker& worker = ctx.worker();
    // Runs on the leader's thread: hop to ours, where the link is read and cut.
    const auto ticket = settings_.shared->gate.beginFetch(
        key_.primary, [link = waitLink_, &worker](FetchGate::End end) {
          worker.post([link, end] {
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
          waitTimer_.reset(evtimer_new(worker.base(), &Cache::onWaitTimeout, this));
          waitDeadlineMs_ = ctx.nowMs() + settings_.coalesceTimeout.count();
        }
        // Waiting again behind a new leader does not extend the wait.
        const int64_t wait = std::max<int64_t>(0, waitDeadlineMs_ - ctx.nowMs());
        const timeval timeout{static_cast<time_t>(wait / 1000),
                              static_cast<suseconds_t>(wait % 1000 * 1000)};
        evtimer_add(waitTimer_.get(), &timeout);
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
  const StoredMeta& meta = stale_->meta;
  if (!meta.etag.empty()) request.set("If-None-Match", meta.etag);
  if (meta.lastModified) request.set("If-Modified-Since", formatHttpDate(*meta.lastModified));
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
      if (phase_ == Phase::Answered) return plugin::Status::Continue;
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
  // RFC 9111 §4.3.4: the 304's fields update the stored response, which then answers.
  std::vector<Field> merged = stale_->fields;
  mergeNotModified(merged, HeaderFields(ctx.responseHeaders()));
  const FieldSpan mergedView(merged);
  StoredMeta meta = analyseResponse(stale_->status, mergedView, requestTime_, wallSeconds(),
                                    settings_.policy);
  const bool authorized = ctx.requestHeaders().get("authorization").has_value();
  const bool storable =
      storability("GET", authorized, directives_, meta, settings_.policy) == Storable::Yes;
  auto freshened = makeStoredResponse(stale_->status, mergedView, stale_->body, std::move(meta));
  CacheStore& store = settings_.shared->store;
  if (storable) {
    store.insert(key_, HeaderFields(ctx.requestHeaders()), freshened);
  } else {
    store.invalidate(key_.primary);  // the update made it unstorable (e.g. no-store now)
  }
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
      store.insert(key_, HeaderFields(ctx.requestHeaders()), std::move(stored));
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
  std::string url;
  for (std::string_view name : {"location", "content-location"}) {
    const auto target = ctx.responseHeaders().get(name);
    if (target && sameOriginUrl(settings_.key, *target, ctx.request().forwardedHost, url)) {
      store.invalidateUrl(url);
    }
  }
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
      ctx.routeMetrics().countCache(outcome_);
      ctx.notes().cache = observability::kCacheResultNames[static_cast<std::size_t>(outcome_)];
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
  if (waitTimer_) event_del(waitTimer_.get());
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

void Cache::onWaitTimeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Cache*>(arg);
  if (self->phase_ != Phase::Waiting) return;
  // If the leader's callback was already taken, its post will wake us: wait for that instead.
  if (!self->settings_.shared->gate.cancel(self->key_.primary, self->waiterId_)) return;
  self->resumeAlone();
}

void Cache::resumeAlone() {
  phase_ = Phase::Fetching;
  stopWaiting();
  prepareFetch(*ctx_);
  ctx_->resume();
}

void Cache::onDestroy() noexcept {
  stopWaiting();
  finishLeading(FetchGate::End::Abandoned);  // still leading: the exchange ended unanswered
  ctx_ = nullptr;
}

}  // namespace gw::plugins::cache
