// The command line: -t validates a config (exit 0 / exit 1 with FILE:LINE:COL errors),
// --version and --help.
#include <doctest.h>
#include <sys/resource.h>

#include <regex>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// stdout and stderr together in `out`: the checks look for text wherever gatewayd printed it.
CommandResult runGatewayd(std::vector<std::string> args) {
  CommandResult run = runGatewaydCommand(std::move(args));
  run.out += run.err;
  return run;
}

constexpr const char* kGood = R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: 18999
upstreams:
  - name: main
    backends:
      - 127.0.0.1:9
routes:
  - match: {prefix: /}
    upstream: main
)";

// Two independent mistakes: an unknown key (line 5) and a duration without a unit (line 11).
constexpr const char* kBad = R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: 18999
    bogus_key: 1
upstreams:
  - name: main
    backends:
      - 127.0.0.1:9
    timeouts:
      connect: 5
routes:
  - match: {prefix: /}
    upstream: main
)";

}  // namespace

TEST_CASE("cli: -t accepts a valid config with exit 0") {
  TempDir dir;
  std::string path = dir.write("good.yaml", kGood);
  CommandResult run = runGatewayd({"-t", "-c", path});
  INFO(run.out);
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("configuration ok") != std::string::npos);
  CHECK(run.out.find(path) != std::string::npos);
}

TEST_CASE("cli: -t rejects a bad config with exit 1 and FILE:LINE:COL for every error") {
  TempDir dir;
  std::string path = dir.write("bad.yaml", kBad);
  CommandResult run = runGatewayd({"-t", "-c", path});
  INFO(run.out);
  CHECK(run.exit_code == 1);
  std::string quoted = std::regex_replace(path, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
  CHECK(std::regex_search(run.err, std::regex("(^|\n)" + quoted + R"(:5:\d+: [^\n]*bogus_key)")));
  CHECK(std::regex_search(run.err, std::regex("(^|\n)" + quoted + R"(:11:\d+: )")));
  CHECK(run.out.find("configuration ok") == std::string::npos);
}

TEST_CASE("cli: -t reports unreachable and duplicate routes and unknown upstreams where they are") {
  constexpr const char* kHead = R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: 18999
upstreams:
  - name: main
    backends:
      - 127.0.0.1:9
routes:
  - match: {prefix: /}
    upstream: main
)";
  struct Bad {
    std::string name;
    std::string routes;  // appended after the catch-all route of kHead (line 10)
  };
  const std::vector<Bad> cases = {
      {"unreachable (shadowed by the catch-all)",
       "  - match: {prefix: /api/}\n    upstream: main\n"},
      {"duplicate of the catch-all", "  - match: {prefix: /}\n    upstream: main\n"},
      {"unknown upstream", "  - match: {exact: /x}\n    upstream: nope\n"},
  };
  for (const Bad& bad : cases) {
    INFO(bad.name);
    TempDir dir;
    std::string path = dir.write("routes.yaml", std::string(kHead) + bad.routes);
    CommandResult run = runGatewayd({"-t", "-c", path});
    INFO(run.out);
    CHECK(run.exit_code == 1);
    CHECK(run.err.find(path + ":12:") != std::string::npos);  // the offending route's line
  }
}

TEST_CASE("cli: -t checks 20,000 routes in near-linear time and still finds a shadowed one") {
  // Comparing every pair of routes took 25 s for 20,000 (40 s of CPU here); parsing the YAML
  // takes the most now. A sanitized debug build parses it ~10 times slower: fewer routes there.
#if defined(__SANITIZE_ADDRESS__)
  constexpr int kRoutes = 4'000;
  constexpr double kCpuSeconds = 10;
#else
  constexpr int kRoutes = 20'000;
  constexpr double kCpuSeconds = 3;
#endif
  std::string yaml =
      "listeners: [{address: 127.0.0.1, port: 18999}]\n"
      "upstreams: [{name: main, backends: ['127.0.0.1:9']}]\n"
      "routes:\n";  // routes from line 4 on
  for (int i = 0; i < kRoutes; ++i) {
    yaml += "  - {name: r" + std::to_string(i) + ", upstream: main, match: {prefix: /svc" +
            std::to_string(i) + "/api, methods: [GET]}}\n";
  }
  const std::string last = std::to_string(kRoutes - 1);
  yaml += "  - {name: late, upstream: main, match: {prefix: /svc" + last +
          "/api/v2, methods: [GET]}}\n";
  TempDir dir;
  const std::string path = dir.write("routes.yaml", yaml);
  rusage before, after;
  ::getrusage(RUSAGE_CHILDREN, &before);
  CommandResult run = runGatewayd({"-t", "-c", path});
  ::getrusage(RUSAGE_CHILDREN, &after);
  const auto seconds = [](const rusage& r) {
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  const double cpu = seconds(after) - seconds(before);
  MESSAGE("gatewayd -t on " << kRoutes + 1 << " routes: " << cpu << " s of CPU");
  CHECK(cpu < kCpuSeconds);
  CHECK(run.exit_code == 1);
  CHECK(run.err == path + ":" + std::to_string(4 + kRoutes) +
                       ":5: route 'late' is unreachable: shadowed by route 'r" + last + "' (" +
                       path + ":" + std::to_string(3 + kRoutes) + ":5)\n");
}

TEST_CASE("cli: -t warns where a prefix's other methods fall through to a later route") {
  TempDir dir;
  const std::string path = dir.write("fall.yaml", R"(listeners: [{address: 127.0.0.1, port: 18999}]
upstreams:
  - {name: main, backends: ['127.0.0.1:9']}
  - {name: internal, backends: ['127.0.0.1:10']}
routes:
  - name: admin
    match: {prefix: /admin, methods: [GET]}
    upstream: internal
    plugins:
      - ip_filter: {allow: [10.0.0.0/8]}
  - name: all
    upstream: main
)");
  CommandResult run = runGatewayd({"-t", "-c", path});
  INFO(run.out);
  CHECK(run.exit_code == 0);
  CHECK(run.err == "warning: " + path +
                       ":6:5: route 'admin' takes only GET on prefix '/admin'; requests there with "
                       "other methods fall through to route 'all' (" +
                       path + ":11:5) and its plugins instead of a 405\n");
}

TEST_CASE("cli: -t refuses an admin listener on a wildcard address beside a proxy listener") {
  TempDir dir;
  const std::string path = dir.write("admin.yaml", R"(listeners: [{address: 127.0.0.1, port: 18999}]
admin: {address: 0.0.0.0, port: 18999}
upstreams: [{name: main, backends: ['127.0.0.1:9']}]
routes: [{upstream: main}]
)");
  CommandResult run = runGatewayd({"-t", "-c", path});
  INFO(run.out);
  CHECK(run.exit_code == 1);
  CHECK(run.err == path +
                       ":2:8: the admin listener 0.0.0.0:18999 would share a port with the "
                       "listener at " +
                       path + ":1:13; admin traffic needs its own port\n");
}

TEST_CASE("cli: a missing config file is an error, not a crash") {
  CommandResult run = runGatewayd({"-t", "-c", "/nonexistent/gatewayd.yaml"});
  INFO(run.out);
  CHECK(run.exit_code == 1);
  CHECK(run.err.find("/nonexistent/gatewayd.yaml") != std::string::npos);
}

TEST_CASE("cli: running with a bad config exits 1 without listening") {
  TempDir dir;
  std::string path = dir.write("bad.yaml", kBad);
  CommandResult run = runGatewayd({"-c", path});
  INFO(run.out);
  CHECK(run.exit_code == 1);
}

TEST_CASE("cli: --version and --help") {
  CommandResult version = runGatewayd({"--version"});
  INFO(version.out);
  CHECK(version.exit_code == 0);
  CHECK(version.out.find("0.1.0") != std::string::npos);

  CommandResult help = runGatewayd({"--help"});
  INFO(help.out);
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("-c") != std::string::npos);
  CHECK(help.out.find("-t") != std::string::npos);

  CommandResult unknown = runGatewayd({"--no-such-flag"});
  INFO(unknown.out);
  CHECK(unknown.exit_code != 0);
  CHECK(unknown.exit_code < 128);  // an error exit, not a crash
}
