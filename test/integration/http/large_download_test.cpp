// Streaming with backpressure: a 256 MiB download through a slow client and a 64 MiB upload must
// arrive byte-exact while gatewayd's memory stays flat.
#include <doctest.h>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

}  // namespace

TEST_CASE("large download: 256 MiB through a slow client, byte-exact, RSS growth < 64 MiB") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  pid_t pid = gw.process().pid();
  {
    Client warm(gw.port());  // first request allocates the steady-state buffers
    Response r = warm.roundTrip(get("/bytes/1000000"));
    REQUIRE_MESSAGE(r.complete, r.error);
  }
  long base = rssKiB(pid);
  REQUIRE(base > 0);

  constexpr uint64_t kSize = 256 * kMiB;
  Client c(gw.port(), 3000ms, 128 * 1024);  // small receive buffer: the client is the bottleneck
  REQUIRE(c.send(get("/bytes/" + std::to_string(kSize))));
  uint64_t offset = 0;
  uint64_t first_bad = UINT64_MAX;
  long max_rss = base;
  ReadOptions slow;
  slow.timeout = 90000ms;
  slow.read_size = 32 * 1024;
  slow.max_bytes_per_second = 120.0 * kMiB;  // well below what test_backend sends directly
  slow.on_body = [&](std::string_view piece) {
    for (std::size_t i = 0; i < piece.size(); ++i)
      if (piece[i] != patternByte(offset + i) && first_bad == UINT64_MAX) first_bad = offset + i;
    if ((offset + piece.size()) / (8 * kMiB) != offset / (8 * kMiB))
      max_rss = std::max(max_rss, rssKiB(pid));
    offset += piece.size();
  };
  Response r = c.read(slow);
  REQUIRE_MESSAGE(r.complete, r.error << " after " << r.body_bytes << " bytes");
  CHECK(r.status == 200);
  CHECK(r.body_bytes == kSize);
  CHECK_MESSAGE(first_bad == UINT64_MAX, "first wrong byte at offset " << first_bad);
  long peak = std::max(max_rss, peakRssKiB(pid));
  MESSAGE("256 MiB download: gatewayd RSS base " << base << " KiB, peak " << peak << " KiB");
  CHECK(peak - base < 64 * 1024);
}

TEST_CASE("large upload: 64 MiB streamed to the backend, RSS growth < 64 MiB") {
  Backend b;
  Gateway gw(simpleConfig({&b}, "limits:\n  body_bytes: 128MiB\n"));
  pid_t pid = gw.process().pid();
  long base = rssKiB(pid);
  constexpr uint64_t kSize = 64 * kMiB;

  SUBCASE("Content-Length") {
    Client c(gw.port());
    REQUIRE(c.send(request("POST", "/echo", "Content-Length: " + std::to_string(kSize) + "\r\n")));
    std::string piece(kMiB, '\0');
    for (uint64_t sent = 0; sent < kSize; sent += piece.size()) {
      for (std::size_t i = 0; i < piece.size(); ++i) piece[i] = patternByte(sent + i);
      REQUIRE_MESSAGE(c.send(piece, 30000ms), "upload stalled at " << sent);
    }
    Response r = c.read(30000ms);
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    Echo e = parseEcho(r.body);
    CHECK(e.body_bytes == kSize);
    CHECK(e.body.size() == kMiB);  // test_backend echoes the first MiB
    CHECK(e.body.substr(0, 52) ==
          std::string("abcdefghijklmnopqrstuvwxyz") + "abcdefghijklmnopqrstuvwxyz");
  }
  SUBCASE("chunked") {
    Client c(gw.port());
    REQUIRE(c.send(request("POST", "/echo", "Transfer-Encoding: chunked\r\n")));
    std::string chunk = "100000\r\n" + std::string(kMiB, 'u') + "\r\n";
    for (uint64_t sent = 0; sent < kSize; sent += kMiB)
      REQUIRE_MESSAGE(c.send(chunk, 30000ms), "upload stalled at " << sent);
    REQUIRE(c.send("0\r\n\r\n"));
    Response r = c.read(30000ms);
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    CHECK(parseEcho(r.body).body_bytes == kSize);
  }
  long peak = peakRssKiB(pid);
  MESSAGE("64 MiB upload: gatewayd RSS base " << base << " KiB, peak " << peak << " KiB");
  CHECK(peak - base < 64 * 1024);
}

TEST_CASE("large upload: a backend that stops reading pauses the client, not gatewayd's memory") {
  Backend b;
  Gateway gw(simpleConfig({&b}, "limits:\n  body_bytes: 256MiB\n"));
  pid_t pid = gw.process().pid();
  long base = rssKiB(pid);
  constexpr uint64_t kSize = 128 * kMiB;
  Client c(gw.port());
  // test_backend reads nothing of this body for 1.5 s; whatever the kernel buffers cannot take
  // must wait in the client, not in gatewayd.
  REQUIRE(c.send(
      request("POST", "/stall-body/1500", "Content-Length: " + std::to_string(kSize) + "\r\n")));
  std::string piece(kMiB, 's');
  long max_rss = base;
  for (uint64_t sent = 0; sent < kSize; sent += piece.size()) {
    REQUIRE_MESSAGE(c.send(piece, 30000ms), "upload stalled at " << sent);
    max_rss = std::max(max_rss, rssKiB(pid));
  }
  Response r = c.read(30000ms);
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(parseEcho(r.body).body_bytes == kSize);
  long peak = std::max(max_rss, peakRssKiB(pid));
  MESSAGE("128 MiB upload to a stalled backend: gatewayd RSS base " << base << " KiB, peak " << peak
                                                                    << " KiB");
  CHECK(peak - base < 64 * 1024);
}
