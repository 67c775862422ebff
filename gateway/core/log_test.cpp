#include "gateway/core/log.h"

#include <doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "test/support/files.h"

namespace gw::core::log {
namespace {

using test::captureStderr;

using Suppressed = LineLimiter::Suppressed;

// Feeds `count` lines of `message` at `nowMs`; returns how many were admitted.
unsigned feed(LineLimiter& limiter, std::string_view message, unsigned count, int64_t nowMs,
              std::vector<Suppressed>& ended) {
  unsigned admitted = 0;
  for (unsigned i = 0; i < count; ++i)
    admitted += limiter.admit(Level::Error, message, nowMs, ended);
  return admitted;
}

TEST_CASE("a message gets its lines per window, then one count of what was held back") {
  LineLimiter limiter(5);
  std::vector<Suppressed> ended;
  CHECK(feed(limiter, "accept failed", 1000, 10'000, ended) == 5);
  CHECK(ended.empty());
  // Later in the same window: still held back.
  CHECK(feed(limiter, "accept failed", 10, 10'999, ended) == 0);
  CHECK(ended.empty());
  // The next line after the window reports the 1005 held back first, then is written.
  CHECK(limiter.admit(Level::Error, "accept failed", 11'000, ended));
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].message == "accept failed");
  CHECK(ended[0].count == 1005);
  CHECK(ended[0].level == Level::Error);
  // Reported once.
  ended.clear();
  CHECK(feed(limiter, "accept failed", 4, 11'001, ended) == 4);
  CHECK(ended.empty());
}

TEST_CASE("messages are limited each on its own") {
  LineLimiter limiter(3);
  std::vector<Suppressed> ended;
  CHECK(feed(limiter, "a", 10, 0, ended) == 3);
  CHECK(feed(limiter, "b", 10, 0, ended) == 3);
  CHECK(feed(limiter, "", 10, 0, ended) == 3);  // even an empty message
  CHECK(feed(limiter, "a", 1, 500, ended) == 0);
  CHECK(ended.empty());
}

TEST_CASE("takeEnded reports a burst that is never followed by another line, once") {
  LineLimiter limiter(2);
  std::vector<Suppressed> ended;
  feed(limiter, "x", 7, 100, ended);
  feed(limiter, "quiet", 1, 100, ended);   // nothing held back: nothing to report
  CHECK(limiter.takeEnded(1099).empty());  // the window has not ended yet
  std::vector<Suppressed> report = limiter.takeEnded(1100);
  REQUIRE(report.size() == 1);
  CHECK(report[0].message == "x");
  CHECK(report[0].count == 5);
  CHECK(limiter.takeEnded(5000).empty());
  // A new window: the message has its full allowance again.
  CHECK(feed(limiter, "x", 3, 5000, ended) == 2);
  CHECK(ended.empty());
}

TEST_CASE("more messages than slots: memory stays fixed and every message is still limited") {
  LineLimiter limiter(1);
  std::vector<Suppressed> ended;
  unsigned admitted = 0;
  // 2,000 distinct messages, twice each, all within one window.
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 2000; ++i) admitted += feed(limiter, std::to_string(i), 1, 0, ended);
  }
  // Each message's first line passes (a second one too where its slot was given to another).
  CHECK(admitted >= 2000);
  // The same message flooding stays limited, whatever else went on.
  CHECK(feed(limiter, "1", 1000, 0, ended) <= 1);
}

TEST_CASE("threads hammering one message: exactly the allowance passes, the rest is counted") {
  LineLimiter limiter(20);
  constexpr int kThreads = 4;
  constexpr int kEach = 20'000;
  std::atomic<unsigned> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<Suppressed> ended;
      admitted += feed(limiter, "flood", kEach, 0, ended);
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(admitted == 20);
  std::vector<Suppressed> report = limiter.takeEnded(LineLimiter::kWindowMs);
  REQUIRE(report.size() == 1);
  CHECK(report[0].count == kThreads * kEach - 20);
}

TEST_CASE("log::write floods are cut to a few JSON lines") {
  const std::string text = captureStderr([] {
    for (int i = 0; i < 100'000; ++i) error("log test flood", {{"error", "Too many open files"}});
  });
  const auto lines = std::count(text.begin(), text.end(), '\n');
  // The allowance, twice if the run straddles a window's end, and that window's summary.
  CHECK(lines >= LineLimiter::kLinesPerSecond);
  CHECK(lines <= 2 * LineLimiter::kLinesPerSecond + 1);
  CHECK(text.find("{\"time\":\"") == 0);
  CHECK(text.find(R"("level":"error","msg":"log test flood","error":"Too many open files"})") !=
        std::string::npos);
}

}  // namespace
}  // namespace gw::core::log
