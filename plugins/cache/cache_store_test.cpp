#include "plugins/cache/cache_store.h"

#include <doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <random>
#include <thread>
#include <vector>

namespace gw::plugins::cache {
namespace {

using Fields = std::vector<Field>;
constexpr int64_t kT = 1795000000;

std::shared_ptr<const StoredResponse> response(const Fields& fields, std::string body = "body") {
  FieldSpan view(fields);
  return makeStoredResponse(200, view, std::make_shared<const std::string>(std::move(body)),
                            analyseResponse(200, view, kT, kT, Policy()));
}

RequestKey key(std::string_view path, std::string_view host = "h", const Fields& request = {},
               const KeyOptions& options = {}) {
  RequestKey k;
  buildRequestKey(options, "GET", host, path, "", FieldSpan(request), k);
  return k;
}

std::shared_ptr<const StoredResponse> lookup(CacheStore& store, const RequestKey& k,
                                             const Fields& request = {}) {
  return store.lookup(k.primary, FieldSpan(request));
}

bool insert(CacheStore& store, const RequestKey& k, std::shared_ptr<const StoredResponse> r,
            const Fields& request = {}) {
  return store.insert(k, FieldSpan(request), std::move(r));
}

TEST_CASE("cache_store: makeStoredResponse drops what a shared cache must not keep") {
  auto r = response({{"Content-Type", "text/plain"},
                     {"Connection", "X-Hop"},
                     {"X-Hop", "1"},
                     {"Keep-Alive", "timeout=1"},
                     {"Transfer-Encoding", "chunked"},
                     {"Age", "5"},
                     {"Cache-Control", "max-age=5, private=\"X-User\""},
                     {"X-User", "alice"},
                     {"Vary", "Accept-Language"}});
  std::vector<std::string> names;
  for (const Field& f : r->fields) names.push_back(f.name);
  CHECK(names == std::vector<std::string>{"Content-Type", "Cache-Control", "Vary"});
  CHECK(r->meta.ageValue == 5);  // still known to freshness
  CHECK(r->varyNames == std::vector<std::string>{"accept-language"});
  CHECK(*r->body == "body");
  CHECK(r->size() > 4);
}

TEST_CASE("cache_store: variants by Vary") {
  CacheStore store({1 << 20, 1 << 16});
  const Fields vary{{"Vary", "Accept-Language"}};
  auto k = key("/a");
  const Fields en{{"Accept-Language", "en"}}, de{{"Accept-Language", "de"}};
  REQUIRE(insert(store, k, response(vary, "en"), en));
  REQUIRE(insert(store, k, response(vary, "de"), de));
  CHECK(*lookup(store, k, en)->body == "en");
  CHECK(*lookup(store, k, de)->body == "de");
  CHECK(*lookup(store, k, {{"accept-language", " en "}})->body == "en");
  CHECK(lookup(store, k, {}) == nullptr);
  CHECK(*lookup(store, k, {{"Accept-Language", "en"}, {"Accept-Encoding", "gzip"}})->body == "en");
  CHECK(store.stats().entries == 2);
  bool otherVariants = false;
  CHECK(store.lookup(k.primary, FieldSpan(Fields{}), &otherVariants) == nullptr);
  CHECK(otherVariants);  // a vary-miss
  CHECK(store.lookup(key("/b").primary, FieldSpan(Fields{}), &otherVariants) == nullptr);
  CHECK_FALSE(otherVariants);  // a uri-miss

  // Same variant: replaced.
  REQUIRE(insert(store, k, response(vary, "en2"), en));
  CHECK(*lookup(store, k, en)->body == "en2");
  CHECK(store.stats().entries == 2);

  // The origin now varies on something else: old variants go.
  REQUIRE(insert(store, k, response({{"Vary", "Cookie"}}, "c"), {{"Cookie", "a=1"}}));
  CHECK(lookup(store, k, de) == nullptr);
  CHECK(*lookup(store, k, {{"Cookie", "a=1"}})->body == "c");
  CHECK(store.stats().entries == 1);
}

TEST_CASE("cache_store: byte bound with LRU eviction; the per-entry cap") {
  auto r = response({}, std::string(1000, 'x'));
  const std::size_t one = r->size() + 2 * key("/0").primary.size() + 200;
  CacheStore store({3 * one, 2000});
  CHECK(store.admits(2000));
  CHECK_FALSE(store.admits(2001));
  CHECK_FALSE(insert(store, key("/big"), response({}, std::string(3000, 'x'))));

  for (const char* p : {"/0", "/1", "/2"}) REQUIRE(insert(store, key(p), r));
  CHECK(store.stats().entries == 3);
  CHECK(lookup(store, key("/0")) != nullptr);  // /1 is now the least recently used
  auto held = lookup(store, key("/1"));        // ...until this touch
  CHECK(lookup(store, key("/0")) != nullptr);
  // Order now (LRU first): /2, /1, /0.
  REQUIRE(insert(store, key("/3"), response({}, std::string(1000, 'y'))));
  auto stats = store.stats();
  CHECK(stats.entries == 3);
  CHECK(stats.evictions == 1);
  CHECK(stats.inserts == 4);
  CHECK(stats.bytes <= 3 * one);
  CHECK(lookup(store, key("/2")) == nullptr);
  CHECK(lookup(store, key("/1")) != nullptr);
  // A hit keeps its bytes alive after eviction.
  for (const char* p : {"/4", "/5", "/6"}) REQUIRE(insert(store, key(p), r));
  CHECK(lookup(store, key("/1")) == nullptr);
  CHECK(held->body->size() == 1000);
}

TEST_CASE("cache_store: invalidate, invalidateUrl and purge") {
  CacheStore store({1 << 20, 1 << 16});
  KeyOptions byTenant;
  byTenant.headers = {"x-tenant"};
  auto a1 = key("/api/items", "h", {{"X-Tenant", "1"}}, byTenant);
  auto a2 = key("/api/items", "h", {{"X-Tenant", "2"}}, byTenant);
  auto other = key("/api/other", "h");
  auto elsewhere = key("/api/items", "g");
  const Fields vary{{"Vary", "Accept-Language"}};
  REQUIRE(insert(store, a1, response(vary), {{"Accept-Language", "en"}}));
  REQUIRE(insert(store, a1, response(vary), {{"Accept-Language", "de"}}));
  REQUIRE(insert(store, a2, response({})));
  REQUIRE(insert(store, other, response({})));
  REQUIRE(insert(store, elsewhere, response({})));
  CHECK(store.stats().entries == 5);

  CHECK(store.invalidate(a1.primary) == 2);
  CHECK(store.invalidate(a1.primary) == 0);
  REQUIRE(insert(store, a1, response({})));
  // A POST to /api/items on h: every stored GET of that URL, whatever the tenant.
  RequestKey post;
  buildRequestKey(byTenant, "POST", "H", "/api/items", "", FieldSpan(Fields{}), post);
  CHECK(store.invalidateUrl(post.url) == 2);
  CHECK(store.invalidateUrl(post.url) == 0);
  CHECK(lookup(store, other) != nullptr);
  CHECK(lookup(store, elsewhere) != nullptr);

  REQUIRE(insert(store, a1, response({})));
  CHECK(store.purge("h", "/api/o", false) == 0);  // exact: /api/other is not /api/o
  CHECK(store.purge("g", "/api/items", false) == 1);
  REQUIRE(insert(store, elsewhere, response({})));
  CHECK(store.purge("h", "/api/o", true) == 1);
  CHECK(store.purge("", "/api/", true) == 2);
  CHECK(store.stats().entries == 0);
  CHECK(store.stats().bytes == 0);
}

TEST_CASE("cache_store: concurrent inserts, lookups and invalidations stay within the bound") {
  auto small = response({{"Vary", "X-V"}}, std::string(500, 's'));
  const std::size_t maxBytes = 40 * (small->size() + 100);
  CacheStore store({maxBytes, 4096});
  std::atomic<bool> overBound{false};
  std::atomic<int> hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 4000; ++i) {
        auto k = key("/k" + std::to_string(rng() % 100));
        const Fields request{{"X-V", std::to_string(rng() % 3)}};
        switch (rng() % 4) {
          case 0:
          case 1:
            insert(store, k, small, request);
            break;
          case 2:
            if (auto hit = lookup(store, k, request)) {
              hits += hit->body->size() == 500 ? 1 : 0;
            }
            break;
          default:
            if (rng() % 10 == 0) store.invalidateUrl(k.url);
            break;
        }
        if (store.stats().bytes > maxBytes) overBound = true;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK_FALSE(overBound.load());
  auto stats = store.stats();
  CHECK(stats.bytes <= maxBytes);
  CHECK(stats.evictions > 0);
  CHECK(hits.load() > 0);
  CHECK(store.purge("", "", true) == stats.entries);
  CHECK(store.stats().bytes == 0);
}

TEST_CASE("fetch_gate: one leader, bounded waiters, cancel, finish") {
  FetchGate gate(2);
  int called = 0;
  auto count = [&](FetchGate::End) { ++called; };
  CHECK(gate.beginFetch("k", count).role == FetchGate::Role::Leader);
  auto w1 = gate.beginFetch("k", count);
  auto w2 = gate.beginFetch("k", count);
  CHECK(w1.role == FetchGate::Role::Waiter);
  CHECK(w2.role == FetchGate::Role::Waiter);
  CHECK(w1.id != w2.id);
  CHECK(gate.beginFetch("k", count).role == FetchGate::Role::Alone);
  CHECK(gate.beginFetch("other", count).role == FetchGate::Role::Leader);
  CHECK(gate.inFlight() == 2);

  CHECK(gate.cancel("k", w1.id));
  CHECK_FALSE(gate.cancel("k", w1.id));
  CHECK(gate.beginFetch("k", count).role == FetchGate::Role::Waiter);  // the slot is free again
  gate.finishFetch("k");
  CHECK(called == 2);
  CHECK_FALSE(gate.cancel("k", w2.id));  // already called
  CHECK(gate.beginFetch("k", count).role == FetchGate::Role::Leader);
  gate.finishFetch("k");
  gate.finishFetch("other");
  gate.finishFetch("never-started");
  CHECK(called == 2);
  CHECK(gate.inFlight() == 0);
}

TEST_CASE("fetch_gate: waiters of an abandoned fetch are told so, and one of them leads next") {
  FetchGate gate(8);
  std::vector<FetchGate::End> told;
  auto record = [&](FetchGate::End end) { told.push_back(end); };
  REQUIRE(gate.beginFetch("k", record).role == FetchGate::Role::Leader);
  REQUIRE(gate.beginFetch("k", record).role == FetchGate::Role::Waiter);
  REQUIRE(gate.beginFetch("k", record).role == FetchGate::Role::Waiter);
  gate.finishFetch("k", FetchGate::End::Abandoned);
  CHECK(told == std::vector<FetchGate::End>{FetchGate::End::Abandoned, FetchGate::End::Abandoned});
  CHECK(gate.inFlight() == 0);
  // What each told waiter does next: begin again.
  CHECK(gate.beginFetch("k", record).role == FetchGate::Role::Leader);
  CHECK(gate.beginFetch("k", record).role == FetchGate::Role::Waiter);
  told.clear();
  gate.finishFetch("k");
  CHECK(told == std::vector<FetchGate::End>{FetchGate::End::Answered});
}

TEST_CASE("fetch_gate: concurrent misses make one fetch; every waiter is told") {
  FetchGate gate(64);
  constexpr int kThreads = 16;
  std::atomic<int> leaders{0}, waiters{0}, notified{0}, ready{0};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto ticket = gate.beginFetch("hot", [&](FetchGate::End) { ++notified; });
      if (ticket.role == FetchGate::Role::Leader) {
        ++leaders;
      } else {
        ++waiters;
      }
      {
        std::lock_guard lock(mu);
        ++ready;
      }
      cv.notify_all();
      if (ticket.role == FetchGate::Role::Leader) {
        std::unique_lock lock(mu);
        // Bounded wait for every other thread to register before the leader finishes.
        cv.wait_for(lock, std::chrono::seconds(10), [&] { return ready.load() == kThreads; });
        lock.unlock();
        gate.finishFetch("hot");
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(leaders.load() == 1);
  CHECK(waiters.load() == kThreads - 1);
  CHECK(notified.load() == kThreads - 1);
  CHECK(gate.inFlight() == 0);
}

}  // namespace
}  // namespace gw::plugins::cache
