#include "gateway/admin/endpoints.h"

#include <doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gw::admin {
namespace {

class FakeProcess final : public Process {
 public:
  ProcessState state() const override { return state_; }
  std::size_t workerCount() const override { return 3; }
  int64_t startedAtMs() const override { return 0; }
  uint64_t configGeneration() const override { return 7; }
  void collectMetrics(std::function<void(std::string)> done) override {
    ++scrapes;
    done("gatewayd_up 1\n");
  }
  // Answers with `nextReload`, which becomes the last one.
  void reload(std::function<void(const ReloadOutcome&)> done) override {
    last_ = nextReload;
    done(*last_);
  }
  const std::optional<ReloadOutcome>& lastReload() const override { return last_; }

  ProcessState state_ = ProcessState::Serving;
  int scrapes = 0;
  ReloadOutcome nextReload;
  std::optional<ReloadOutcome> last_;
};

struct Tagged final : plugin::RouteConfig {
  explicit Tagged(std::string t) : tag(std::move(t)) {}
  std::string tag;
};

// Answers with the tags of the settings it was handed, route by route: "a:x,y;b:".
core::Result<std::string> listTags(std::string_view query,
                                   std::span<const plugin::BoundRoute> routes) {
  if (query == "fail=1")
    return core::Error::downstream(core::ErrorCode::BadRequest, "asked to fail");
  std::string out;
  for (const plugin::BoundRoute& route : routes) {
    out.append(route.name).append(":");
    for (std::size_t i = 0; i < route.settings.size(); ++i) {
      if (i) out += ',';
      out += static_cast<const Tagged*>(route.settings[i])->tag;
    }
    out += ';';
  }
  return out;
}

class WithEndpoint final : public plugin::Factory {
 public:
  std::string_view name() const override { return "tagged"; }
  std::shared_ptr<const plugin::RouteConfig> parse(
      const YAML::Node&, std::vector<plugin::ConfigError>&) const override {
    return nullptr;
  }
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig&,
                                         plugin::WorkerState*) const override {
    return nullptr;
  }
  std::span<const plugin::AdminEndpoint> adminEndpoints() const override { return kEndpoints; }

 private:
  static constexpr plugin::AdminEndpoint kEndpoints[] = {{"DELETE", "/tags", &listTags}};
};

struct Fixture {
  Fixture() {
    auto factory = std::make_unique<WithEndpoint>();
    const plugin::Factory* type = factory.get();
    registry.add(std::move(factory));
    config.upstreams.resize(2);
    config.upstreams[0].name = "used";
    config.upstreams[1].name = "unused";
    auto bind = [&](std::string tag) {
      return config::PluginBinding{
          "tagged", type, std::make_shared<Tagged>(std::move(tag)), {}, {}};
    };
    config::RouteConfig& a = config.routes.emplace_back();
    a.name = "a";
    a.plugins = {bind("x"), bind("y")};
    config::RouteConfig& b = config.routes.emplace_back();
    b.name = "b";
  }

  Response ask(std::string_view method, std::string_view path, std::string_view query = {}) {
    std::optional<Response> answer;
    endpoints.handle({method, path, query}, [&](Response r) { answer = std::move(r); });
    REQUIRE(answer.has_value());
    return std::move(*answer);
  }

  plugin::Registry registry;
  config::Config config;
  // "used" has one backend, "unused" (no route reaches it) none at all.
  upstream::HealthBoard health{{{"used", {"127.0.0.1:1"}, {}, {}}, {"unused", {}, {}, {}}}};
  FakeProcess process;
  Endpoints endpoints{config, registry, health, process};
};

TEST_CASE(
    "admin endpoints: /ready follows the process's state; an unused upstream is not required") {
  Fixture f;
  Response ready = f.ask("GET", "/ready");
  CHECK(ready.status == 200);
  CHECK(ready.body == "{\"status\":\"ready\"}\n");

  f.process.state_ = ProcessState::Starting;
  Response starting = f.ask("GET", "/ready");
  CHECK(starting.status == 503);
  CHECK(starting.body.find("starting: workers are not running yet") != std::string::npos);

  f.process.state_ = ProcessState::Draining;
  Response draining = f.ask("HEAD", "/ready");
  CHECK(draining.status == 503);
  CHECK(draining.body.find("draining: shutting down") != std::string::npos);
}

TEST_CASE(
    "admin endpoints: an upstream without a backend is listed; it fails /ready when required") {
  Fixture f;
  f.config.routes[1].upstream = 1;  // route b now needs "unused", which has no backend
  Response degraded = f.ask("GET", "/ready");
  CHECK(degraded.status == 200);
  CHECK(degraded.body == "{\"status\":\"ready\",\"degraded_upstreams\":[\"unused\"]}\n");

  f.config.readiness.required_upstreams = {0};  // "used" has its backend
  CHECK(f.ask("GET", "/ready").body == degraded.body);

  f.config.readiness.required_upstreams = {0, 1};
  Response notReady = f.ask("GET", "/ready");
  CHECK(notReady.status == 503);
  CHECK(notReady.body ==
        "{\"status\":\"not_ready\",\"reasons\":[\"upstream 'unused' has no healthy backend\"],"
        "\"degraded_upstreams\":[\"unused\"]}\n");

  f.process.state_ = ProcessState::Draining;
  CHECK(f.ask("GET", "/ready").body ==
        "{\"status\":\"not_ready\",\"reasons\":[\"draining: shutting down\",\"upstream 'unused' "
        "has no healthy backend\"],\"degraded_upstreams\":[\"unused\"]}\n");
}

TEST_CASE("admin endpoints: a required upstream no route uses still counts") {
  Fixture f;
  CHECK(f.ask("GET", "/ready").body == "{\"status\":\"ready\"}\n");  // not routed: not listed
  f.config.readiness.required_upstreams = {1};
  Response notReady = f.ask("GET", "/ready");
  CHECK(notReady.status == 503);
  CHECK(notReady.body.find("upstream 'unused' has no healthy backend") != std::string::npos);
}

TEST_CASE("admin endpoints: /status reports what the process says of itself") {
  Fixture f;
  Response status = f.ask("GET", "/status");
  CHECK(status.status == 200);
  CHECK(status.body.find("\"state\":\"serving\"") != std::string::npos);
  CHECK(status.body.find("\"generation\":7") != std::string::npos);
  CHECK(status.body.find("\"workers\":3") != std::string::npos);
  CHECK(status.body.find("{\"name\":\"unused\"") != std::string::npos);
}

TEST_CASE("admin endpoints: /metrics is gathered by the process, as Prometheus text") {
  Fixture f;
  Response metrics = f.ask("GET", "/metrics");
  CHECK(f.process.scrapes == 1);
  CHECK(metrics.status == 200);
  CHECK(metrics.contentType == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics.body == "gatewayd_up 1\n");
}

TEST_CASE("admin endpoints: a plugin's endpoint gets every route with that type's settings") {
  Fixture f;
  Response tags = f.ask("DELETE", "/tags");
  CHECK(tags.status == 200);
  CHECK(tags.body == "a:x,y;b:;");

  Response refused = f.ask("DELETE", "/tags", "fail=1");
  CHECK(refused.status == 400);
  CHECK(refused.body.find("\"BAD_REQUEST\"") != std::string::npos);

  Response wrongMethod = f.ask("GET", "/tags");
  CHECK(wrongMethod.status == 405);
  CHECK(wrongMethod.allow == "DELETE");
}

TEST_CASE("admin endpoints: unknown paths list every endpoint, plugins' included; writes are 405") {
  Fixture f;
  Response unknown = f.ask("GET", "/nope");
  CHECK(unknown.status == 404);
  CHECK(unknown.body.find(
            "admin endpoints: /metrics /health /ready /status, POST /reload, DELETE /tags") !=
        std::string::npos);

  Response post = f.ask("POST", "/health");
  CHECK(post.status == 405);
  CHECK(post.allow == "GET, HEAD");
}

TEST_CASE("admin endpoints: POST /reload answers the outcome, which /status then shows") {
  Fixture f;
  CHECK(f.ask("GET", "/status").body.find("\"last_reload\":null") != std::string::npos);

  f.process.nextReload = {true, false, 8, 1234, {}, {"workers"}};
  Response applied = f.ask("POST", "/reload");
  CHECK(applied.status == 200);
  CHECK(applied.body ==
        "{\"result\":\"applied\",\"generation\":8,\"at_unix_ms\":1234,"
        "\"needs_restart\":[\"workers\"]}\n");

  f.process.nextReload = {
      false, false, 8, 5678, {"gw.yaml:3:7: unknown key 'x'", "gw.yaml:9:1: \"y\""}, {}};
  Response refused = f.ask("POST", "/reload");
  CHECK(refused.status == 400);
  CHECK(refused.body ==
        "{\"error\":{\"code\":\"CONFIG_INVALID\",\"message\":\"gw.yaml:3:7: unknown key 'x'\"},"
        "\"reload\":{\"result\":\"refused\",\"generation\":8,\"at_unix_ms\":5678,"
        "\"errors\":[\"gw.yaml:3:7: unknown key 'x'\",\"gw.yaml:9:1: \\\"y\\\"\"]}}\n");
  CHECK(f.ask("GET", "/status")
            .body.find(
                "\"last_reload\":{\"result\":\"refused\",\"generation\":8,\"at_unix_ms\":5678,") !=
        std::string::npos);

  f.process.nextReload = {false, true, 8, 9999, {"the gateway is draining"}, {}};
  Response draining = f.ask("POST", "/reload");
  CHECK(draining.status == 503);
  CHECK(draining.body.find("{\"error\":{\"code\":\"SHUTTING_DOWN\"") == 0);

  Response get = f.ask("GET", "/reload");
  CHECK(get.status == 405);
  CHECK(get.allow == "POST");
}

}  // namespace
}  // namespace gw::admin
