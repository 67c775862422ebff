// Client-side timeouts: a slow or idle client cannot pin a connection (slowloris).
#include <doctest.h>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kTimeouts = R"(limits:
  client_header_timeout: 500ms
  client_body_timeout: 500ms
  idle_timeout: 700ms
)";

// Reads until the gateway closes; returns the elapsed time, the raw bytes in *got.
Clock::duration timeUntilClosed(Client& c, Clock::time_point since, std::string* got,
                                Millis bound) {
  *got += c.readRaw(bound);
  CHECK_MESSAGE(c.waitClosed(0ms), "connection still open after " << bound.count() << "ms");
  return Clock::now() - since;
}

}  // namespace

TEST_CASE("timeouts: a stalled request head gets 408 within client_header_timeout") {
  Backend b;
  Gateway gw(simpleConfig({&b}, kTimeouts));
  b.reset();
  Client c(gw.port());
  auto start = Clock::now();
  REQUIRE(c.send("GET /echo HTTP/1.1\r\nHost: gw.test\r\nX-Partial: "));
  std::string got;
  auto elapsed = timeUntilClosed(c, start, &got, 3000ms);
  CHECK(elapsed >= 400ms);
  CHECK(elapsed < 2000ms);
  CHECK(got.rfind("HTTP/1.1 408", 0) == 0);
  CHECK(got.find("REQUEST_TIMEOUT") != std::string::npos);
  CHECK(b.stats().bytes == 0);
}

TEST_CASE("timeouts: dribbling a byte at a time does not extend the header deadline") {
  Backend b;
  Gateway gw(simpleConfig({&b}, kTimeouts));
  Client c(gw.port());
  std::string head = "GET /echo HTTP/1.1\r\nHost: gw.test\r\n";
  for (int i = 0; i < 40; ++i) head += "X-Slow-" + std::to_string(i) + ": drip\r\n";
  auto start = Clock::now();
  std::string got;
  // One byte every 50ms: the head would take ~45s to arrive.
  for (std::size_t i = 0; i < head.size() && got.empty() && !c.waitClosed(0ms); ++i) {
    if (!c.send(head.substr(i, 1), 100ms)) break;
    got += c.readRaw(50ms);
    if (Clock::now() - start > 3000ms) break;
  }
  auto elapsed = Clock::now() - start;
  INFO("after " << std::chrono::duration_cast<Millis>(elapsed).count() << "ms got '" << got << "'");
  CHECK(elapsed < 2000ms);
  CHECK(got.rfind("HTTP/1.1 408", 0) == 0);
  CHECK(c.waitClosed(1000ms));
}

TEST_CASE("timeouts: an idle keep-alive connection is closed after idle_timeout") {
  Backend b;
  Gateway gw(simpleConfig({&b}, kTimeouts));
  Client c(gw.port());
  Response r = c.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  auto start = Clock::now();
  std::string got;
  auto elapsed = timeUntilClosed(c, start, &got, 3000ms);
  CHECK(elapsed >= 550ms);  // not before idle_timeout (and not by the 500ms header timer)
  CHECK(elapsed < 2500ms);
  // Nothing was asked, so nothing is answered: the close alone (RFC 9112 §9.5).
  CHECK_MESSAGE(got.empty(), got);
}

TEST_CASE("timeouts: an active keep-alive connection outlives idle_timeout") {
  Backend b;
  Gateway gw(simpleConfig({&b}, kTimeouts));
  Client c(gw.port());
  auto start = Clock::now();
  int n = 0;
  while (Clock::now() - start < 1800ms) {
    Response r = c.roundTrip(get("/echo?n=" + std::to_string(n)));
    INFO("request " << n << ": " << r.error);
    REQUIRE(r.complete);
    CHECK(r.status == 200);
    ++n;
    CHECK(c.readRaw(300ms).empty());  // think time, below idle_timeout
  }
  CHECK(n >= 4);
}

TEST_CASE("timeouts: a stalled request body gets 408 within client_body_timeout") {
  Backend b;
  Gateway gw(simpleConfig({&b}, kTimeouts));
  b.reset();
  Client c(gw.port());
  auto start = Clock::now();
  REQUIRE(c.send(request("POST", "/echo", "Content-Length: 100\r\n") + "only ten b"));
  std::string got;
  auto elapsed = timeUntilClosed(c, start, &got, 3000ms);
  CHECK(elapsed >= 400ms);
  CHECK(elapsed < 2500ms);
  CHECK(got.rfind("HTTP/1.1 408", 0) == 0);
  CHECK(got.find("REQUEST_TIMEOUT") != std::string::npos);
  CHECK(got.find("Connection: close\r\n") != std::string::npos);
  CHECK(b.stats().requests == 0);
}
