#include "gateway/runtime/reload_plan.h"

#include <doctest.h>

#include "gateway/runtime/load_environment.h"

namespace gw::runtime {
namespace {

config::Config load(const std::string& yaml) {
  config::LoadResult result = config::loadString(yaml, "t.yaml", loadEnvironment());
  REQUIRE_MESSAGE(result.config.has_value(),
                  (result.errors.empty() ? "" : result.errors.front().format()));
  return std::move(*result.config);
}

std::string configWith(const std::string& routes, std::string_view rest = "") {
  return "listeners: [{port: 8080}]\n"
         "upstreams:\n"
         "  - {name: a, backends: [127.0.0.1:9000]}\n"
         "  - {name: b, backends: [127.0.0.1:9001], pool: {max_idle: 4}}\n"
         "routes:\n" +
         routes + std::string(rest);
}

// A route `name` on /`name` to upstream `upstream` with one rate limit per client of `requests`
// a second, then `more` plugin entries.
std::string limitedRoute(std::string_view name, std::string_view upstream, int requests,
                         std::string_view more = "") {
  return "  - name: " + std::string(name) + "\n    match: {prefix: /" + std::string(name) +
         "}\n    upstream: " + std::string(upstream) +
         "\n    plugins:\n      - rate_limit: {limits: [{requests: " + std::to_string(requests) +
         ", window: 1s}], key: [client_ip]}\n" + std::string(more);
}

TEST_CASE("an entry written the same on a route of the same name shares the live settings") {
  const config::Config live =
      load(configWith(limitedRoute("one", "a", 5) + limitedRoute("two", "b", 5)));
  config::Config next = load(configWith(limitedRoute("one", "a", 5) + limitedRoute("two", "b", 9)));
  const ReloadPlan plan = planReload(next, live);
  CHECK(plan.pluginEntriesKept == 1);
  CHECK(next.routes[0].plugins[0].settings == live.routes[0].plugins[0].settings);
  CHECK(next.routes[1].plugins[0].settings != live.routes[1].plugins[0].settings);
  CHECK(plan.needsRestart.empty());
}

TEST_CASE("an entry moved to another route, or on a renamed route, starts with fresh state") {
  const config::Config live =
      load(configWith(limitedRoute("one", "a", 5) + limitedRoute("two", "b", 5)));
  config::Config next = load(configWith(limitedRoute("renamed", "a", 5)));
  CHECK(planReload(next, live).pluginEntriesKept == 0);
  CHECK(next.routes[0].plugins[0].settings != live.routes[0].plugins[0].settings);
}

TEST_CASE("entries of one type are matched by their place among that type's entries") {
  const std::string secondLimit =
      "      - rate_limit: {limits: [{requests: 50, window: 1m}], key: [client_ip]}\n";
  const config::Config live =
      load(configWith(limitedRoute("one", "a", 5, secondLimit) + "      - request_id: {}\n"));
  config::Config next = load(configWith(limitedRoute("one", "a", 5, secondLimit)));
  CHECK(planReload(next, live).pluginEntriesKept == 2);
  CHECK(next.routes[0].plugins[0].settings == live.routes[0].plugins[0].settings);
  CHECK(next.routes[0].plugins[1].settings == live.routes[0].plugins[1].settings);
}

TEST_CASE("the global list keeps its entries too") {
  const std::string route = "  - {name: one, match: {prefix: /}, upstream: a}\n";
  const config::Config live =
      load(configWith(route, "plugins: [{security_headers: {hide_server: true}}]\n"));
  config::Config next =
      load(configWith(route, "plugins: [{security_headers: {hide_server: true}}]\n"));
  planReload(next, live);
  CHECK(next.plugins[0].settings == live.plugins[0].settings);
  CHECK(next.routes[0].plugins[0].settings == live.routes[0].plugins[0].settings);
}

TEST_CASE("upstreams written the same are counted as kept") {
  const std::string route = "  - {name: one, match: {prefix: /}, upstream: a}\n";
  const config::Config live = load(configWith(route));
  config::Config next = load(
      "listeners: [{port: 8080}]\n"
      "upstreams:\n"
      "  - {name: a, backends: [127.0.0.1:9000]}\n"
      "  - {name: b, backends: [127.0.0.1:9001], pool: {max_idle: 8}}\n"
      "routes:\n" +
      route);
  CHECK(planReload(next, live).upstreamsKept == 1);
}

TEST_CASE("what only a restart changes keeps its live value and is named") {
  const std::string route = "  - {name: one, match: {prefix: /}, upstream: a}\n";
  const config::Config live = load(configWith(route, "workers: 2\n"));
  config::Config next = load(configWith(route,
                                        "workers: 4\n"
                                        "admin: {port: 9911}\n"
                                        "access_log: {path: /tmp/other.log}\n"));
  const ReloadPlan plan = planReload(next, live);
  CHECK(plan.needsRestart == std::vector<std::string>{"workers", "admin", "access_log.path"});
  CHECK(next.workers == 2);
  CHECK(next.admin.port == live.admin.port);
  CHECK(next.access_log.path == "stdout");
}

}  // namespace
}  // namespace gw::runtime
