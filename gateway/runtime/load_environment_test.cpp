#include "gateway/runtime/load_environment.h"

#include <doctest.h>

#include <filesystem>

#include "test/support/files.h"

// The loader with gatewayd's environment: the built-in plugins and observability's checks of
// access-log fields and OTLP endpoints (config/loader_test.cpp tests the loader itself).
namespace gw::runtime {
namespace {

using config::Config;
using config::loadFile;
using config::LoadResult;
using config::loadString;
using config::PathMatch;
using std::chrono::milliseconds;
using test::sourceRoot;
using Lines = std::vector<std::string>;

// Two valid lines so that a test only has to add the part it is about; its lines start at 3.
constexpr std::string_view kHead =
    "listeners: [{port: 8080}]\n"
    "upstreams: [{name: u, backends: [127.0.0.1:9000]}]\n";

Lines format(const std::vector<config::Diagnostic>& diagnostics) {
  Lines lines;
  for (const config::Diagnostic& d : diagnostics) lines.push_back(d.format());
  return lines;
}

Lines routeErrors(std::string_view rest) {
  return format(
      loadString(std::string(kHead) + std::string(rest), "t.yaml", loadEnvironment()).errors);
}

Config load(std::string_view yaml) {
  LoadResult result = loadString(yaml, "t.yaml", loadEnvironment());
  INFO(format(result.errors));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config);
  return *result.config;
}

TEST_CASE("access_log: settings, defaults and errors") {
  const Config defaults = load(std::string(kHead) + "routes: [{upstream: u}]\n");
  CHECK(defaults.access_log.enabled);
  CHECK(defaults.access_log.path == "stdout");
  CHECK(defaults.access_log.fields.empty());
  CHECK_FALSE(defaults.access_log.mask_query_params.has_value());
  const Config config = load(std::string(kHead) +
                             "access_log:\n  path: /var/log/gw.log\n  fields: [time, status]\n"
                             "  log_headers: [User-Agent]\n  mask_headers: [X-Api-Key]\n"
                             "  mask_query_params: [sig]\n  max_queued_bytes: 1MiB\n"
                             "routes: [{upstream: u}]\n");
  CHECK(config.access_log.path == "/var/log/gw.log");
  CHECK(config.access_log.fields == Lines{"time", "status"});
  CHECK(config.access_log.log_headers == Lines{"User-Agent"});
  CHECK(config.access_log.mask_headers == Lines{"X-Api-Key"});
  CHECK(config.access_log.mask_query_params == Lines{"sig"});
  CHECK(config.access_log.max_queued_bytes == 1024 * 1024);
  CHECK(routeErrors("access_log: {path: logs/a.log, fields: [status, colour], log_headers: "
                    "[\"Bad Name\"]}\nroutes: [{upstream: u}]\n") ==
        Lines{"t.yaml:3:20: access_log path must be 'stdout' or an absolute file path, got "
              "'logs/a.log'",
              "t.yaml:3:49: fields: each entry must be a field name such as status or "
              "request_id, got 'colour'",
              "t.yaml:3:72: log_headers: each entry must be a header name, got 'Bad Name'"});
}

TEST_CASE("tracing: on by default; OTLP export settings and errors") {
  const Config defaults = load(std::string(kHead) + "routes: [{upstream: u}]\n");
  CHECK(defaults.tracing.enabled);
  CHECK_FALSE(defaults.tracing.otlp.has_value());
  const Config config = load(std::string(kHead) +
                             "tracing:\n  otlp: {endpoint: 'http://[::1]:4318/v1/traces', "
                             "service_name: edge, batch_size: 100, flush_interval: 500ms}\n"
                             "routes: [{upstream: u}]\n");
  REQUIRE(config.tracing.otlp.has_value());
  CHECK(config.tracing.otlp->endpoint == "http://[::1]:4318/v1/traces");
  CHECK(config.tracing.otlp->service_name == "edge");
  CHECK(config.tracing.otlp->batch_size == 100);
  CHECK(config.tracing.otlp->flush_interval == milliseconds(500));
  const Lines errors = routeErrors(
      "tracing:\n  enabled: false\n  otlp: {endpoint: 'https://collector:4318'}\n"
      "routes: [{upstream: u}]\n");
  CHECK(errors == Lines{"t.yaml:5:9: tracing.otlp needs tracing enabled (spans come from the "
                        "trace context)",
                        "t.yaml:5:20: tracing.otlp endpoint: invalid OTLP endpoint "
                        "'https://collector:4318': https is not supported yet"});
}

// Every shipped configuration must load cleanly, so none of them rots.
TEST_CASE("every file in conf/ and conf/examples/ loads without errors or warnings") {
  const std::filesystem::path root = sourceRoot();
  INFO("source root: " << root);
  REQUIRE(std::filesystem::is_directory(root / "conf" / "examples"));
  std::size_t files = 0;
  for (const auto& dir : {root / "conf", root / "conf" / "examples"}) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() != ".yaml") continue;
      ++files;
      const LoadResult result = loadFile(entry.path().string(), loadEnvironment());
      INFO(entry.path().string());
      CHECK(format(result.errors) == Lines{});
      CHECK(format(result.warnings) == Lines{});
    }
  }
  CHECK(files >= 5);
}

TEST_CASE("the benchmark contract") {
  const LoadResult result =
      loadFile((sourceRoot() / "conf/examples/bench.yaml").string(), loadEnvironment());
  REQUIRE(result.config);
  const Config& config = *result.config;
  CHECK(config.workers == 1);
  REQUIRE(config.listeners.size() == 1);
  CHECK(config.listeners[0].address == "127.0.0.1");
  CHECK(config.listeners[0].port == 18090);
  REQUIRE(config.upstreams.size() == 1);
  REQUIRE(config.upstreams[0].backends.size() == 1);
  CHECK(config.upstreams[0].backends[0].host == "127.0.0.1");
  CHECK(config.upstreams[0].backends[0].port == 18081);
  CHECK(config.upstreams[0].pool.max_idle_per_backend >= 256);
  REQUIRE(config.routes.size() == 1);
  CHECK(config.routes[0].match.kind == PathMatch::Prefix);
  CHECK(config.routes[0].match.path == "/");
  CHECK(config.routes[0].strip_prefix.empty());
  CHECK(config.admin.enabled);  // the benchmark scrapes nothing, but the default stays on
  CHECK(config.admin.port == 9901);
}

TEST_CASE("the TLS benchmark contract") {
  const LoadResult result =
      loadFile((sourceRoot() / "conf/examples/bench-tls.yaml").string(), loadEnvironment());
  REQUIRE(result.config);
  const Config& config = *result.config;
  CHECK(config.workers == 1);
  CHECK_FALSE(config.access_log.enabled);
  REQUIRE(config.listeners.size() == 1);
  CHECK(config.listeners[0].address == "127.0.0.1");
  CHECK(config.listeners[0].port == 18443);
  REQUIRE(config.listeners[0].tls);
  REQUIRE(config.listeners[0].tls->options.certificates.size() == 1);
  CHECK(config.listeners[0].tls->options.certificates[0].chainPath ==
        "/tmp/gatewayd-bench-tls/cert.pem");
  CHECK(config.listeners[0].tls->options.certificates[0].keyPath ==
        "/tmp/gatewayd-bench-tls/key.pem");
  REQUIRE(config.upstreams.size() == 1);
  REQUIRE(config.upstreams[0].backends.size() == 1);
  CHECK(config.upstreams[0].backends[0].port == 18081);
  REQUIRE(config.routes.size() == 1);
  CHECK(config.routes[0].match.path == "/");
}

TEST_CASE("the built-in plugins load through the default registry") {
  LoadResult ok = loadString(std::string(kHead) +
                                 "plugins: [request_id]\n"
                                 "routes:\n"
                                 "  - upstream: u\n"
                                 "    plugins:\n"
                                 "      - security_headers: {headers: {X-Frame-Options: DENY}}\n",
                             "t.yaml", loadEnvironment());
  INFO(format(ok.errors));
  REQUIRE(ok.config);
  REQUIRE(ok.config->routes[0].plugins.size() == 2);
  CHECK(ok.config->routes[0].plugins[0].type == plugin::Registry::builtin().find("request_id"));
  CHECK(ok.config->routes[0].plugins[1].name == "security_headers");
  CHECK(routeErrors("routes: [{upstream: u, plugins: [security_headers: {hide_server: 2}]}]\n") ==
        Lines{"t.yaml:3:66: 'hide_server': expected true or false, got '2'"});
}

}  // namespace
}  // namespace gw::runtime
