// A worker's generations across reloads, without a running loop: what a reload carries into the
// next generation (clusters of upstreams written the same, plugin worker states of kept entries),
// and when a replaced generation ends (its last hold) with its counts joining the current shard.
#include "gateway/proxy/generation.h"

#include <doctest.h>

#include "gateway/core/reactor.h"
#include "gateway/proxy/router.h"
#include "gateway/proxy/worker_context.h"
#include "gateway/runtime/load_environment.h"
#include "gateway/runtime/reload_plan.h"
#include "gateway/runtime/snapshot.h"
#include "test/support/fake_dispatcher.h"

namespace gw::proxy {
namespace {

std::string configWith(std::string_view bodyLimit, std::string_view secondPool) {
  return "listeners: [{address: 127.0.0.1, port: 8080}]\n"
         "upstreams:\n"
         "  - {name: a, backends: [127.0.0.1:9000]}\n"
         "  - {name: b, backends: [127.0.0.1:9001], pool: {max_idle: " +
         std::string(secondPool) +
         "}}\n"
         "routes:\n"
         "  - name: validated\n"
         "    match: {prefix: /a}\n"
         "    upstream: a\n"
         "    plugins: [{schema_validation: {max_body_bytes: " +
         std::string(bodyLimit) + ", schema: {type: object}}}]\n" +
         "  - {name: other, match: {prefix: /b}, upstream: b}\n";
}

struct Loaded {
  std::shared_ptr<const runtime::Snapshot> snapshot;
  std::shared_ptr<upstream::HealthBoard> health;
};

// `live`: the configuration it replaces, for the reload's identity rule.
Loaded load(const std::string& yaml, const Loaded* live = nullptr) {
  config::LoadResult loaded = config::loadString(yaml, "g.yaml", runtime::loadEnvironment());
  REQUIRE_MESSAGE(loaded.config, (loaded.errors.empty() ? "" : loaded.errors[0].format()));
  if (live) runtime::planReload(*loaded.config, live->snapshot->config);
  std::vector<config::Diagnostic> errors;
  Loaded result;
  result.snapshot = runtime::buildSnapshot(std::move(*loaded.config), plugin::Registry::builtin(),
                                           errors, live ? live->snapshot.get() : nullptr);
  REQUIRE(errors.empty());
  std::vector<upstream::UpstreamHealthSpec> specs;
  for (const auto& upstream : result.snapshot->metricsLayout->upstreams) {
    specs.push_back({upstream.name, upstream.backends, {}, {}});
  }
  result.health = std::make_shared<upstream::HealthBoard>(std::move(specs));
  return result;
}

ServedConfig served(const Loaded& loaded) {
  const runtime::Snapshot& s = *loaded.snapshot;
  return {s.config,        *s.router,       s.backendAddresses,
          s.upstreamTls,   s.upstreamLoads, s.routeGates,
          s.metricsLayout, nullptr,         s.unrouted};
}

struct NoConnections final : ConnectionHome {
  void connectionClosed(Connection&) override {}
};

struct Fixture {
  explicit Fixture(const Loaded& first)
      : context(0, reactor.base(), dispatcher, served(first), *first.health,
                std::make_shared<Loaded>(first), 1, SharedServices{}, home) {}
  void serve(const Loaded& next) {
    context.serve(served(next), *next.health, std::make_shared<Loaded>(next),
                  next.snapshot->generation);
  }

  core::Reactor reactor;
  test::FakeDispatcher dispatcher;
  NoConnections home;
  WorkerContext context;
};

TEST_CASE("generation: a reload carries unchanged clusters and plugin states, and only those") {
  const Loaded first = load(configWith("500", "4"));
  Fixture f(first);
  Generation& before = f.context.current();
  upstream::Cluster* clusterA = before.clusters()[0].get();
  upstream::Cluster* clusterB = before.clusters()[1].get();
  plugin::WorkerState* validatorState = before.pluginStates(0)[0];
  REQUIRE(validatorState != nullptr);

  SUBCASE("only b's pool size changed") {
    f.serve(load(configWith("500", "8"), &first));
    Generation& after = f.context.current();
    CHECK(after.number() == 2);
    CHECK(after.clusters()[0].get() == clusterA);
    CHECK(&after.clusters()[0]->config() == &after.config().upstreams[0]);  // rebound
    CHECK(after.clusters()[1].get() != clusterB);
    CHECK(after.pluginStates(0)[0] == validatorState);
  }
  SUBCASE("the validator's settings changed") {
    f.serve(load(configWith("600", "4"), &first));
    CHECK(f.context.current().pluginStates(0)[0] != validatorState);
    CHECK(f.context.current().clusters()[1].get() == clusterB);
  }
}

TEST_CASE("generation: a replaced generation lives while held; its counts then join the current") {
  const Loaded first = load(configWith("500", "4"));
  Fixture f(first);
  Generation& old = f.context.current();
  old.metrics().routes[0].request_bytes = 100;
  std::optional<Generation::Hold> inFlight(std::in_place, old);

  f.serve(load(configWith("500", "4"), &first));
  CHECK(&f.context.current() != &old);
  CHECK(f.context.replacedGenerations() == 1);
  CHECK(old.replaced());
  f.context.current().metrics().routes[0].request_bytes = 20;
  CHECK(f.context.metricsTotal().routes[0].request_bytes == 120);  // a scrape sees both

  inFlight.reset();  // the last exchange on it ends
  CHECK(f.context.replacedGenerations() == 0);
  CHECK(f.context.current().metrics().routes[0].request_bytes == 120);
  CHECK(f.context.metricsTotal().routes[0].request_bytes == 120);
}

// Route "other" with a concurrency limit of `maxRequests`.
std::string limitedConfig(std::string_view maxRequests) {
  std::string yaml = configWith("500", "4");
  yaml.insert(yaml.size() - 2, ", concurrency: {max_requests: " + std::string(maxRequests) + "}");
  return yaml;
}

TEST_CASE("generation: a reload keeps a route's concurrency queue while its limit is the same") {
  const Loaded first = load(limitedConfig("3"));
  Fixture f(first);
  CHECK(f.context.current().routeQueue(0) == nullptr);  // "validated" has no limit
  RouteQueue* queue = f.context.current().routeQueue(1);
  REQUIRE(queue != nullptr);
  CHECK(queue->gate().limit().max_requests == 3);

  SUBCASE("the same limit: the same queue and gate, slots in flight kept") {
    REQUIRE(queue->gate().enter());
    const Loaded second = load(limitedConfig("3"), &first);
    f.serve(second);
    CHECK(f.context.current().routeQueue(1) == queue);
    CHECK(queue->gate().inFlight() == 1);
    queue->gate().release(queue);
  }
  SUBCASE("another limit: a new gate") {
    f.serve(load(limitedConfig("4"), &first));
    RouteQueue* next = f.context.current().routeQueue(1);
    REQUIRE(next != nullptr);
    CHECK(next != queue);
    CHECK(next->gate().limit().max_requests == 4);
  }
  SUBCASE("no limit any more") {
    f.serve(load(configWith("500", "4"), &first));
    CHECK(f.context.current().routeQueue(1) == nullptr);
  }
}

TEST_CASE("generation: one no exchange holds ends at once") {
  const Loaded first = load(configWith("500", "4"));
  Fixture f(first);
  f.serve(load(configWith("500", "4"), &first));
  CHECK(f.context.replacedGenerations() == 0);
}

}  // namespace
}  // namespace gw::proxy
