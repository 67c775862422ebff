#include "gateway/runtime/worker.h"

#include <doctest.h>

#include <string>

#include "gateway/plugin/registry.h"
#include "test/support/worker_fixture.h"

namespace gw::runtime {
namespace {

using test::WorkerFixture;

constexpr std::string_view kRoutes = "  - {match: {prefix: /api/}, upstream: main}\n";
// No route takes it: the worker answers itself, no backend involved.
constexpr std::string_view kUnrouted = "GET /elsewhere HTTP/1.1\r\nHost: gw.test\r\n\r\n";

bool answered404(const test::Socket& client) {
  const std::string got = client.readUntil(test::wholeMessage);
  return got.starts_with("HTTP/1.1 404 ") && got.find("ROUTE_NOT_FOUND") != std::string::npos;
}

TEST_CASE("Worker::watch, called again on the worker's thread, changes what it accepts on") {
  WorkerFixture f(kRoutes, plugin::Registry::builtin(), 2);
  test::Socket both = f.connect(1);
  both.send(kUnrouted);
  CHECK(answered404(both));

  f.watchOnly({0});
  // The kernel queues a connection to the unwatched socket; nobody accepts or answers it.
  test::Socket waiting = f.connect(1);
  waiting.send(kUnrouted);
  test::Socket watched = f.connect(0);
  watched.send(kUnrouted);
  CHECK(answered404(watched));
  CHECK(waiting.silentFor(std::chrono::milliseconds(300)));

  // Watched again: the queued connection is accepted and answered, nothing was lost.
  f.watchOnly({0, 1});
  CHECK(answered404(waiting));
}

}  // namespace
}  // namespace gw::runtime
