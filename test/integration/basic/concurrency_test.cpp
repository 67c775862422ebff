// State shared between threads, exercised all at once: two workers serve traffic through a
// global rate_limit (one table, a small one so keys are evicted) and a cache (one store), while
// the main thread answers /metrics, /status and /ready, purges the cache and reopens the access
// log. Every answer and every count must still be exact. Built for ThreadSanitizer
// (scripts/test.sh --tsan, test/tsan_tests.txt) and run in every build.
#include <doctest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// Sum of every sample of `family` ("name{...} value" lines) in a Prometheus exposition.
double familySum(const std::string& exposition, std::string_view family) {
  const std::string prefix = std::string(family) + "{";
  double sum = 0;
  std::size_t at = 0;
  while (at < exposition.size()) {
    const std::size_t end = exposition.find('\n', at);
    const std::string_view line(exposition.data() + at,
                                (end == std::string::npos ? exposition.size() : end) - at);
    if (line.starts_with(prefix)) {
      sum += std::strtod(std::string(line.substr(line.rfind(' ') + 1)).c_str(), nullptr);
    }
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return sum;
}

std::size_t lineCount(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("concurrency: scrapes, purges and log reopens during load on two workers stay exact") {
  Backend b;
  TempDir dir;
  const std::string logPath = dir.path() + "/access.log";
  Gateway gw(subst(R"(workers: 2
access_log: {path: ${LOG}}
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends:
      - ${B}
plugins:
  - request_id
  - rate_limit:
      limits:
        - {requests: 1000000, window: 1s}
      key: [client_ip, {header: X-Key}]
      max_keys: 64
  - security_headers
routes:
  - name: cached
    match: {prefix: /origin/}
    upstream: main
    plugins:
      - cache: {}
  - name: plain
    upstream: main
)",
                   {{"B", b.address()}, {"LOG", logPath}}));

  constexpr int kClients = 4;
  constexpr int kConnectionsPerClient = 6;  // new connections, so both workers take a share
  constexpr int kRequestsPerConnection = 25;
  constexpr int kRequests = kClients * kConnectionsPerClient * kRequestsPerConnection;
  std::atomic<int> answered{0};
  std::atomic<int> clientsDone{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      for (int c = 0; c < kConnectionsPerClient; ++c) {
        Client client(gw.port());
        for (int i = 0; i < kRequestsPerConnection; ++i) {
          const int n = (t * kConnectionsPerClient + c) * kRequestsPerConnection + i;
          // 200 rate-limit keys over a 64-key table; 16 cached URLs, purged all along.
          const std::string key = "X-Key: k" + std::to_string(n % 200) + "\r\n";
          const std::string target = n % 2 ? "/echo?n=" + std::to_string(n)
                                           : "/origin/item" + std::to_string(n % 16) +
                                                 "?h=Cache-Control%3A%20max-age%3D60";
          Response r = client.roundTrip(get(target, key), 10000ms);
          if (r.complete && r.status == 200) ++answered;
        }
      }
      ++clientsDone;
    });
  }

  // The main thread's side, for as long as the load runs (bounded by count).
  int scrapes = 0, purges = 0, reopens = 0, adminFailures = 0;
  double lastTotal = 0;
  bool monotonic = true;
  for (int round = 0; round < 2000 && clientsDone < kClients; ++round) {
    Response metrics = adminRequest(gw, "/metrics");
    if (metrics.status == 200) {
      ++scrapes;
      const double total = familySum(metrics.body, "gatewayd_http_requests_total");
      monotonic = monotonic && total >= lastTotal;
      lastTotal = total;
    } else {
      ++adminFailures;
    }
    adminFailures += adminRequest(gw, "/status").status != 200;
    adminFailures += adminRequest(gw, "/ready").status != 200;
    if (round % 3 == 0) {
      Response purge = adminRequest(gw, "/cache?prefix=/origin/", "DELETE");
      purges += purge.status == 200;
      adminFailures += purge.status != 200;
    }
    if (round % 5 == 0) {
      gw.process().signal(SIGUSR1);
      ++reopens;
    }
  }
  for (std::thread& client : clients) client.join();

  CHECK(answered == kRequests);
  CHECK(adminFailures == 0);
  CHECK(monotonic);
  CHECK(scrapes > 0);
  CHECK(purges > 0);
  CHECK(reopens > 0);
  const std::string m = adminRequest(gw, "/metrics").body;
  INFO(m);
  CHECK(familySum(m, "gatewayd_http_requests_total") == kRequests);
  CHECK(
      metricSample(m, R"m(gatewayd_http_requests_total{route="plain",method="GET",code="200"})m") ==
      kRequests / 2);
  CHECK(familySum(m, "gatewayd_rate_limit_rejections_total") == 0);
  CHECK(metricSample(m, "gatewayd_downstream_connections_accepted_total") >=
        kClients * kConnectionsPerClient);
  // One access log line per exchange, none lost to the reopens (the path never moved).
  CHECK(waitFor([&] { return lineCount(readFile(logPath)) == std::size_t(kRequests); }, 10000ms));
}
