// Several worker threads, many concurrent client connections: every one is answered.
#include <doctest.h>

#include <memory>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

TEST_CASE("multiworker: 2 workers answer 200 concurrent connections") {
  Backend b;
  Gateway gw(simpleConfig({&b}, {}, {}, 2));
  constexpr int kConnections = 200;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kConnections; ++i) clients.push_back(std::make_unique<Client>(gw.port()));
  // All requests are in flight before the first response is read.
  for (int i = 0; i < kConnections; ++i)
    REQUIRE(clients[i]->send(get("/echo?i=" + std::to_string(i))));
  int ok = 0;
  for (int i = 0; i < kConnections; ++i) {
    Response r = clients[i]->read(10000ms);
    INFO("connection " << i << ": " << r.error);
    CHECK(r.complete);
    CHECK(r.status == 200);
    CHECK(parseEcho(r.body).target == "/echo?i=" + std::to_string(i));
    ok += r.complete && r.status == 200;
  }
  CHECK(ok == kConnections);
  // And a second round on the same connections: keep-alive across workers.
  for (int i = 0; i < kConnections; ++i) REQUIRE(clients[i]->send(get("/bytes/1000")));
  for (int i = 0; i < kConnections; ++i) {
    Response r = clients[i]->read(10000ms);
    CHECK(r.complete);
    CHECK(r.body_bytes == 1000);
  }
  CHECK(b.stats().requests == 2 * kConnections);
}

// limits.max_connections_per_worker bounds what one worker holds (as nginx's worker_connections):
// at the limit it stops accepting, and the next connection waits in the kernel's backlog until
// one closes — never refused, never grown past the bound.
TEST_CASE("connections: a worker holds at most max_connections_per_worker") {
  Backend b;
  Gateway gw(simpleConfig({&b}, "limits:\n  max_connections_per_worker: 4\n"));
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Client>(gw.port()));
    REQUIRE(held.back()->roundTrip(get("/echo?held=" + std::to_string(i))).status == 200);
  }
  Client waiting(gw.port());
  REQUIRE(waiting.connected());  // the kernel completes the handshake; the worker does not take it
  REQUIRE(waiting.send(get("/echo?waiting=1")));
  Response early = waiting.read(500ms);
  CHECK(early.error == "timeout");
  CHECK(metricSample(adminRequest(gw, "/metrics").body, "gatewayd_downstream_connections") == 4);
  held.front()->close();
  Response served = waiting.read(3000ms);
  REQUIRE_MESSAGE(served.complete, served.error);
  CHECK(served.status == 200);
  CHECK(parseEcho(served.body).target == "/echo?waiting=1");
  CHECK(gw.log().find("connection limit reached") != std::string::npos);
}
