// rate_limit through the real gatewayd: the 429 and its headers, header styles, shadow mode, keys,
// eviction, and the accuracy of one limit shared by several workers under concurrent load.
#include <doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <regex>
#include <thread>
#include <tuple>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// One catch-all route whose plugin list is `plugins` (YAML list items indented by 6).
std::string routeConfig(const Backend& b, std::string_view plugins, int workers = 1) {
  return subst(R"(workers: ${W}
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends:
      - ${B}
routes:
  - match: {prefix: /}
    upstream: main
    plugins:
${P})",
               {{"W", std::to_string(workers)}, {"B", b.address()}, {"P", std::string(plugins)}});
}

std::string config(const Backend& b, std::string_view settings, int workers = 1) {
  return routeConfig(b, "      - rate_limit: " + std::string(settings) + "\n", workers);
}

struct Draft {
  bool valid = false;
  std::string name;
  long remaining = -1;
  long reset = -1;
};

// RateLimit: "name";r=N;t=N (draft-ietf-httpapi-ratelimit-headers-08 and later).
Draft parseDraft(const Response& r) {
  static const std::regex kField(R"re(^"([A-Za-z0-9_.-]+)";r=([0-9]+);t=([0-9]+)$)re");
  Draft d;
  const std::string v = r.header("RateLimit").value_or("");
  std::smatch m;
  if (!std::regex_match(v, m, kField)) return d;
  d.valid = true;
  d.name = m[1];
  d.remaining = std::stol(m[2]);
  d.reset = std::stol(m[3]);
  return d;
}

bool isInteger(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("plugins rate limit: 429 RATE_LIMIT_EXCEEDED with Retry-After and draft headers") {
  Backend b;
  Gateway gw(config(b, "{limits: [{requests: 3, window: 10s}]}"));
  b.reset();
  Client c(gw.port());
  for (long i = 0; i < 3; ++i) {
    Response r = c.roundTrip(get("/echo"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    CHECK(r.header("RateLimit-Policy").value_or("<none>") == "\"default\";q=3;w=10");
    const Draft d = parseDraft(r);
    INFO("RateLimit: " << r.header("RateLimit").value_or("<none>"));
    REQUIRE(d.valid);
    CHECK(d.name == "default");
    CHECK(d.remaining == 2 - i);
    CHECK(d.reset >= 1);
    CHECK(d.reset <= 20);  // quota whole again once the count has left the sliding window
    CHECK(r.headerCount("Retry-After") == 0);
  }
  Response r = c.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 429);
  CHECK(errorCode(r.body) == "RATE_LIMIT_EXCEEDED");
  CHECK(r.header("Content-Type").value_or("").find("application/json") == 0);
  const std::string retry = r.header("Retry-After").value_or("");
  INFO("Retry-After: " << retry);
  REQUIRE(isInteger(retry));
  CHECK(std::stol(retry) >= 1);
  // The sliding-window estimate keeps weighing this window's requests during the next one, so
  // the wait until a request is admitted again can exceed one window (never two).
  CHECK(std::stol(retry) <= 20);
  CHECK(r.header("RateLimit-Policy").value_or("<none>") == "\"default\";q=3;w=10");
  const Draft d = parseDraft(r);
  REQUIRE(d.valid);
  CHECK(d.remaining == 0);
  CHECK(b.stats().requests == 3);  // the refused request never reached the backend

  // The connection stays usable after a 429.
  r = c.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 429);
}

TEST_CASE("plugins rate limit: several named limits in RateLimit-Policy") {
  Backend b;
  Gateway gw(config(b,
                    "{limits: [{requests: 5, window: 1s, name: burst}, "
                    "{requests: 2, window: 1m, name: hourly}]}"));
  Client c(gw.port());
  Response r = c.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.header("RateLimit-Policy").value_or("<none>") ==
        "\"burst\";q=5;w=1, \"hourly\";q=2;w=60");
  Draft d = parseDraft(r);
  REQUIRE(d.valid);
  CHECK(d.name == "hourly");  // the one with the least left
  CHECK(d.remaining == 1);
  r = c.roundTrip(get("/echo"));
  r = c.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 429);
  d = parseDraft(r);
  CHECK(d.name == "hourly");
  CHECK(d.remaining == 0);
  const std::string retry = r.header("Retry-After").value_or("");
  REQUIRE(isInteger(retry));
  CHECK(std::stol(retry) >= 1);
  CHECK(std::stol(retry) <= 120);
}

TEST_CASE("plugins rate limit: waiting Retry-After seconds is enough") {
  Backend b;
  Gateway gw(config(b, "{limits: [{requests: 2, window: 1s}]}"));
  Client c(gw.port());
  Response r;
  for (int i = 0; i < 3; ++i) r = c.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  REQUIRE(r.status == 429);
  const std::string retry = r.header("Retry-After").value_or("");
  REQUIRE(isInteger(retry));
  const long seconds = std::stol(retry);
  CHECK(seconds >= 1);
  CHECK(seconds <= 2);
  const auto refused_at = std::chrono::steady_clock::now();
  waitFor(
      [&] {
        return std::chrono::steady_clock::now() - refused_at >= std::chrono::seconds(seconds);
      },
      std::chrono::seconds(seconds) + 100ms, 5ms);
  r = c.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
}

TEST_CASE("plugins rate limit: legacy, x and off header styles") {
  Backend b;
  SUBCASE("legacy") {
    Gateway gw(config(b, "{limits: [{requests: 2, window: 10s}], headers: legacy}"));
    Client c(gw.port());
    Response r = c.roundTrip(get("/echo"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.header("RateLimit-Limit").value_or("<none>") == "2");
    CHECK(r.header("RateLimit-Remaining").value_or("<none>") == "1");
    CHECK(isInteger(r.header("RateLimit-Reset").value_or("")));
    CHECK(r.headerCount("RateLimit-Policy") == 0);
    CHECK(r.headerCount("RateLimit") == 0);
    CHECK(r.headerCount("X-RateLimit-Limit") == 0);
    c.roundTrip(get("/echo"));
    r = c.roundTrip(get("/echo"));
    CHECK(r.status == 429);
    CHECK(r.header("RateLimit-Remaining").value_or("<none>") == "0");
    CHECK(isInteger(r.header("Retry-After").value_or("")));
  }
  SUBCASE("x") {
    Gateway gw(config(b, "{limits: [{requests: 2, window: 10s}], headers: x}"));
    Client c(gw.port());
    Response r = c.roundTrip(get("/echo"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.header("X-RateLimit-Limit").value_or("<none>") == "2");
    CHECK(r.header("X-RateLimit-Remaining").value_or("<none>") == "1");
    CHECK(isInteger(r.header("X-RateLimit-Reset").value_or("")));
    CHECK(r.headerCount("RateLimit-Limit") == 0);
    CHECK(r.headerCount("RateLimit-Policy") == 0);
    CHECK(r.headerCount("RateLimit") == 0);
  }
  SUBCASE("off") {
    Gateway gw(config(b, "{limits: [{requests: 1, window: 10s}], headers: off}"));
    Client c(gw.port());
    Response r = c.roundTrip(get("/echo"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    for (const char* name : {"RateLimit", "RateLimit-Policy", "RateLimit-Limit",
                             "RateLimit-Remaining", "RateLimit-Reset", "X-RateLimit-Limit",
                             "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"}) {
      CHECK_MESSAGE(r.headerCount(name) == 0, name);
    }
    r = c.roundTrip(get("/echo"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 429);
    CHECK(isInteger(r.header("Retry-After").value_or("")));  // a 429 always says when
    CHECK(r.headerCount("RateLimit") == 0);
    CHECK(r.headerCount("RateLimit-Policy") == 0);
  }
}

TEST_CASE("plugins rate limit: shadow mode never rejects but reports") {
  Backend b;
  Gateway gw(config(b, "{limits: [{requests: 2, window: 1m}], mode: shadow}"));
  b.reset();
  Client c(gw.port());
  for (long i = 0; i < 5; ++i) {
    Response r = c.roundTrip(get("/echo"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    CHECK(r.headerCount("Retry-After") == 0);
    const Draft d = parseDraft(r);
    REQUIRE(d.valid);
    CHECK(d.remaining == std::max(0L, 1 - i));
  }
  CHECK(b.stats().requests == 5);
}

TEST_CASE("plugins rate limit: keyed by header; missing key rejected with 400") {
  Backend b;
  Gateway gw(config(
      b, "{limits: [{requests: 1, window: 1m}], key: [{header: X-Api-Key}], missing_key: reject}"));
  b.reset();
  Client c(gw.port());
  Response r = c.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 400);
  CHECK(errorCode(r.body) == "BAD_REQUEST");
  CHECK(r.body.find("X-Api-Key") != std::string::npos);
  r = c.roundTrip(get("/echo", "X-Api-Key: alpha\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  r = c.roundTrip(get("/echo", "X-Api-Key: alpha\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 429);
  // Another key has its own quota, on the same connection and client IP.
  r = c.roundTrip(get("/echo", "X-Api-Key: beta\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(b.stats().requests == 2);
}

TEST_CASE("plugins rate limit: a key evicted from a full table gets a fresh quota") {
  Backend b;
  Gateway gw(
      config(b, "{limits: [{requests: 2, window: 1m}], key: [{header: X-Api-Key}], max_keys: 4}"));
  Client c(gw.port());
  const auto remaining = [&](const std::string& key) {
    Response r = c.roundTrip(get("/echo", "X-Api-Key: " + key + "\r\n"));
    REQUIRE_MESSAGE(r.complete, r.error);
    const Draft d = parseDraft(r);
    REQUIRE(d.valid);
    return d.remaining;
  };
  CHECK(remaining("key-0") == 1);
  for (int i = 1; i < 10; ++i) CHECK(remaining("key-" + std::to_string(i)) == 1);
  // key-9 is still in the table: its second request is counted on the first.
  CHECK(remaining("key-9") == 0);
  // key-0 was the least recently used of 10 keys in a 4-key table: evicted, its quota restarts.
  CHECK(remaining("key-0") == 1);
}

TEST_CASE("plugins rate limit: one limit across two workers under concurrent load") {
  constexpr int kLimit = 50;
  constexpr int64_t kWindowMs = 1000;
  constexpr int kThreads = 16;
  Backend b;
  Gateway gw(config(b, "{limits: [{requests: 50, window: 1s}], key: [route]}", 2));

  // The table's windows are aligned on the worker's cached wall clock (libevent's
  // event_base_gettimeofday_cached): start just after a window boundary so the burst fits in
  // one aligned window, where at most `requests` may be admitted.
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kThreads; ++i) {
    clients.push_back(std::make_unique<Client>(gw.port()));
    REQUIRE(clients.back()->connected());
  }
  // pace_ms > 0: each thread sends at most one request per pace_ms (a steady overload that lasts).
  const auto runBurst = [&](int64_t until_ms, int max_per_thread, std::vector<int64_t>* times,
                            Millis pace = 0ms) {
    std::atomic<int> admitted{0}, refused{0}, other{0};
    std::mutex mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::vector<int64_t> mine;
        auto next = std::chrono::steady_clock::now();
        for (int n = 0; n < max_per_thread && wallMs() < until_ms; ++n) {
          if (pace > 0ms) {
            std::this_thread::sleep_until(next);
            next += pace;
          }
          Response r = clients[t]->roundTrip(get("/echo"), 2000ms);
          if (!r.complete) {
            ++other;
            return;
          }
          if (r.status == 200) {
            ++admitted;
            mine.push_back(wallMs());
          } else if (r.status == 429) {
            ++refused;
          } else {
            ++other;
          }
        }
        std::lock_guard<std::mutex> lock(mu);
        if (times) times->insert(times->end(), mine.begin(), mine.end());
      });
    }
    for (auto& th : threads) th.join();
    return std::tuple<int, int, int>{admitted.load(), refused.load(), other.load()};
  };

  // Wait for the next window to begin (bounded: at most one window).
  // The margin keeps the burst inside the window although the worker's cached clock may lag
  // ours by a few ms (libevent derives it from a coarse monotonic clock).
  constexpr int64_t kMarginMs = 50;
  REQUIRE(waitFor([&] { return wallMs() % kWindowMs >= kMarginMs && wallMs() % kWindowMs < 80; },
                  2 * Millis(kWindowMs), 1ms));
  const int64_t start = wallMs();
  const int64_t window_end = start - start % kWindowMs + kWindowMs;
  // A burst far above the limit, stopped well before the window ends.
  const auto burst = runBurst(window_end - 200, 40, nullptr);
  // INFO takes variables, not structured bindings.
  const int admitted = std::get<0>(burst), refused = std::get<1>(burst), other = std::get<2>(burst);
  const int64_t end = wallMs();
  INFO("burst of " << (end - start) << " ms from ms " << start % kWindowMs << " of the window: "
                   << admitted << " admitted, " << refused << " refused, " << other << " other");
  CHECK(other == 0);
  CHECK(admitted + refused > 4 * kLimit);  // the burst really was far above the limit
  REQUIRE(end < window_end);
  CHECK(admitted <= kLimit);
  CHECK(admitted >= kLimit - 2);

  // Steady overload across the next two whole windows: at most `requests` per aligned window,
  // and never more than 2 * requests - 1 in any interval of one window length.
  std::vector<int64_t> times;
  // Skip one quiet window so the burst's count no longer weighs on the first measured window,
  // and keep kMarginMs off both ends so no request lands in a neighbouring window.
  const int64_t span_start = window_end + kWindowMs + kMarginMs;
  REQUIRE(waitFor([&] { return wallMs() >= span_start; }, 3 * Millis(kWindowMs), 1ms));
  const auto steady = runBurst(span_start - 2 * kMarginMs + 2 * kWindowMs, 1000, &times, 4ms);
  const int admitted2 = std::get<0>(steady), refused2 = std::get<1>(steady),
            other2 = std::get<2>(steady);
  INFO("two windows: " << admitted2 << " admitted, " << refused2 << " refused, " << other2
                       << " other");
  CHECK(other2 == 0);
  std::sort(times.begin(), times.end());
  std::size_t max_in_window = 0;
  for (std::size_t i = 0, j = 0; j < times.size(); ++j) {
    while (times[j] - times[i] >= kWindowMs) ++i;
    max_in_window = std::max(max_in_window, j - i + 1);
  }
  CHECK(admitted2 <= 2 * kLimit);
  // The second window still weighs the first one's 50 at 5% when the load stops 50 ms early.
  CHECK(admitted2 >= 2 * kLimit - 5);
  CHECK(max_in_window <= 2 * kLimit - 1);
  CHECK(b.stats().requests == static_cast<uint64_t>(admitted + admitted2));
}

TEST_CASE("plugins rate limit: memory per key does not grow with the key's length") {
  // 4,000 keys of 30 KB: stored whole they would take 120 MB; stored as digests under 1 MB. The
  // bound leaves room for a sanitizer build's 16 MiB quarantine of freed request buffers.
  constexpr int kKeys = 4000;
  constexpr std::size_t kKeyBytes = 30 * 1024;
  constexpr long kAllowedGrowthKiB = 32 * 1024;
  // The table under test keys on X-Api-Key; a second tier lets one request through per day, so
  // the backend is spared 120 MB of headers and every answer comes from gatewayd.
  Backend b;
  Gateway gw(routeConfig(b,
                         "      - rate_limit: {limits: [{requests: 5, window: 1m}], headers: x,\n"
                         "                     key: [{header: X-Api-Key}], max_key_bytes: 31KiB}\n"
                         "      - rate_limit: {limits: [{requests: 1, window: 24h}], key: [route], "
                         "headers: off}\n"));
  b.reset();
  Client c(gw.port());
  std::string key(kKeyBytes, 'k');
  // Each key is new: the first tier admits it with 4 left, the second refuses it (after the one
  // request it lets through).
  const auto sendKey = [&](int i) {
    const std::string id = std::to_string(i) + "-";
    key.replace(0, id.size(), id);
    const Response r = c.roundTrip(get("/echo", "X-Api-Key: " + key + "\r\n"));
    REQUIRE_MESSAGE(r.complete, r.error);
    REQUIRE(r.header("X-RateLimit-Remaining").value_or("<none>") == "4");
  };
  // Warm up: connection buffers and the allocator's arenas reach their working size.
  for (int i = 0; i < 50; ++i) sendKey(kKeys + i);
  CHECK(b.stats().requests == 1);
  const long before = rssKiB(gw.process().pid());
  REQUIRE(before > 0);
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  for (int i = 0; i < kKeys; ++i) {
    sendKey(i);
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  }
  const long after = rssKiB(gw.process().pid());
  INFO("RSS " << before << " KiB -> " << after << " KiB after " << kKeys << " keys of " << kKeyBytes
              << " bytes");
  CHECK(after - before < kAllowedGrowthKiB);
  CHECK(b.stats().requests == 1);
}

TEST_CASE("plugins rate limit: a key header sent twice is refused, nothing forwarded") {
  Backend b;
  Gateway gw(config(b, "{limits: [{requests: 1, window: 1m}], key: [{header: X-Api-Key}]}"));
  b.reset();
  Client c(gw.port());
  for (const char* fields :
       {"X-Api-Key: alpha\r\nX-Api-Key: beta\r\n", "x-api-key: beta\r\nX-API-KEY: alpha\r\n",
        "X-Api-Key: alpha\r\nX-Api-Key: alpha\r\n", "X-Api-Key: alpha\r\nX-Api-Key: \r\n"}) {
    INFO(fields);
    const Response r = c.roundTrip(get("/echo", fields));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 400);
    CHECK(errorCode(r.body) == "BAD_REQUEST");
    CHECK(r.body.find("X-Api-Key") != std::string::npos);
  }
  CHECK(b.stats().requests == 0);
  // Neither value's quota was touched.
  for (const char* value : {"alpha", "beta"}) {
    const Response r = c.roundTrip(get("/echo", std::string("X-Api-Key: ") + value + "\r\n"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
  }
  CHECK(b.stats().requests == 2);
}

TEST_CASE("plugins rate limit: a key longer than max_key_bytes is refused with 431") {
  Backend b;
  Gateway gw(config(
      b, "{limits: [{requests: 5, window: 1m}], key: [{header: X-Api-Key}], max_key_bytes: 64}"));
  b.reset();
  Client c(gw.port());
  Response r = c.roundTrip(get("/echo", "X-Api-Key: " + std::string(65, 'k') + "\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 431);
  CHECK(errorCode(r.body) == "REQUEST_HEADER_FIELDS_TOO_LARGE");
  CHECK(r.body.find("X-Api-Key") != std::string::npos);
  CHECK(b.stats().requests == 0);
  r = c.roundTrip(get("/echo", "X-Api-Key: " + std::string(64, 'k') + "\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(b.stats().requests == 1);
}

TEST_CASE("plugins rate limit: exact reset and Retry-After while only the previous window weighs") {
  // requests: 1 per 1 s. The request admitted in window k weighs (1000 - e) / 1000 at ms e of
  // window k + 1, where nothing has been counted yet: refused until the window's last ms, and
  // both the wait and the reset are 1000 - e ms, i.e. 1 s. The admitted request itself leaves
  // the quota whole at the end of window k + 1: 2000 - e ms, i.e. 2 s.
  constexpr int64_t kWindowMs = 1000;
  constexpr int64_t kMarginMs = 50;  // the worker's cached clock may lag ours by a few ms
  Backend b;
  Gateway gw(config(b, "{limits: [{requests: 1, window: 1s}], key: [{header: X-Api-Key}]}"));
  Client c(gw.port());
  // A stalled machine can push a request into the wrong window: then try again with a fresh key
  // (bounded), and only judge attempts whose timing fits.
  bool judged = false;
  for (int attempt = 0; attempt < 5 && !judged; ++attempt) {
    const std::string key = "X-Api-Key: attempt-" + std::to_string(attempt) + "\r\n";
    REQUIRE(waitFor(
        [&] {
          const int64_t ms = wallMs() % kWindowMs;
          return ms >= kMarginMs && ms < kWindowMs / 2;
        },
        2 * Millis(kWindowMs), 1ms));
    const int64_t firstAt = wallMs();
    const Response first = c.roundTrip(get("/echo", key));
    const int64_t nextWindow = firstAt - firstAt % kWindowMs + kWindowMs;
    if (wallMs() >= nextWindow - kMarginMs) continue;
    REQUIRE_MESSAGE(first.complete, first.error);
    REQUIRE(first.status == 200);
    CHECK(first.header("RateLimit").value_or("<none>") == "\"default\";r=0;t=2");

    REQUIRE(
        waitFor([&] { return wallMs() >= nextWindow + kMarginMs; }, 2 * Millis(kWindowMs), 1ms));
    const Response refused = c.roundTrip(get("/echo", key));
    if (wallMs() >= nextWindow + kWindowMs - kMarginMs) continue;
    REQUIRE_MESSAGE(refused.complete, refused.error);
    CHECK(refused.status == 429);
    CHECK(refused.header("Retry-After").value_or("<none>") == "1");
    CHECK(refused.header("RateLimit").value_or("<none>") == "\"default\";r=0;t=1");
    judged = true;
  }
  CHECK(judged);
}
