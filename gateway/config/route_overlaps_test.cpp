#include "gateway/config/route_overlaps.h"

#include <doctest.h>

#include <algorithm>
#include <random>

#include <time.h>

#include "gateway/http/path.h"

namespace gw::config {
namespace {

double threadCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

constexpr std::string_view kMethods[] = {"GET", "HEAD", "POST", "PUT", "DELETE"};

RouteMatch prefix(std::string path, std::vector<std::string> methods = {},
                  std::optional<std::string> host = std::nullopt) {
  return {PathMatch::Prefix, std::move(path), std::move(host), std::move(methods)};
}

RouteMatch exact(std::string path, std::vector<std::string> methods = {},
                 std::optional<std::string> host = std::nullopt) {
  return {PathMatch::Exact, std::move(path), std::move(host), std::move(methods)};
}

// Every pair compared, as the definition reads: the oracle the index must agree with.
bool covers(const RouteMatch& earlier, const RouteMatch& later) {
  bool hostCovered = !earlier.host || earlier.host == later.host;
  if (!hostCovered && later.host && earlier.host->starts_with("*.")) {
    const std::string_view domain = std::string_view(*earlier.host).substr(1);
    hostCovered = later.host->size() > domain.size() && later.host->ends_with(domain);
  }
  const auto has = [](const std::vector<std::string>& list, const std::string& m) {
    return std::find(list.begin(), list.end(), m) != list.end();
  };
  const bool methodsCovered = earlier.methods.empty() ||
                              (!later.methods.empty() &&
                               std::all_of(later.methods.begin(), later.methods.end(),
                                           [&](const auto& m) { return has(earlier.methods, m); }));
  const bool pathCovered = earlier.kind == PathMatch::Prefix
                               ? http::pathHasPrefix(later.path, earlier.path)
                               : later.kind == PathMatch::Exact && later.path == earlier.path;
  return hostCovered && methodsCovered && pathCovered;
}

bool duplicates(const RouteMatch& a, const RouteMatch& b) {
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  return a.host == b.host && a.kind == b.kind && a.path == b.path &&
         sorted(a.methods) == sorted(b.methods);
}

// Adds the routes in order as the loader does; the shadow found for each (or none).
std::vector<std::optional<RouteOverlaps::Shadow>> shadows(const std::vector<RouteMatch>& routes,
                                                          RouteOverlaps& overlaps) {
  std::vector<std::optional<RouteOverlaps::Shadow>> found;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    found.push_back(overlaps.shadowOf(routes[i]));
    if (!found.back()) overlaps.add(i, routes[i]);
  }
  return found;
}

std::vector<std::optional<RouteOverlaps::Shadow>> shadows(const std::vector<RouteMatch>& routes) {
  RouteOverlaps overlaps(kMethods);
  return shadows(routes, overlaps);
}

std::optional<std::size_t> earlierOf(const std::optional<RouteOverlaps::Shadow>& shadow) {
  return shadow ? std::optional(shadow->earlier) : std::nullopt;
}

TEST_CASE("shadowOf: prefixes cover whole segments, exact paths only themselves") {
  const auto found =
      shadows({prefix("/api"), prefix("/api/v1"), prefix("/apix"), exact("/api/x"), prefix("/b/"),
               exact("/b"), prefix("/b/c"), exact("/h"), exact("/h")});
  CHECK_FALSE(found[0]);
  CHECK(earlierOf(found[1]) == 0);  // "/api" covers "/api/v1"
  CHECK_FALSE(found[2]);            // but not "/apix"
  CHECK(earlierOf(found[3]) == 0);
  CHECK_FALSE(found[4]);
  CHECK_FALSE(found[5]);  // "/b/" does not cover "/b"
  CHECK(earlierOf(found[6]) == 4);
  CHECK_FALSE(found[7]);
  REQUIRE(found[8]);
  CHECK(found[8]->earlier == 7);
  CHECK(found[8]->duplicate);
  CHECK_FALSE(found[1]->duplicate);
}

TEST_CASE(
    "shadowOf: the earliest covering route wins; methods and hosts as the router reads them") {
  const auto found = shadows({
      prefix("/", {"GET"}),              // 0
      prefix("/x", {"POST", "GET"}),     // 1: more methods than 0: reachable
      prefix("/x/y", {"GET"}),           // 2: 0 covers it (and 1): 0 is reported
      prefix("/x/y", {"GET", "POST"}),   // 3: 1 covers it
      prefix("/", {}, "*.x.io"),         // 4
      prefix("/", {}, "x.io"),           // 5: the wildcard excludes x.io itself
      exact("/z", {"PUT"}, "a.b.x.io"),  // 6: 4 covers it
      prefix("/", {}, "*.b.x.io"),       // 7: 4 covers it
      prefix("/x/z", {"POST"}, "y.io"),  // 8: 1 (no host) covers every host
  });
  CHECK_FALSE(found[0]);
  CHECK_FALSE(found[1]);
  CHECK(earlierOf(found[2]) == 0);
  CHECK(earlierOf(found[3]) == 1);
  CHECK_FALSE(found[4]);
  CHECK_FALSE(found[5]);
  CHECK(earlierOf(found[6]) == 4);
  CHECK(earlierOf(found[7]) == 4);
  CHECK(earlierOf(found[8]) == 1);
}

TEST_CASE("shadowOf agrees with comparing every pair, on random route tables") {
  const std::vector<std::string> segments = {"a", "b", "ab", ""};
  const std::vector<std::optional<std::string>> hosts = {
      std::nullopt, "x.io", "a.x.io", "b.a.x.io", "*.x.io", "*.a.x.io", "y.io"};
  std::mt19937 random(20261206);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(random() % n); };
  for (int table = 0; table < 300; ++table) {
    std::vector<RouteMatch> routes;
    for (int r = 0; r < 25; ++r) {
      std::string path = "/";
      const std::size_t depth = pick(4);
      for (std::size_t d = 0; d < depth; ++d) {
        const std::string& segment = segments[pick(segments.size())];
        if (segment.empty()) break;  // a trailing '/'
        path += segment;
        if (d + 1 < depth) path += "/";
      }
      std::vector<std::string> methods;
      for (std::string_view m : kMethods) {
        if (pick(4) == 0) methods.emplace_back(m);
      }
      RouteMatch match{pick(3) == 0 ? PathMatch::Exact : PathMatch::Prefix, path,
                       hosts[pick(hosts.size())], methods};
      routes.push_back(std::move(match));
    }
    const auto found = shadows(routes);
    for (std::size_t i = 0; i < routes.size(); ++i) {
      std::optional<RouteOverlaps::Shadow> expected;
      for (std::size_t j = 0; j < i && !expected; ++j) {
        if (covers(routes[j], routes[i])) expected = {j, duplicates(routes[j], routes[i])};
      }
      INFO("table " << table << " route " << i << " " << routes[i].path);
      REQUIRE(found[i].has_value() == expected.has_value());
      if (expected) {
        CHECK(found[i]->earlier == expected->earlier);
        CHECK(found[i]->duplicate == expected->duplicate);
      }
    }
  }
}

std::vector<RouteConfig> configs(const std::vector<RouteMatch>& matches) {
  std::vector<RouteConfig> routes(matches.size());
  for (std::size_t i = 0; i < matches.size(); ++i) routes[i].match = matches[i];
  return routes;
}

TEST_CASE("fallThroughs: a prefix's other methods going on to a later covering route") {
  const std::vector<RouteConfig> routes = configs({
      prefix("/admin", {"GET"}),        // 0: with 1, takes GET and POST on /admin
      prefix("/admin", {"POST"}),       // 1
      prefix("/admin/x", {"PUT"}),      // 2: under /admin, does not take all of it
      prefix("/api/", {"GET"}),         // 3: followed by an unrestricted route on its prefix
      prefix("/api/"),                  // 4
      exact("/health", {"HEAD"}),       // 5: exact paths are not reported
      prefix("/", {"GET"}),             // 6: "/" has a route for every method: 9
      prefix("/a", {"PUT"}, "a.x.io"),  // 7: 8 takes a.x.io's other methods
      prefix("/", {}, "*.x.io"),        // 8: not hosts other than its subdomains
      prefix("/"),                      // 9: the catch-all
  });
  RouteOverlaps overlaps(kMethods);
  for (std::size_t i = 0; i < routes.size(); ++i) {
    INFO("route " << i);
    REQUIRE_FALSE(overlaps.shadowOf(routes[i].match));
    overlaps.add(i, routes[i].match);
  }
  const auto found = overlaps.fallThroughs(routes);
  REQUIRE(found.size() == 3);
  CHECK(found[0].route == 0);
  CHECK(overlaps.methodNames(found[0].methods) == "GET, POST");
  CHECK(found[0].destination == 9);
  CHECK(found[1].route == 2);  // GET and POST go to 0 and 1 first: the rest to 9, not to 6
  CHECK(found[1].destination == 9);
  CHECK(found[2].route == 7);
  CHECK(found[2].destination == 8);
}

TEST_CASE("fallThroughs: the first later route taking another method, not one taking the same") {
  const std::vector<RouteConfig> routes =
      configs({prefix("/a/b", {"GET"}), prefix("/a", {"GET"}), prefix("/", {"GET", "HEAD"})});
  RouteOverlaps overlaps(kMethods);
  for (std::size_t i = 0; i < routes.size(); ++i) overlaps.add(i, routes[i].match);
  const auto found = overlaps.fallThroughs(routes);
  REQUIRE(found.size() == 2);
  CHECK(found[0].route == 0);
  CHECK(found[0].destination == 2);  // HEAD /a/b: route 1 takes only GET
  CHECK(found[1].route == 1);
  CHECK(found[1].destination == 2);
}

TEST_CASE("20,000 routes are checked in a fraction of a second") {
  std::vector<RouteMatch> routes;
  for (int i = 0; i < 20'000; ++i) {
    routes.push_back(prefix("/svc" + std::to_string(i) + "/api", {"GET"}));
  }
  routes.push_back(prefix("/svc19999/api/v2", {"GET"}));
  // CPU time of this thread, not wall time: a loaded machine must not fail the test.
  const double start = threadCpuSeconds();
  RouteOverlaps overlaps(kMethods);
  const auto found = shadows(routes, overlaps);
  const double seconds = threadCpuSeconds() - start;
  MESSAGE("20,001 routes: " << seconds << " s of CPU");
  CHECK(seconds < 2.0);  // comparing every pair took 25 s
  CHECK(std::count_if(found.begin(), found.end(), [](const auto& s) { return s.has_value(); }) ==
        1);
  CHECK(earlierOf(found.back()) == 19'999);
}

}  // namespace
}  // namespace gw::config
