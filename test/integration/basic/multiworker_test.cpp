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
