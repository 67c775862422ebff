// The access log through the real gatewayd: one JSON line per exchange with the fields the
// docs promise, secrets planted in requests never written, and SIGUSR1 reopening the file the
// way logrotate expects.
#include <doctest.h>

#include <rapidjson/document.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    out.push_back(text.substr(start, end - start));
  }
  return out;
}

std::string config(const Backend& b, const std::string& logPath) {
  return apiConfig(b, 2,
                   "access_log:\n"
                   "  path: " + logPath + "\n"
                   "  log_headers: [X-Api-Key, Authorization, X-Trace-Me]\n"
                   "  mask_headers: [X-Api-Key]\n");
}

// Waits until the file holds at least n lines (the workers flush every 200 ms).
std::vector<std::string> waitLines(const std::string& path, std::size_t n) {
  std::vector<std::string> got;
  waitFor([&] { return (got = lines(readFile(path))).size() >= n; }, 5000ms);
  return got;
}

}  // namespace

TEST_CASE("access log: one JSON line per exchange, secrets masked") {
  Backend b;
  TempDir dir;
  const std::string logPath = dir.path() + "/access.log";
  Gateway gw(config(b, logPath));
  Client c(gw.port());
  Response ok = c.roundTrip(request("GET", "/api/items?api_key=s3cr3t&page=2",
                                    "Authorization: Bearer s3cr3t\r\nCookie: session=s3cr3t\r\n"
                                    "X-Api-Key: s3cr3t\r\nX-Trace-Me: visible\r\n"
                                    "User-Agent: test-agent/1.0\r\n"));
  REQUIRE(ok.status == 200);
  Response missing = c.roundTrip(get("/nowhere?token=s3cr3t"));
  REQUIRE(missing.status == 404);

  const std::vector<std::string> got = waitLines(logPath, 2);
  REQUIRE(got.size() == 2);
  const std::string text = readFile(logPath);
  CHECK(text.find("s3cr3t") == std::string::npos);
  CHECK(gw.log().find("s3cr3t") == std::string::npos);  // nor in the error log

  rapidjson::Document line;
  REQUIRE_FALSE(line.Parse(got[0].c_str()).HasParseError());
  CHECK(std::string(line["method"].GetString()) == "GET");
  CHECK(std::string(line["path"].GetString()) == "/api/items?api_key=***&page=2");
  CHECK(std::string(line["route"].GetString()) == "api");
  CHECK(std::string(line["upstream"].GetString()) == "main");
  CHECK(std::string(line["backend"].GetString()) == b.address());
  CHECK(line["status"].GetInt() == 200);
  CHECK(std::string(line["client"].GetString()) == "127.0.0.1");
  CHECK(std::string(line["request_id"].GetString()).size() == 16);
  CHECK(std::string(line["user_agent"].GetString()) == "test-agent/1.0");
  CHECK(line["bytes_in"].GetInt() > 100);
  CHECK(line["bytes_out"].GetInt() > 100);
  CHECK(line["duration_ms"].GetDouble() >= line["upstream_duration_ms"].GetDouble());
  CHECK(line["error"].IsNull());
  CHECK(std::string(line["headers"]["X-Trace-Me"].GetString()) == "visible");
  CHECK(std::string(line["headers"]["X-Api-Key"].GetString()) == "***");
  CHECK(std::string(line["headers"]["Authorization"].GetString()) == "***");
  const std::string time = line["time"].GetString();
  CHECK(time.size() == 24);  // 2026-11-28T04:05:06.789Z
  CHECK(time.back() == 'Z');

  REQUIRE_FALSE(line.Parse(got[1].c_str()).HasParseError());
  CHECK(line["status"].GetInt() == 404);
  CHECK(std::string(line["route"].GetString()) == "(none)");
  CHECK(line["upstream"].IsNull());
  CHECK(std::string(line["error"].GetString()) == "ROUTE_NOT_FOUND");
  CHECK(std::string(line["path"].GetString()) == "/nowhere?token=***");
  // The id in the log is the one the client got in its error body.
  rapidjson::Document body;
  REQUIRE_FALSE(body.Parse(missing.body.c_str()).HasParseError());
  CHECK(std::string(line["request_id"].GetString()) == body["error"]["request_id"].GetString());
}

TEST_CASE("access log: SIGUSR1 reopens the file after logrotate moved it") {
  Backend b;
  TempDir dir;
  const std::string logPath = dir.path() + "/access.log";
  Gateway gw(config(b, logPath));
  Client c(gw.port());
  REQUIRE(c.roundTrip(get("/api/before")).status == 200);
  REQUIRE(waitLines(logPath, 1).size() == 1);
  const std::string rotated = logPath + ".1";
  REQUIRE(std::rename(logPath.c_str(), rotated.c_str()) == 0);
  gw.process().signal(SIGUSR1);
  // Until the reopen is done lines may still land in the moved file; wait for the new one.
  CHECK(waitFor([&] {
    REQUIRE(c.roundTrip(get("/api/after")).status == 200);
    return readFile(logPath).find("/api/after") != std::string::npos;
  }, 5000ms, 100ms));
  CHECK(readFile(rotated).find("/api/before") != std::string::npos);
  CHECK(readFile(logPath).find("/api/before") == std::string::npos);
}

TEST_CASE("access log: a full disk drops and counts lines, and never stalls proxying") {
  Backend b;
  Gateway gw(config(b, "/dev/full"));  // every write fails with ENOSPC
  Client c(gw.port());
  for (int i = 0; i < 20; ++i) REQUIRE(c.roundTrip(get("/api/x")).status == 200);
  double dropped = 0;
  CHECK(waitFor([&] {
    dropped = metricSample(adminRequest(gw, "/metrics").body, "gatewayd_log_dropped_total");
    return dropped == 20;
  }, 5000ms));
  CHECK(dropped == 20);
  CHECK(gw.log().find("access log write failed") != std::string::npos);
}

// Durations come from a precise monotonic clock: an answer the gateway writes within one loop
// turn still took some microseconds, and says so (the loop's cached clock said 0).
TEST_CASE("access log: sub-millisecond exchanges have their real duration") {
  Backend b;
  TempDir dir;
  const std::string logPath = dir.path() + "/access.log";
  Gateway gw(config(b, logPath));
  Client c(gw.port());
  constexpr int kRequests = 10;
  for (int i = 0; i < kRequests; ++i) REQUIRE(c.roundTrip(get("/nowhere")).status == 404);
  for (int i = 0; i < kRequests; ++i) REQUIRE(c.roundTrip(get("/api/echo")).status == 200);
  const std::vector<std::string> got = waitLines(logPath, 2 * kRequests);
  REQUIRE(got.size() == 2 * kRequests);
  for (const std::string& line : got) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    REQUIRE_MESSAGE(!d.HasParseError(), line);
    INFO(line);
    REQUIRE(d["duration_ms"].IsNumber());
    CHECK(d["duration_ms"].GetDouble() > 0);
    if (d["status"].GetInt() == 200) {
      REQUIRE(d["upstream_duration_ms"].IsNumber());
      CHECK(d["upstream_duration_ms"].GetDouble() > 0);
      CHECK(d["upstream_duration_ms"].GetDouble() <= d["duration_ms"].GetDouble());
    }
  }
}
