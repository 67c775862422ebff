// Several worker threads, many concurrent client connections: every one is answered, and the
// answers come from more than one worker.
#include <doctest.h>
#include <rapidjson/document.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// The worker part of a gateway request id: each worker's ids start with its own 8 hex digits
// (proxy::WorkerContext::formatRequestId), so two prefixes mean two workers answered.
std::string workerPrefix(const Response& r) {
  rapidjson::Document d;
  if (d.Parse(r.body.c_str()).HasParseError() || !d.IsObject() || !d.HasMember("error")) return {};
  const std::string id = d["error"]["request_id"].GetString();
  return id.size() == 16 ? id.substr(0, 8) : std::string();
}

}  // namespace

TEST_CASE("multiworker: 2 workers both answer 200 concurrent connections") {
  Backend b;
  Gateway gw(apiConfig(b, 2));
  constexpr int kConnections = 200;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kConnections; ++i) clients.push_back(std::make_unique<Client>(gw.port()));
  // All requests are in flight before the first response is read.
  for (int i = 0; i < kConnections; ++i)
    REQUIRE(clients[i]->send(get("/api/echo?i=" + std::to_string(i))));
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
  for (int i = 0; i < kConnections; ++i) REQUIRE(clients[i]->send(get("/api/bytes/1000")));
  for (int i = 0; i < kConnections; ++i) {
    Response r = clients[i]->read(10000ms);
    CHECK(r.complete);
    CHECK(r.body_bytes == 1000);
  }
  CHECK(b.stats().requests == 2 * kConnections);

  // Which worker holds each connection: its own answer names it. The kernel spreads the
  // connections over both workers' SO_REUSEPORT sockets by hashing their ports; all 200 on one
  // socket would happen about once in 2^199 runs.
  std::set<std::string> workers;
  for (auto& c : clients) {
    Response r = c->roundTrip(get("/unrouted"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 404);
    workers.insert(workerPrefix(r));
  }
  CHECK_FALSE(workers.count(""));
  CHECK(workers.size() == 2);
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
