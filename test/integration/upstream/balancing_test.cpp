// Load-balancing policies and outlier ejection through the real gatewayd: which backend answered
// is read from each answer's X-Backend-Id (test_backend --id).
#include <doctest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// The id of the backend that answered `request` on a fresh connection ("" on failure).
std::string answeredBy(const Gateway& gw, const std::string& request) {
  Client c(gw.port());
  Response r = c.roundTrip(request);
  if (!r.complete || r.status != 200) return "";
  return r.header("X-Backend-Id").value_or("");
}

struct Backends {
  Backend b1{"b1"}, b2{"b2"}, b3{"b3"};
  std::vector<const Backend*> all() const { return {&b1, &b2, &b3}; }
};

// Which backend each of `users` got, sending the user in `header` (one request per user).
std::map<int, std::string> usersOn(const Gateway& gw, int users,
                                   const std::function<std::string(int)>& header) {
  std::map<int, std::string> owner;
  for (int u = 0; u < users; ++u) owner[u] = answeredBy(gw, get("/echo", header(u)));
  return owner;
}

std::string xUser(int user) { return "X-User: user-" + std::to_string(user) + "\r\n"; }

std::string status(const Gateway& gw) { return adminRequest(gw, "/status").body; }

double ejections(const Gateway& gw, const std::string& reason) {
  return metricSample(
      adminRequest(gw, "/metrics").body,
      "gatewayd_upstream_ejections_total{upstream=\"main\",reason=\"" + reason + "\"}");
}

TEST_CASE("balancing: hash on a header is sticky, spreads users, and a dead backend's move") {
  Backends b;
  Gateway gw(
      simpleConfig(b.all(), {}, "    load_balancing: {policy: hash, hash_on: {header: X-User}}\n"));
  const std::map<int, std::string> first = usersOn(gw, 60, xUser);
  CHECK(usersOn(gw, 60, xUser) == first);  // sticky
  std::map<std::string, int> perBackend;
  for (const auto& [user, id] : first) ++perBackend[id];
  CHECK(perBackend.size() == 3);
  for (const auto& [id, count] : perBackend) CHECK(count >= 8);  // 20 expected of 60
  CHECK(perBackend.count("") == 0);

  // Without the header: round robin over all three.
  std::map<std::string, int> anonymous;
  for (int i = 0; i < 6; ++i) ++anonymous[answeredBy(gw, get("/echo"))];
  CHECK(anonymous == std::map<std::string, int>{{"b1", 2}, {"b2", 2}, {"b3", 2}});

  b.b2.process().stop();
  const std::map<int, std::string> after = usersOn(gw, 60, xUser);
  for (const auto& [user, id] : first) {
    if (id == "b2") {
      CHECK(after.at(user) != "b2");
      CHECK(!after.at(user).empty());
    } else {
      CHECK(after.at(user) == id);  // nobody else moved
    }
  }
}

TEST_CASE("balancing: hash on a cookie or the client address is sticky") {
  Backends b;
  {
    Gateway gw(
        simpleConfig(b.all(), {}, "    load_balancing: {policy: hash, hash_on: {cookie: sid}}\n"));
    auto cookie = [](int user) {
      return "Cookie: theme=dark; sid=s" + std::to_string(user) + "\r\n";
    };
    const std::map<int, std::string> first = usersOn(gw, 30, cookie);
    CHECK(usersOn(gw, 30, cookie) == first);
    std::map<std::string, int> perBackend;
    for (const auto& [user, id] : first) ++perBackend[id];
    CHECK(perBackend.size() == 3);
  }
  Gateway gw(simpleConfig(b.all(), {},
                          "    load_balancing: {policy: hash, hash_on: {client_ip: true}}\n"));
  const std::string one = answeredBy(gw, get("/echo"));
  REQUIRE(!one.empty());
  for (int i = 0; i < 10; ++i) CHECK(answeredBy(gw, get("/echo")) == one);  // all from 127.0.0.1
}

TEST_CASE("balancing: least_request sends fewer requests to a slow backend") {
  Backend fast("fast"), slow("slow");
  slow.behave(0, 200);
  Gateway gw(simpleConfig({&fast, &slow}, {}, "    load_balancing: {policy: least_request}\n"));
  // Four clients, each sending its next request as soon as it has the last answer, for 1.5 s:
  // round robin would split requests evenly; least_request sends each to the backend with fewer
  // in flight, which is almost always the fast one.
  constexpr int kClients = 4;
  std::vector<std::map<std::string, int>> answered(kClients);
  std::vector<std::thread> threads;
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Client c(gw.port());
      for (int n = 0; n < 2000 && std::chrono::steady_clock::now() < until; ++n) {
        Response r = c.roundTrip(get("/echo"));
        ++answered[i][r.complete && r.status == 200 ? r.header("X-Backend-Id").value_or("") : ""];
      }
    });
  }
  for (auto& t : threads) t.join();
  std::map<std::string, int> total;
  for (const auto& counts : answered) {
    for (const auto& [id, n] : counts) total[id] += n;
  }
  CHECK(total.count("") == 0);
  CHECK(total["fast"] > 10 * total["slow"]);
  CHECK(total["slow"] >= 1);
}

TEST_CASE("outliers: consecutive 5xx eject a backend, counted by reason, within the cap") {
  Backends b;
  Gateway gw(simpleConfig(b.all(), {},
                          "    health_checks:\n"
                          "      passive: {consecutive_failures: 0, consecutive_5xx: 3,"
                          " max_ejection_percent: 34}\n"));
  b.b2.behave(500);
  b.b3.behave(503);
  for (int i = 0; i < 12; ++i) {
    Client c(gw.port());
    c.roundTrip(get("/echo"));
  }
  // One of the two failing backends is ejected; the other's streak was refused by the cap.
  CHECK(ejections(gw, "consecutive_5xx") == 1);
  CHECK(metricSample(adminRequest(gw, "/metrics").body,
                     "gatewayd_upstream_ejections_refused_total{upstream=\"main\",reason="
                     "\"consecutive_5xx\"}") >= 1);
  const std::string body = status(gw);
  CHECK(body.find("\"ejection_reason\":\"consecutive_5xx\"") != std::string::npos);
  CHECK(body.find("3 consecutive 5xx responses or failures") != std::string::npos);
}

TEST_CASE("outliers: a backend whose success rate falls far below the others' is ejected") {
  std::vector<std::unique_ptr<Backend>> owned;
  std::vector<const Backend*> backends;
  for (int i = 1; i <= 5; ++i) {
    owned.push_back(std::make_unique<Backend>("s" + std::to_string(i)));
    backends.push_back(owned.back().get());
  }
  owned[4]->behave(500);
  Gateway gw(simpleConfig(backends, {},
                          "    health_checks:\n"
                          "      passive:\n"
                          "        consecutive_failures: 0\n"
                          "        success_rate: {interval: 1s, minimum_hosts: 5,"
                          " request_volume: 10}\n"));
  // 100 requests, 20 per backend, within one or two intervals.
  for (int i = 0; i < 100; ++i) {
    Client c(gw.port());
    c.roundTrip(get("/echo"));
  }
  CHECK(waitFor([&] { return ejections(gw, "success_rate") == 1; }, 5000ms));
  const std::string body = status(gw);
  CHECK(body.find("\"ejection_reason\":\"success_rate\"") != std::string::npos);
  CHECK(body.find("success rate 0.0% below the upstream's threshold") != std::string::npos);
  // Ejected: every request is answered by the healthy four.
  for (int i = 0; i < 8; ++i) CHECK(!answeredBy(gw, get("/echo")).empty());
}

}  // namespace
