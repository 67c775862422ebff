// The command line: -t validates a config (exit 0 / exit 1 with FILE:LINE:COL errors),
// --version and --help.
#include <doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <regex>

#include "test/support/harness.h"
#include "test/support/sanitizers.h"

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

// Both `gatewayd -t -c PATH` and `gatewayd -c PATH` refuse the file with exit 1 and `expected`
// (the error's "FILE:LINE:COL: message", or its start) as a line of stderr: nothing `-c` would
// crash or hang on passes `-t`. runGatewaydCommand bounds each run's time.
void checkRefused(const std::string& path, const std::string& expected) {
  for (const bool testOnly : {true, false}) {
    std::vector<std::string> args{"-c", path};
    if (testOnly) args.insert(args.begin(), "-t");
    const std::string command = (testOnly ? "gatewayd -t -c " : "gatewayd -c ") + path;
    INFO(command);
    CommandResult run = runGatewayd(args);
    INFO(run.out);
    CHECK(run.exit_code == 1);
    CHECK(("\n" + run.err).find("\n" + expected) != std::string::npos);
  }
}

// kGood with `schema_validation` on its route, configured by `settings` (YAML lines indented for
// the plugin's mapping).
std::string withSchemaPlugin(std::string_view settings) {
  return std::string(kGood) + "    plugins:\n      - schema_validation:\n" + std::string(settings);
}

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
  constexpr int kRoutes = gw::test::kAddressSanitizer ? 4'000 : 20'000;
  constexpr double kCpuSeconds = gw::test::kAddressSanitizer ? 10 : 3;
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

TEST_CASE("cli: a config path that is a directory, a FIFO, a device or too large is an error") {
  TempDir dir;
  const std::string directory = dir.path() + "/conf.d";
  REQUIRE(::mkdir(directory.c_str(), 0700) == 0);
  checkRefused(directory, directory + ":0:0: cannot open configuration file: is a directory");

  // Nobody writes to it: read to its end at once (before, opening it waited for a writer).
  const std::string fifo = dir.path() + "/fifo.yaml";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  checkRefused(fifo, fifo + ":1:1: the configuration is empty");

  checkRefused("/dev/zero",
               "/dev/zero:0:0: cannot open configuration file: is larger than 4194304 bytes");

  // kGood padded with a comment to one byte over the maximum.
  std::string padded = std::string(kGood) + "#";
  padded.append((std::size_t{4} << 20) - padded.size(), 'x');
  padded += '\n';
  const std::string huge = dir.write("huge.yaml", padded);
  checkRefused(huge, huge + ":0:0: cannot open configuration file: is larger than 4194304 bytes");
}

// Found by test/fuzz/config_fuzz.cpp: yaml-cpp's LoadAll() never returned on a ',' that starts
// a document, taking memory until the kernel killed gatewayd (23 GB for `-t` on a 1-byte file).
TEST_CASE("cli: a ',' outside any flow collection is an error, within bounded time and memory") {
  TempDir dir;
  const std::string comma = dir.write("comma.yaml", ",");
  checkRefused(comma, comma + ":1:1: invalid YAML: ',' outside a flow collection");
  const std::string later = dir.write("later.yaml", "# the gateway\n,listeners: []\n");
  checkRefused(later, later + ":2:1: invalid YAML: ',' outside a flow collection");
}

TEST_CASE("cli: YAML aliases that expand past the node limit are an error at the node too large") {
  TempDir dir;
  // Seven levels of ten aliases each: 10^7 copies of l0 from a few hundred bytes (before, the
  // inline schema was expanded in memory: 17.9 GB at nine levels).
  std::string bomb = "          schema:\n            definitions:\n";
  bomb += "              l0: &l0 {type: string}\n";  // line 16; l6 (3.1 million nodes) on 22
  for (int level = 1; level <= 7; ++level) {
    const std::string previous = "*l" + std::to_string(level - 1);
    bomb += "              l" + std::to_string(level) + ": &l" + std::to_string(level) + " [";
    for (int i = 0; i < 10; ++i) bomb += (i == 0 ? "" : ", ") + previous;
    bomb += "]\n";
  }
  const std::string bombPath = dir.write("bomb.yaml", withSchemaPlugin(bomb));
  checkRefused(bombPath, bombPath +
                             ":22:19: this node holds more than 1000000 YAML nodes once aliases "
                             "are expanded (each *alias counts as a copy of the node it names)");

  // An alias inside the node it names: an endless tree (before, a stack overflow).
  const std::string loop =
      dir.write("loop.yaml", withSchemaPlugin("          schema: &a {not: *a}\n"));
  checkRefused(loop, loop +
                         ":14:19: an alias is used inside the node it names: this node would "
                         "expand without end");
}

TEST_CASE("cli: a schema_file that is a directory, a device, a FIFO or a $ref loop is an error") {
  TempDir dir;
  const auto configFor = [&](const std::string& name, const std::string& schemaPath) {
    return dir.write(name + ".yaml",
                     withSchemaPlugin("          schema_file: " + schemaPath + "\n"));
  };
  const std::string directory = dir.path() + "/schemas";
  REQUIRE(::mkdir(directory.c_str(), 0700) == 0);
  std::string path = configFor("directory", directory);
  checkRefused(path, path + ":14:24: cannot read schema file '" + directory + "': is a directory");

  path = configFor("zero", "/dev/zero");
  checkRefused(path, path +
                         ":14:24: cannot read schema file '/dev/zero': is larger than 1048576 "
                         "bytes");

  const std::string fifo = dir.path() + "/schema.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  path = configFor("fifo", fifo);
  checkRefused(path, path + ":14:24: schema file '" + fifo +
                         "': malformed JSON at byte 0: The document is empty.");

  // Before, -t passed it and -c crashed compiling it (a crash loop under systemd).
  const std::string loop = dir.write("loop.json", R"({"$ref": "#"})");
  path = configFor("loop", loop);
  checkRefused(path, path + ":14:24: schema file '" + loop +
                         "': schema #: $ref loop # -> #: a "
                         "$ref must lead to a schema");
}

TEST_CASE("cli: schemas that would crash a worker on its first request are refused by -t too") {
  struct Bad {
    std::string schema;  // the inline `schema:` value, on line 14 from column 19
    std::string message;
  };
  for (const Bad& bad : {
           // Endless recursion of parallel validators on any body.
           Bad{R"({anyOf: [{$ref: "#"}]})",
               "schema #: allOf/anyOf/oneOf/not/dependencies lead back to this schema for the "
               "same value (through $ref): validating would never end"},
           // RapidJSON leaves a null or uninitialised subschema pointer for these.
           Bad{"{not: 5}", "schema #/not: a schema must be a JSON object, got a number"},
           Bad{"{anyOf: [1]}", "schema #/anyOf/0: a schema must be a JSON object, got a number"},
           Bad{"{items: [true]}",
               "schema #/items/0: a schema must be a JSON object, got a boolean"},
           // RapidJSON reads the target of a $ref as an object.
           Bad{R"({properties: {a: {$ref: "#/required"}}, required: [a]})",
               "schema #/properties/a: $ref #/properties/a -> #/required points to a list, not "
               "to a schema (a JSON object)"},
       }) {
    TempDir dir;
    const std::string path =
        dir.write("schema.yaml", withSchemaPlugin("          schema: " + bad.schema + "\n"));
    checkRefused(path, path + ":14:19: 'schema': " + bad.message);
  }
}
