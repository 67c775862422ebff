#include "plugins/cache/cache.h"

#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <vector>

#include "plugins/cache/cache_config.h"
#include "plugins/cache/http_date.h"
#include "plugins/cache/purge_query.h"
#include "test/support/plugin_config.h"
#include "test/support/plugin_context.h"

using namespace gw;
using gw::plugin::Status;
using gw::plugins::cache::Factory;
using gw::plugins::cache::Settings;
using gw::test::TestContext;

namespace {

std::shared_ptr<const Settings> settings(const std::string& yaml) {
  std::vector<plugin::ConfigError> errors;
  auto parsed = Factory().parse(YAML::Load(yaml), errors);
  REQUIRE_MESSAGE(parsed, (errors.empty() ? "" : errors.front().message));
  return std::static_pointer_cast<const Settings>(parsed);
}

// Coalescing needs a worker's loop; these tests drive one exchange at a time without it.
constexpr const char* kPlain = "coalesce: false";

struct Origin {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;
};

// One exchange through a fresh plugin instance. `origin` answers if the plugin forwards;
// `forwarded` (if given) receives the request fields the upstream would have seen.
struct Exchange {
  TestContext ctx;
  Status requestStatus = Status::Continue;
  bool forwarded = false;
  std::vector<std::pair<std::string, std::string>> upstreamRequest;

  int status() const { return ctx.repliedStatus ? *ctx.repliedStatus : ctx.status; }
  std::string field(std::string_view name) const {
    const auto& fields = ctx.repliedStatus ? ctx.repliedFields : ctx.responseFields.fields;
    for (const auto& [n, v] : fields) {
      if (http::iequals(n, name)) return v;
    }
    return "";
  }
  std::string cacheStatus() const {
    // Cache-Status is added in the response phase, onto the reply's own fields.
    const auto value = ctx.responseFields.get("cache-status");
    return value ? std::string(*value) : "";
  }
};

// What the engine tells the plugin about the request beyond its fields.
struct Sent {
  std::string_view forwardedHost = "example.test";
  bool hasBody = false;
  bool acceptBackground = true;  // the engine takes a background fetch
};

std::unique_ptr<Exchange> run(const Settings& config, std::string method, std::string path,
                              std::vector<std::pair<std::string, std::string>> request,
                              const Origin& origin, const Sent& sent = {}) {
  auto x = std::make_unique<Exchange>();
  TestContext& ctx = x->ctx;
  ctx.info.method = method == "GET" ? "GET" : method == "HEAD" ? "HEAD" : "POST";
  ctx.info.forwardedHost = sent.forwardedHost;
  ctx.info.hasBody = sent.hasBody;
  ctx.acceptBackground = sent.acceptBackground;
  static thread_local std::string pathStorage;
  pathStorage = std::move(path);
  ctx.info.path = pathStorage;
  ctx.requestFields.fields = std::move(request);
  plugins::cache::Cache cache(config, {});
  x->requestStatus = cache.onRequestHeaders(ctx);
  if (x->requestStatus == Status::Continue) {
    x->forwarded = true;
    x->upstreamRequest = ctx.requestFields.fields;
    ctx.status = origin.status;
    ctx.responseFields.fields = origin.fields;
    cache.onResponseHeaders(ctx);
    if (ctx.repliedStatus) {
      // The cache replaced the upstream's answer: the response phase runs on the replacement.
      ctx.responseFields.fields = ctx.repliedFields;
      ctx.status = *ctx.repliedStatus;
      cache.onResponseHeaders(ctx);
    } else {
      cache.onResponseBody(ctx, origin.body, false);
      cache.onResponseBody(ctx, {}, true);
    }
  } else if (ctx.repliedStatus) {
    ctx.responseFields.fields = ctx.repliedFields;
    ctx.status = *ctx.repliedStatus;
    cache.onResponseHeaders(ctx);
  }
  cache.onDestroy();
  return x;
}

std::unique_ptr<Exchange> get(const Settings& config, std::string path, const Origin& origin,
                              std::vector<std::pair<std::string, std::string>> request = {}) {
  return run(config, "GET", std::move(path), std::move(request), origin);
}

const Origin kFresh{200, {{"Cache-Control", "max-age=60"}, {"ETag", "\"v1\""}}, "payload"};

// Stale at once, served stale for a minute while it is refreshed, revalidated with "v1".
Origin staleWhileRevalidate(std::string body) {
  return {200,
          {{"Cache-Control", "max-age=0, stale-while-revalidate=60"}, {"ETag", "\"v1\""}},
          std::move(body)};
}

}  // namespace

TEST_CASE("cache config: defaults, and every bad value located") {
  auto config = settings("");
  CHECK(config->coalesce);
  CHECK_FALSE(config->allowAuthorized);
  CHECK_FALSE(config->policy.defaultTtl);
  CHECK(config->shared != nullptr);

  CHECK(test::configErrors(Factory(), "max_bytes: lots") ==
        std::vector<std::string>{"1:12: 'max_bytes': invalid size 'lots': expected a whole "
                                 "number followed by B, KB, MB, GB, KiB, MiB or GiB"});
  const auto errors = test::configErrors(Factory(), R"(
default_ttl: 1500ms
key: {headers: ["bad name"], shuffle: true}
response_cache_control: "a\x01b"
colour: blue
)");
  REQUIRE(errors.size() == 5);
  CHECK(errors[0].find("5:1: unknown key 'colour' in cache; expected one of: max_bytes,") == 0);
  CHECK(errors[1] == "2:14: default_ttl must be whole seconds, got '1500ms'");
  CHECK(errors[2].find("3:30: unknown key 'shuffle' in cache key") == 0);
  CHECK(errors[3] == "3:16: headers: 'bad name' is not a header field name");
  CHECK(errors[4] == "4:25: response_cache_control is not a valid header field value");
}

TEST_CASE("cache: a storable miss is stored and the next request is a hit with Age") {
  auto config = settings(kPlain);
  auto miss = get(*config, "/a", kFresh);
  CHECK(miss->forwarded);
  CHECK(miss->cacheStatus() == "gatewayd; fwd=uri-miss; fwd-status=200; stored");
  CHECK(miss->ctx.exchangeNotes[0] == "miss");

  auto hit = get(*config, "/a", {500, {}, "the origin must not be asked"});
  CHECK_FALSE(hit->forwarded);
  CHECK(hit->status() == 200);
  CHECK(hit->ctx.repliedBody == "payload");
  CHECK(hit->field("ETag") == "\"v1\"");
  CHECK(hit->field("Age") == "0");
  CHECK(hit->cacheStatus().find("gatewayd; hit; ttl=") == 0);
  CHECK(hit->ctx.exchangeNotes[0] == "hit");
  CHECK(hit->ctx.counted[static_cast<std::size_t>(plugins::cache::Outcome::Hit)] == 1);

  auto head = run(*config, "HEAD", "/a", {}, {500, {}, ""});
  CHECK_FALSE(head->forwarded);
  CHECK(head->status() == 200);
}

TEST_CASE("cache: responses a shared cache must not store are passed on, with the reason") {
  auto config = settings(kPlain);
  struct Case {
    Origin origin;
    std::string detail;
  };
  for (const Case& c : std::vector<Case>{
           {{200, {{"Cache-Control", "no-store"}}, "x"}, "no-store"},
           {{200, {{"Cache-Control", "private, max-age=60"}}, "x"}, "private"},
           {{200, {{"Cache-Control", "max-age=60"}, {"Set-Cookie", "s=1"}}, "x"}, "set-cookie"},
           {{200, {}, "x"}, "no-freshness"},
           {{200, {{"Cache-Control", "max-age=60"}, {"Vary", "*"}}, "x"}, "vary-star"},
       }) {
    CAPTURE(c.detail);
    auto first = get(*config, "/p-" + c.detail, c.origin);
    CHECK(first->cacheStatus() ==
          "gatewayd; fwd=uri-miss; fwd-status=200; detail=" + c.detail);
    CHECK(get(*config, "/p-" + c.detail, c.origin)->forwarded);
  }
}

TEST_CASE("cache: Authorization and Cookie bypass the cache unless the route opts in") {
  auto config = settings(kPlain);
  get(*config, "/b", kFresh);
  auto authorized = get(*config, "/b", kFresh, {{"Authorization", "Bearer x"}});
  CHECK(authorized->forwarded);
  CHECK(authorized->cacheStatus() == "gatewayd; fwd=bypass");
  CHECK(authorized->ctx.exchangeNotes[0] == "bypass");
  CHECK(get(*config, "/b", kFresh, {{"Cookie", "s=1"}})->forwarded);

  auto optIn = settings("{coalesce: false, allow_cookies: true}");
  get(*optIn, "/b", kFresh);
  CHECK_FALSE(get(*optIn, "/b", kFresh, {{"Cookie", "s=1"}})->forwarded);
}

TEST_CASE("cache: a GET with a body neither reads nor fills the store") {
  auto config = settings(kPlain);
  const Sent withBody{.hasBody = true};
  auto first = run(*config, "GET", "/gb", {}, kFresh, withBody);
  CHECK(first->forwarded);
  CHECK(first->cacheStatus() == "gatewayd; fwd=bypass; detail=request-body");
  CHECK(first->ctx.exchangeNotes[0] == "bypass");
  CHECK(get(*config, "/gb", kFresh)->forwarded);  // nothing was stored
  CHECK_FALSE(get(*config, "/gb", kFresh)->forwarded);
  CHECK(run(*config, "GET", "/gb", {}, kFresh, withBody)->forwarded);
}

TEST_CASE("cache: the key holds the Host value as forwarded, port and all") {
  auto config = settings(kPlain);
  get(*config, "/h", kFresh);
  for (std::string_view host : {"example.test:6666", "example.test.", "EXAMPLE.test", ""}) {
    CAPTURE(host);
    CHECK(run(*config, "GET", "/h", {}, kFresh, {.forwardedHost = host})->forwarded);
  }
  CHECK_FALSE(get(*config, "/h", kFresh)->forwarded);
}

TEST_CASE("cache: default_ttl applies only when the upstream says nothing") {
  auto config = settings("{coalesce: false, default_ttl: 30s}");
  CHECK(get(*config, "/t", {200, {}, "x"})->cacheStatus().find("stored") != std::string::npos);
  auto hit = get(*config, "/t", {200, {}, "y"});
  CHECK(hit->cacheStatus() == "gatewayd; hit; ttl=30");
  // max-age=0 is the upstream's word: stored (it has a validator) but never served unasked.
  get(*config, "/zero", {200, {{"Cache-Control", "max-age=0"}, {"ETag", "\"z\""}}, "x"});
  CHECK(get(*config, "/zero", kFresh)->forwarded);
}

TEST_CASE("cache: a stale entry is revalidated with its validator; a 304 freshens it") {
  auto config = settings(kPlain);
  get(*config, "/r", {200, {{"Cache-Control", "max-age=0"}, {"ETag", "\"v1\""}}, "original"});
  auto revalidated = get(
      *config, "/r", {304, {{"Cache-Control", "max-age=60"}, {"ETag", "\"v1\""}}, ""},
      {{"If-None-Match", "\"other\""}});
  REQUIRE(revalidated->forwarded);
  // The upstream saw the stored validator, not the client's.
  bool sawStored = false;
  for (const auto& [n, v] : revalidated->upstreamRequest) {
    if (http::iequals(n, "if-none-match")) sawStored = v == "\"v1\"";
  }
  CHECK(sawStored);
  CHECK(revalidated->status() == 200);  // the client's "other" does not match v1
  CHECK(revalidated->ctx.repliedBody == "original");
  CHECK(revalidated->cacheStatus() == "gatewayd; fwd=stale; fwd-status=304; stored");
  CHECK(revalidated->ctx.exchangeNotes[0] == "stale");
  // Freshened for 60 s by the 304's Cache-Control.
  auto hit = get(*config, "/r", {500, {}, ""});
  CHECK_FALSE(hit->forwarded);
  CHECK(hit->field("Cache-Control") == "max-age=60");
}

TEST_CASE("cache: a 304 that makes the entry unstorable removes it") {
  auto config = settings(kPlain);
  get(*config, "/gone", {200, {{"Cache-Control", "max-age=0"}, {"ETag", "\"v1\""}}, "original"});
  auto revalidated =
      get(*config, "/gone", {304, {{"Cache-Control", "no-store"}, {"ETag", "\"v1\""}}, ""});
  REQUIRE(revalidated->forwarded);
  CHECK(revalidated->ctx.repliedBody == "original");  // this request is still answered
  CHECK(revalidated->cacheStatus() == "gatewayd; fwd=stale; fwd-status=304");
  // Nothing left to revalidate: the next request goes without a validator.
  auto next = get(*config, "/gone", kFresh);
  REQUIRE(next->forwarded);
  CHECK(next->cacheStatus() == "gatewayd; fwd=uri-miss; fwd-status=200; stored");
  for (const auto& [n, v] : next->upstreamRequest) CHECK_FALSE(http::iequals(n, "if-none-match"));
}

TEST_CASE("cache: within stale-while-revalidate the stale copy answers at once; one refresh runs") {
  auto config = settings(kPlain);
  const Origin swr = staleWhileRevalidate("old");
  get(*config, "/s", swr);
  // The client's own conditional and range do not go upstream: the refresh wants the whole answer.
  auto first = get(*config, "/s", {500, {}, "the client must not wait for the origin"},
                   {{"X-Tenant", "t"}, {"If-None-Match", "\"mine\""}, {"Range", "bytes=0-0"}});
  CHECK_FALSE(first->forwarded);
  CHECK(first->status() == 206);  // its Range is answered from the stale copy
  CHECK(first->ctx.repliedBody == "o");
  CHECK(first->cacheStatus().find("detail=stale-while-revalidate") != std::string::npos);
  REQUIRE(first->ctx.background.size() == 1);
  const auto& refresh = first->ctx.background.front();
  CHECK(refresh.fields == std::vector<std::pair<std::string, std::string>>{
                              {"X-Tenant", "t"}, {"If-None-Match", "\"v1\""}});
  CHECK(refresh.maxBodyBytes == 1 << 20);
  CHECK(refresh.timeoutMs == 5000);
  // While it runs, others are answered from the stale copy and start no second one.
  auto second = get(*config, "/s", {500, {}, ""});
  CHECK(second->ctx.repliedBody == "old");
  CHECK(second->ctx.background.empty());

  // Its answer replaces the entry.
  plugin::BackgroundResponse fresh{
      200, {{"Cache-Control", "max-age=60"}, {"ETag", "\"v2\""}}, "new"};
  refresh.done(fresh);
  auto hit = get(*config, "/s", {500, {}, ""});
  CHECK(hit->ctx.repliedBody == "new");
  CHECK(hit->cacheStatus().find("gatewayd; hit; ttl=") == 0);
  CHECK(hit->cacheStatus().find("stale") == std::string::npos);
}

TEST_CASE("cache: a background refresh's 304 freshens, a failure leaves the stale copy") {
  auto config = settings(kPlain);
  const Origin swr = staleWhileRevalidate("kept");
  get(*config, "/f", swr);
  // No answer (timeout, unreachable): the stale copy stays, the next request tries again.
  auto failing = get(*config, "/f", {500, {}, ""});
  REQUIRE(failing->ctx.background.size() == 1);
  plugin::BackgroundResponse none;
  failing->ctx.background.front().done(none);
  auto retry = get(*config, "/f", {500, {}, ""});
  CHECK(retry->ctx.repliedBody == "kept");
  REQUIRE(retry->ctx.background.size() == 1);
  // A 304 freshens the stored copy with its fields.
  plugin::BackgroundResponse notModified{304, {{"Cache-Control", "max-age=60"}}, ""};
  retry->ctx.background.front().done(notModified);
  auto hit = get(*config, "/f", {500, {}, ""});
  CHECK(hit->ctx.repliedBody == "kept");
  CHECK(hit->field("Cache-Control") == "max-age=60");
  CHECK(hit->field("ETag") == "\"v1\"");
  CHECK(hit->ctx.background.empty());
  // A refresh the worker cannot take now: still answered at once, the next request tries again.
  get(*config, "/g", swr);
  auto crowded = run(*config, "GET", "/g", {}, {500, {}, ""}, {.acceptBackground = false});
  CHECK(crowded->ctx.repliedBody == "kept");
  CHECK(get(*config, "/g", {500, {}, ""})->ctx.background.size() == 1);
}

TEST_CASE("cache: stale-if-error serves the stale copy when the upstream fails") {
  auto config = settings("{coalesce: false, stale_if_error: 1h}");
  get(*config, "/e", {200, {{"Cache-Control", "max-age=0"}}, "kept"});
  auto failed = get(*config, "/e", {503, {}, "down"});
  CHECK(failed->status() == 200);
  CHECK(failed->ctx.repliedBody == "kept");
  CHECK(failed->cacheStatus() ==
        "gatewayd; fwd=stale; fwd-status=503; detail=stale-if-error");

  auto strict = settings(kPlain);  // no window anywhere: the error goes through
  get(*strict, "/e", {200, {{"Cache-Control", "max-age=0"}}, "kept"});
  CHECK(get(*strict, "/e", {503, {}, "down"})->status() == 503);
}

TEST_CASE("cache: conditional and range requests are answered from a fresh entry") {
  auto config = settings(kPlain);
  get(*config, "/c", {200, {{"Cache-Control", "max-age=60"}, {"ETag", "W/\"7\""}}, "0123456789"});
  auto notModified = get(*config, "/c", kFresh, {{"If-None-Match", "\"7\""}});
  CHECK(notModified->status() == 304);
  CHECK(notModified->field("ETag") == "W/\"7\"");
  CHECK(notModified->ctx.repliedBody.empty());

  auto partial = get(*config, "/c", kFresh, {{"Range", "bytes=2-4"}});
  CHECK(partial->status() == 206);
  CHECK(partial->ctx.repliedBody == "234");
  CHECK(partial->field("Content-Range") == "bytes 2-4/10");
  auto unsatisfiable = get(*config, "/c", kFresh, {{"Range", "bytes=50-"}});
  CHECK(unsatisfiable->status() == 416);
  CHECK(unsatisfiable->field("Content-Range") == "bytes */10");
}

TEST_CASE("cache: only-if-cached without a stored answer is a 504 NOT_CACHED") {
  auto config = settings(kPlain);
  auto x = get(*config, "/o", kFresh, {{"Cache-Control", "only-if-cached"}});
  CHECK_FALSE(x->forwarded);
  REQUIRE(x->ctx.failedWith);
  CHECK(x->ctx.failedWith->code == plugins::cache::kNotCached);
}

TEST_CASE("cache: a successful unsafe request invalidates the URL and same-origin Location") {
  auto config = settings(kPlain);
  get(*config, "/items", kFresh);
  get(*config, "/items/9", kFresh);
  get(*config, "/other", kFresh);
  auto post = run(*config, "POST", "/items", {{"Host", "example.test"}},
                  {201, {{"Location", "/items/9"}}, ""});
  CHECK(post->forwarded);
  CHECK(post->cacheStatus().empty());
  CHECK(get(*config, "/items", kFresh)->forwarded);
  CHECK(get(*config, "/items/9", kFresh)->forwarded);
  CHECK_FALSE(get(*config, "/other", kFresh)->forwarded);
  // An error answer changes nothing.
  run(*config, "POST", "/other", {}, {500, {}, ""});
  CHECK_FALSE(get(*config, "/other", kFresh)->forwarded);
}

TEST_CASE("cache: a body over max_entry_bytes streams through and is not stored") {
  auto config = settings("{coalesce: false, max_entry_bytes: 4}");
  auto big = get(*config, "/big", {200, {{"Cache-Control", "max-age=60"}}, "0123456789"});
  CHECK(big->cacheStatus() == "gatewayd; fwd=uri-miss; fwd-status=200; stored");
  CHECK(get(*config, "/big", kFresh)->forwarded);
  auto announced = get(*config, "/big2",
                       {200, {{"Cache-Control", "max-age=60"}, {"Content-Length", "10"}}, "x"});
  CHECK(announced->cacheStatus() == "gatewayd; fwd=uri-miss; fwd-status=200; detail=too-large");
}

TEST_CASE("cache: downstream Cache-Control and Surrogate-Control are set on good answers") {
  auto config = settings(
      "{coalesce: false, response_cache_control: 'public, max-age=5', surrogate_control: "
      "'max-age=3600'}");
  auto ok = get(*config, "/d", kFresh);
  CHECK(ok->ctx.responseFields.get("cache-control") == "public, max-age=5");
  CHECK(ok->ctx.responseFields.get("surrogate-control") == "max-age=3600");
  auto hit = get(*config, "/d", kFresh);
  CHECK(hit->ctx.responseFields.get("cache-control") == "public, max-age=5");
  auto error = get(*config, "/e", {502, {{"Cache-Control", "no-store"}}, ""});
  CHECK(error->ctx.responseFields.get("cache-control") == "no-store");
  auto personal = get(*config, "/p", {200, {{"Cache-Control", "private, max-age=60"}}, "me"});
  CHECK(personal->ctx.responseFields.get("cache-control") == "private, max-age=60");
  CHECK_FALSE(personal->ctx.responseFields.get("surrogate-control"));
}

// ---- coalescing, driven through the fake dispatcher ----

namespace {

// One exchange held open across steps, as the engine does while the plugin waits or fetches.
struct OpenExchange {
  TestContext ctx;
  plugins::cache::Cache cache;
  Status requestStatus = Status::Continue;

  OpenExchange(const Settings& config, std::string_view path) : cache(config, {}) {
    ctx.info.path = path;
    requestStatus = cache.onRequestHeaders(ctx);
  }
  ~OpenExchange() { cache.onDestroy(); }
  // The upstream answers the fetch this exchange forwarded.
  void answer(const Origin& origin) {
    ctx.status = origin.status;
    ctx.responseFields.fields = origin.fields;
    cache.onResponseHeaders(ctx);
    cache.onResponseBody(ctx, origin.body, true);
  }
  // The engine's part after resume(): the phase goes on with what the plugin decided.
  bool answeredFromStore() const { return ctx.repliedStatus.has_value(); }
};

const std::string kCoalesce = "coalesce_timeout: 500ms";

}  // namespace

TEST_CASE("cache coalescing: a waiter is answered from what the leader stored") {
  const auto config = settings(kCoalesce);
  OpenExchange leader(*config, "/c");
  REQUIRE(leader.requestStatus == Status::Continue);  // leads: fetches
  OpenExchange waiter(*config, "/c");
  REQUIRE(waiter.requestStatus == Status::Stop);  // waits for the leader
  CHECK(waiter.ctx.loop->armedTimers() == 1);

  leader.answer(kFresh);
  CHECK(waiter.ctx.resumes == 0);  // told on the leader's thread, woken on its own worker
  CHECK(waiter.ctx.loop->runPosted() == 1);
  CHECK(waiter.ctx.resumes == 1);
  REQUIRE(waiter.answeredFromStore());
  CHECK(*waiter.ctx.repliedStatus == 200);
  CHECK(waiter.ctx.repliedBody == "payload");
  CHECK(waiter.ctx.loop->armedTimers() == 0);  // the wait timer is cancelled
}

TEST_CASE("cache coalescing: a waiter whose leader is slow fetches itself at coalesce_timeout") {
  const auto config = settings(kCoalesce);
  OpenExchange leader(*config, "/slow");
  OpenExchange waiter(*config, "/slow");
  REQUIRE(waiter.requestStatus == Status::Stop);
  waiter.ctx.loop->advance(499);
  CHECK(waiter.ctx.resumes == 0);
  waiter.ctx.loop->advance(1);
  CHECK(waiter.ctx.resumes == 1);
  CHECK_FALSE(waiter.answeredFromStore());  // resumed to go upstream on its own
  // The leader finishing later no longer concerns the waiter.
  leader.answer(kFresh);
  CHECK(waiter.ctx.loop->runPosted() == 0);
  CHECK(waiter.ctx.resumes == 1);
}

TEST_CASE("cache coalescing: when the leading client leaves, one waiter fetches for the others") {
  const auto config = settings(kCoalesce);
  auto leader = std::make_unique<OpenExchange>(*config, "/left");
  OpenExchange first(*config, "/left");
  OpenExchange second(*config, "/left");
  REQUIRE(first.requestStatus == Status::Stop);
  REQUIRE(second.requestStatus == Status::Stop);

  leader.reset();  // its client went away before any answer: the fetch is abandoned
  first.ctx.loop->runPosted();
  second.ctx.loop->runPosted();
  // Exactly one of them leads the next fetch (resumed to go upstream); the other waits on.
  OpenExchange& fetching = first.ctx.resumes == 1 ? first : second;
  OpenExchange& waiting = first.ctx.resumes == 1 ? second : first;
  REQUIRE(fetching.ctx.resumes == 1);
  CHECK_FALSE(fetching.answeredFromStore());
  CHECK(waiting.ctx.resumes == 0);

  fetching.answer(kFresh);
  CHECK(waiting.ctx.loop->runPosted() == 1);
  CHECK(waiting.ctx.resumes == 1);
  REQUIRE(waiting.answeredFromStore());
  CHECK(waiting.ctx.repliedBody == "payload");
}

TEST_CASE("cache coalescing: waiting behind a new leader does not extend the wait") {
  const auto config = settings(kCoalesce);
  auto leader = std::make_unique<OpenExchange>(*config, "/again");
  OpenExchange first(*config, "/again");
  OpenExchange second(*config, "/again");
  first.ctx.loop->advance(300);
  second.ctx.loop->advance(300);
  leader.reset();
  first.ctx.loop->runPosted();
  second.ctx.loop->runPosted();
  OpenExchange& waiting = first.ctx.resumes == 1 ? second : first;
  REQUIRE(waiting.ctx.resumes == 0);
  waiting.ctx.loop->advance(199);
  CHECK(waiting.ctx.resumes == 0);
  waiting.ctx.loop->advance(1);  // 500 ms after it first waited
  CHECK(waiting.ctx.resumes == 1);
  CHECK_FALSE(waiting.answeredFromStore());
}

TEST_CASE("cache coalescing: an exchange torn down while waiting leaves no timer or wake-up") {
  const auto config = settings(kCoalesce);
  OpenExchange leader(*config, "/gone");
  auto waiter = std::make_unique<OpenExchange>(*config, "/gone");
  REQUIRE(waiter->requestStatus == Status::Stop);
  auto loop = std::move(waiter->ctx.loop);
  waiter->ctx.loop = std::make_unique<test::FakeDispatcher>();
  waiter.reset();
  CHECK(loop->armedTimers() == 0);
  leader.answer(kFresh);
  CHECK(loop->runPosted() == 0);  // the leader no longer knows the waiter
}

TEST_CASE("cache purge endpoint: DELETE /cache over the routes' stores, each store once") {
  const auto shared = settings(kPlain);  // bound globally: on both routes
  const auto own = settings(kPlain);     // on route "b" only
  get(*shared, "/items/1", kFresh);
  get(*shared, "/items/2", kFresh);
  get(*own, "/items/1", kFresh);
  REQUIRE(get(*shared, "/items/1", kFresh)->status() == 200);
  const std::vector<plugin::BoundRoute> routes = {
      {"a", {shared.get()}}, {"b", {shared.get(), own.get()}}, {"c", {}}};
  const auto endpoints = Factory().adminEndpoints();
  REQUIRE(endpoints.size() == 1);
  CHECK(endpoints[0].method == "DELETE");
  CHECK(endpoints[0].path == "/cache");
  const auto purge = [&](std::string_view query) { return endpoints[0].handle(query, routes); };

  const auto bad = purge("path=/x&bogus=1");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == core::ErrorCode::BadRequest);
  const auto unknown = purge("path=/items/1&route=nope");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == plugins::cache::kNoSuchRoute);
  CHECK(unknown.error().message == "no route named 'nope'");

  CHECK(*purge("path=/items/1&route=c") == "{\"purged\":0}\n");
  CHECK(*purge("path=/items/1&route=a") == "{\"purged\":1}\n");  // the shared store only
  CHECK(*purge("prefix=/items/") == "{\"purged\":2}\n");  // shared's /items/2, own's /items/1
  CHECK(*purge("prefix=/") == "{\"purged\":0}\n");
}
