// Reload (SIGHUP and POST /reload) through the real gatewayd: a new configuration goes live for
// new requests while requests in flight finish on theirs; a broken one never goes live; state of
// what did not change (rate-limit windows, cache entries, connection pools) survives.
#include <doctest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

using Clock = std::chrono::steady_clock;

// Every answer says which configuration served it (X-Config: TAG); /limited allows 2 requests a
// minute per client; /cached/ stores origin answers; `extra_routes` is written as given.
std::string taggedConfig(const Backend& b, std::string_view tag, int workers = 1,
                         std::string_view extra_top = {}, std::string_view limitedLimit = "2") {
  return subst(R"(workers: ${W}
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends: [${B}]
plugins:
  - security_headers: {headers: {X-Config: ${TAG}}}
routes:
  - name: limited
    match: {prefix: /limited}
    upstream: main
    plugins:
      - rate_limit: {limits: [{requests: ${LIMIT}, window: 1m}], key: [route]}
  - name: cached
    match: {prefix: /cached/}
    upstream: main
    strip_prefix: /cached
    plugins:
      - cache: {}
  - name: rest
    match: {prefix: /}
    upstream: main
${TOP})",
               {{"W", std::to_string(workers)},
                {"B", b.address()},
                {"TAG", std::string(tag)},
                {"LIMIT", std::string(limitedLimit)},
                {"TOP", std::string(extra_top)}});
}

std::string configTag(const Response& r) { return r.header("X-Config").value_or("<none>"); }

std::string tagNow(const Gateway& gw) {
  return configTag(Client(gw.port()).roundTrip(get("/echo")));
}

Response postReload(const Gateway& gw) { return adminRequest(gw, "/reload", "POST"); }

double metric(const Gateway& gw, const std::string& series) {
  return metricSample(adminRequest(gw, "/metrics").body, series);
}

}  // namespace

TEST_CASE("reload: SIGHUP puts a new configuration live; /status, metrics and the log say so") {
  Backend b;
  Gateway gw(taggedConfig(b, "one"));
  REQUIRE(tagNow(gw) == "one");
  gw.rewriteConfig(taggedConfig(b, "two"));
  gw.process().signal(SIGHUP);
  REQUIRE(waitFor([&] { return tagNow(gw) == "two"; }, 5000ms));
  CHECK(waitFor([&] { return gw.log().find("configuration reloaded") != std::string::npos; },
                2000ms));
  const Response status = adminRequest(gw, "/status");
  CHECK(status.body.find("\"generation\":2") != std::string::npos);
  CHECK(status.body.find("\"last_reload\":{\"result\":\"applied\",\"generation\":2") !=
        std::string::npos);
  CHECK(metric(gw, "gatewayd_config_reloads_total{result=\"success\"}") == 1);
  CHECK(metric(gw, "gatewayd_config_generation") == 2);
}

TEST_CASE("reload: a broken file never goes live; the error has FILE:LINE:COL everywhere") {
  Backend b;
  Gateway gw(taggedConfig(b, "one"));
  std::string broken = taggedConfig(b, "two");
  broken.replace(broken.find("upstream: main\n    plugins"), 14, "upstream: nowhere");
  gw.rewriteConfig(broken);
  const Response refused = postReload(gw);
  CHECK(refused.status == 400);
  CHECK(errorCode(refused.body) == "CONFIG_INVALID");
  CHECK_MESSAGE(refused.body.find(gw.configPath() + ":13:15: unknown upstream 'nowhere'") !=
                    std::string::npos,
                refused.body);
  CHECK(tagNow(gw) == "one");
  gw.process().signal(SIGHUP);
  CHECK(
      waitFor([&] { return metric(gw, "gatewayd_config_reloads_total{result=\"failure\"}") == 2; },
              5000ms));
  CHECK(gw.log().find("reload refused, the running configuration keeps serving") !=
        std::string::npos);
  CHECK(gw.log().find(gw.configPath() + ":13:15: unknown upstream") != std::string::npos);
  const Response status = adminRequest(gw, "/status");
  CHECK(status.body.find("\"generation\":1") != std::string::npos);
  CHECK(status.body.find("\"last_reload\":{\"result\":\"refused\",\"generation\":1") !=
        std::string::npos);
  CHECK(tagNow(gw) == "one");

  gw.rewriteConfig(taggedConfig(b, "three"));
  const Response applied = postReload(gw);
  CHECK(applied.status == 200);
  CHECK(applied.body.find("{\"result\":\"applied\",\"generation\":2,") == 0);
  CHECK(tagNow(gw) == "three");
}

TEST_CASE("reload: a request in flight finishes on the configuration it began on") {
  Backend b;
  Gateway gw(taggedConfig(b, "one"));
  Client slow(gw.port());
  REQUIRE(slow.send(get("/delay/700")));
  REQUIRE(waitFor([&] { return b.stats().requests >= 1; }, 3000ms));  // upstream has it
  gw.rewriteConfig(taggedConfig(b, "two"));
  REQUIRE(postReload(gw).status == 200);
  CHECK(tagNow(gw) == "two");
  const Response r = slow.read(5000ms);
  CHECK(r.status == 200);
  CHECK(configTag(r) == "one");
  // The same keep-alive connection takes the new configuration at its next request.
  CHECK(configTag(slow.roundTrip(get("/echo"))) == "two");
}

TEST_CASE("reload: state of what did not change survives; what changed starts afresh") {
  Backend b;
  Gateway gw(taggedConfig(b, "one"));
  for (int i = 0; i < 2; ++i) REQUIRE(Client(gw.port()).roundTrip(get("/limited")).status == 200);
  REQUIRE(Client(gw.port()).roundTrip(get("/limited")).status == 429);
  const std::string cached = "/cached/origin/x?h=" + percentEncode("Cache-Control: max-age=600");
  const Response first = Client(gw.port()).roundTrip(get(cached));
  REQUIRE(first.status == 200);
  Client pooled(gw.port());
  REQUIRE(pooled.roundTrip(get("/echo")).status == 200);
  const uint64_t connectionsBefore = b.stats().connections;

  // Only another route changes.
  std::string otherRouteChanged = taggedConfig(b, "one");
  const std::string rest = "  - name: rest\n    match: {prefix: /}\n";
  otherRouteChanged.replace(otherRouteChanged.find(rest), rest.size(),
                            rest + "    preserve_host: false\n");
  gw.rewriteConfig(otherRouteChanged);
  REQUIRE(postReload(gw).status == 200);
  CHECK(Client(gw.port()).roundTrip(get("/limited")).status == 429);  // window kept

  // Only the global list's tag changes: every route's own entries and the upstream stay.
  gw.rewriteConfig(taggedConfig(b, "two"));
  REQUIRE(postReload(gw).status == 200);
  CHECK(Client(gw.port()).roundTrip(get("/limited")).status == 429);  // window kept
  const Response again = Client(gw.port()).roundTrip(get(cached));
  CHECK(again.body == first.body);  // the stored entry, not the origin's next answer
  CHECK(configTag(again) == "two");
  CHECK(pooled.roundTrip(get("/echo")).status == 200);
  CHECK(b.stats().connections == connectionsBefore);  // the pooled backend connection reused

  // The limit itself changes: a fresh window.
  gw.rewriteConfig(taggedConfig(b, "three", 1, {}, "3"));
  REQUIRE(postReload(gw).status == 200);
  CHECK(Client(gw.port()).roundTrip(get("/limited")).status == 200);
}

TEST_CASE("reload: what needs a restart keeps its running value and is named") {
  Backend b;
  Gateway gw(taggedConfig(b, "one", 1));
  gw.rewriteConfig(taggedConfig(b, "two", 3));
  const Response applied = postReload(gw);
  CHECK(applied.status == 200);
  CHECK(applied.body.find("\"needs_restart\":[\"workers\"]") != std::string::npos);
  CHECK(gw.log().find("takes effect only at the next restart") != std::string::npos);
  CHECK(adminRequest(gw, "/status").body.find("\"workers\":1") != std::string::npos);
  CHECK(tagNow(gw) == "two");
}

TEST_CASE("reload: 20 reloads under load lose no request; each answer is from a live config") {
  Backend b;
  Gateway gw(taggedConfig(b, "0", 2));
  // Reload k puts tag k live. Live windows: tag k from the moment reload k was asked until
  // reload k+1 had answered (then every worker served k+1).
  struct Window {
    Clock::time_point asked, answered;
  };
  std::vector<Window> reloads;  // index k-1 for tag k; written before tag k can be served
  std::mutex reloadsLock;
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, answered{0}, misplaced{0};
  std::string firstProblem;
  std::mutex problemLock;
  const auto note = [&](std::string problem) {
    std::lock_guard lock(problemLock);
    if (firstProblem.empty()) firstProblem = std::move(problem);
  };
  const auto client = [&](bool keepAlive) {
    std::optional<Client> c;
    for (int i = 0; i < 4000 && !stop; ++i) {
      if (!c || !keepAlive) c.emplace(gw.port());
      const Clock::time_point began = Clock::now();
      const Response r = c->roundTrip(get("/echo"), 5000ms);
      const Clock::time_point ended = Clock::now();
      if (!r.complete || r.status != 200) {
        ++failed;
        note("request failed: status " + std::to_string(r.status) + " " + r.error);
        c.reset();
        continue;
      }
      ++answered;
      const int tag = std::stoi(configTag(r));
      std::lock_guard lock(reloadsLock);
      // Tag k cannot answer a request that ended before reload k was asked, nor one that began
      // after reload k+1 had answered.
      const bool tooEarly = tag > 0 && ended < reloads[tag - 1].asked;
      const bool tooLate =
          static_cast<std::size_t>(tag) < reloads.size() && began > reloads[tag].answered;
      if (tooEarly || tooLate) {
        ++misplaced;
        note("tag " + std::to_string(tag) + " outside its live window");
      }
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) clients.emplace_back(client, i % 2 == 0);
  REQUIRE(waitFor([&] { return answered.load() > 50; }, 5000ms));
  int tag = 0;
  for (int round = 0; round < 20; ++round) {
    const bool broken = round % 3 == 2;
    std::string yaml = taggedConfig(b, std::to_string(tag + 1), 2);
    if (broken) yaml += "limits: {header_bytes: lots}\n";
    gw.rewriteConfig(yaml);
    {
      std::lock_guard lock(reloadsLock);
      if (!broken) reloads.push_back({Clock::now(), Clock::time_point::max()});
    }
    const Response r = postReload(gw);
    if (broken) {
      CHECK(r.status == 400);
      continue;
    }
    REQUIRE(r.status == 200);
    ++tag;
    std::lock_guard lock(reloadsLock);
    reloads[tag - 1].answered = Clock::now();
    // Requests begun from here on may be served by this tag only.
  }
  const int answeredAtEnd = answered.load();
  CHECK(waitFor([&] { return answered.load() > answeredAtEnd + 20; }, 5000ms));
  stop = true;
  for (auto& t : clients) t.join();
  CHECK_MESSAGE(failed.load() == 0, firstProblem);
  CHECK_MESSAGE(misplaced.load() == 0, firstProblem);
  CHECK(tagNow(gw) == std::to_string(tag));
  CHECK(metric(gw, "gatewayd_config_reloads_total{result=\"success\"}") == tag);
  CHECK(metric(gw, "gatewayd_config_reloads_total{result=\"failure\"}") == 20 - tag);
}

TEST_CASE(
    "reload: a listener moves to another port, its connections drain; one that stays never "
    "refuses") {
  Backend b;
  const uint16_t movedFrom = freePort();
  const uint16_t movedTo = freePort();
  const auto withListener = [&](uint16_t extra, std::string_view tag) {
    std::string yaml = taggedConfig(b, tag, 2);
    const std::string listeners = "listeners:\n";
    yaml.insert(yaml.find(listeners) + listeners.size(),
                "  - {address: 127.0.0.1, port: " + std::to_string(extra) + "}\n");
    return yaml;
  };
  Gateway gw(withListener(movedFrom, "one"));
  REQUIRE(waitPortOpen(movedFrom, 2000ms));
  // New connections to the port that stays, one per request, all along.
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, failed{0};
  std::thread load([&] {
    for (int i = 0; i < 20000 && !stop; ++i) {
      const Response r = Client(gw.port()).roundTrip(get("/echo"), 3000ms);
      (r.complete && r.status == 200 ? answered : failed)++;
    }
  });
  REQUIRE(waitFor([&] { return answered.load() > 20; }, 5000ms));
  Client idle(movedFrom), busy(movedFrom);
  REQUIRE(idle.roundTrip(get("/echo")).status == 200);
  REQUIRE(busy.send(get("/delay/500")));
  REQUIRE(waitFor(
      [&] {
        const auto seen = b.requests();
        return std::any_of(seen.begin(), seen.end(),
                           [](const Echo& e) { return e.target == "/delay/500"; });
      },
      3000ms));  // the backend has it: the exchange began before the reload

  gw.rewriteConfig(withListener(movedTo, "two"));
  REQUIRE(postReload(gw).status == 200);
  CHECK(configTag(Client(movedTo).roundTrip(get("/echo"))) == "two");
  CHECK(connectRefused(movedFrom));
  // The removed listener's connections drain: an idle one is closed, a busy one gets its answer
  // (on the configuration it began on), then is closed.
  CHECK(idle.waitClosed(2000ms));
  const Response slow = busy.read(3000ms);
  CHECK(slow.status == 200);
  CHECK(configTag(slow) == "one");
  CHECK(slow.header("Connection").value_or("") == "close");
  CHECK(busy.waitClosed(2000ms));

  gw.rewriteConfig(withListener(movedFrom, "three"));
  REQUIRE(postReload(gw).status == 200);
  CHECK(configTag(Client(movedFrom).roundTrip(get("/echo"))) == "three");
  CHECK(connectRefused(movedTo));
  const int answeredAtEnd = answered.load();
  CHECK(waitFor([&] { return answered.load() > answeredAtEnd + 20; }, 5000ms));
  stop = true;
  load.join();
  CHECK(failed.load() == 0);
}

TEST_CASE("reload: an address that cannot be had refuses the reload; nothing changes") {
  Backend b;
  Gateway gw(taggedConfig(b, "one"));
  // A listener on the backend's own port, which the backend holds.
  std::string yaml = taggedConfig(b, "two");
  yaml.insert(yaml.find("listeners:\n") + 11,
              "  - {address: 127.0.0.1, port: " + std::to_string(b.port()) + "}\n");
  gw.rewriteConfig(yaml);
  const Response refused = postReload(gw);
  CHECK(refused.status == 400);
  CHECK(refused.body.find("cannot listen") != std::string::npos);
  CHECK(tagNow(gw) == "one");
}
