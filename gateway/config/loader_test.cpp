#include "gateway/config/loader.h"

#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "gateway/config/node_reader.h"
#include "test/support/files.h"

namespace doctest {
// Prints diagnostics one per line when a comparison fails.
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& lines) {
    std::string text = "{";
    for (const std::string& line : lines) text += "\n  \"" + line + "\"";
    return (text + "\n}").c_str();
  }
};
}  // namespace doctest

namespace gw::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Two valid lines so that a test only has to add the part it is about; its lines start at 3.
constexpr std::string_view kHead =
    "listeners: [{port: 8080}]\n"
    "upstreams: [{name: u, backends: [127.0.0.1:9000]}]\n";

// A plugin type for loader tests: settings {value: 1..9}; `value: throw` makes parse throw the
// way a careless yaml-cpp conversion would. The type "shared" also takes `redis: true`, which
// needs the `redis:` block.
struct Probe final : PluginSettings {
  int value = 0;
  bool redis = false;
  std::string keyPrefix;  // the `redis:` block's, as the settings saw it
  bool usesRedis() const override { return redis; }
};

class ProbeType final : public PluginType {
 public:
  ProbeType(std::string name, std::string kind, bool repeats)
      : name_(std::move(name)), kind_(std::move(kind)), repeats_(repeats) {}
  std::string_view name() const override { return name_; }
  std::string_view kind() const override { return kind_; }
  bool allowsRepeats() const override { return repeats_; }
  std::shared_ptr<const PluginSettings> parseSettings(
      const YAML::Node& settings, const SettingsContext& context,
      std::vector<ConfigError>& errors) const override {
    if (settings.IsMap() && settings["value"].Scalar() == "throw") settings["value"].as<int>();
    const std::size_t before = errors.size();
    auto reader = NodeReader::settings(settings, name_, errors);
    auto probe = std::make_shared<Probe>();
    if (name_ == "shared") {
      reader.allowKeys({"value", "redis"});
      reader.readBool("redis", probe->redis);
    } else {
      reader.allowKeys({"value"});
    }
    reader.readInt("value", probe->value, 1, 9);
    if (context.redis) probe->keyPrefix = context.redis->key_prefix;
    return errors.size() == before ? probe : nullptr;
  }

 private:
  std::string name_;
  std::string kind_;
  bool repeats_;
};

class TestCatalogue final : public PluginCatalogue {
 public:
  void add(std::unique_ptr<PluginType> type) { types_.push_back(std::move(type)); }
  const PluginType* find(std::string_view name) const override {
    for (const auto& type : types_) {
      if (type->name() == name) return type.get();
    }
    return nullptr;
  }
  std::vector<std::string_view> names() const override {
    std::vector<std::string_view> out;
    for (const auto& type : types_) out.push_back(type->name());
    return out;
  }

 private:
  std::vector<std::unique_ptr<PluginType>> types_;
};

const TestCatalogue& testPlugins() {
  static const TestCatalogue catalogue = [] {
    TestCatalogue c;
    c.add(std::make_unique<ProbeType>("probe", "", false));
    c.add(std::make_unique<ProbeType>("ids", "request_id", false));
    c.add(std::make_unique<ProbeType>("key_auth", "auth", false));
    c.add(std::make_unique<ProbeType>("limit", "rate_limit", true));
    return c;
  }();
  return catalogue;
}

// The probe plugins; every access-log field and OTLP endpoint passes (the real checks are
// runtime/load_environment's, tested with it).
LoadEnvironment testEnvironment(const PluginCatalogue& plugins = testPlugins()) {
  return {plugins, [](std::string_view) { return true; },
          [](std::string_view) { return std::optional<std::string>(); }};
}

LoadResult loadText(std::string_view yaml) {
  return loadString(yaml, "t.yaml", testEnvironment());
}

std::vector<std::string> format(const std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> lines;
  for (const Diagnostic& d : diagnostics) lines.push_back(d.format());
  return lines;
}

std::vector<std::string> errorsOf(std::string_view yaml) {
  return format(loadText(yaml).errors);
}

std::vector<std::string> routeErrors(std::string_view routes) {
  return errorsOf(std::string(kHead) + std::string(routes));
}

Config load(std::string_view yaml) {
  LoadResult result = loadText(yaml);
  INFO(format(result.errors));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config);
  return *result.config;
}

using Lines = std::vector<std::string>;

TEST_CASE("Diagnostic::format is FILE:LINE:COL: message") {
  // Built field by field: a braced temporary here trips a GCC 12 -Wmaybe-uninitialized false alarm.
  Diagnostic diagnostic;
  diagnostic.where.file = "a.yaml";
  diagnostic.where.line = 3;
  diagnostic.where.column = 7;
  diagnostic.message = "boom";
  CHECK(diagnostic.format() == "a.yaml:3:7: boom");
}

TEST_CASE("a full configuration fills every field") {
  const Config config = load(R"(workers: 3
listeners:
  - address: 127.0.0.1
    port: 8080
  - address: "::1"
    port: 8081
limits:
  request_line_bytes: 4KiB
  header_bytes: 16KB
  header_count: 50
  body_bytes: 2MiB
  client_header_timeout: 5s
  client_body_timeout: 7s
  idle_timeout: 2m
shutdown:
  drain_timeout: 250ms
upstreams:
  - name: api
    backends:
      - address: 127.0.0.1:9000
        weight: 2
      - 127.0.0.1:9001
      - "[::1]:9002"
      - backend.internal:80
    pool:
      max_idle: 0
      idle_timeout: 1h
    timeouts:
      connect: 1s
      read: 2s
      send: 3s
  - name: other
    backends: [127.0.0.1:9100]
routes:
  - name: api
    match:
      prefix: /api/
      methods: [GET, POST]
      host: API.Example.com.
    upstream: api
    strip_prefix: /api
    preserve_host: false
    limits:
      body_bytes: 10MiB
    timeouts:
      read: 5s
    plugins: []
  - match:
      exact: /health
    upstream: other
)");
  CHECK(config.source == "t.yaml");
  CHECK(config.workers == 3);

  REQUIRE(config.listeners.size() == 2);
  CHECK(config.listeners[0].address == "127.0.0.1");
  CHECK(config.listeners[0].port == 8080);
  CHECK(config.listeners[0].where.file == "t.yaml");
  CHECK(config.listeners[0].where.line == 3);
  CHECK(config.listeners[0].where.column == 5);
  CHECK(config.listeners[1].address == "::1");
  CHECK(config.listeners[1].port == 8081);

  CHECK(config.limits.request_line_bytes == 4096);
  CHECK(config.limits.header_bytes == 16000);
  CHECK(config.limits.header_count == 50);
  CHECK(config.limits.body_bytes == 2 * 1024 * 1024);
  CHECK(config.limits.client_header_timeout == seconds(5));
  CHECK(config.limits.client_body_timeout == seconds(7));
  CHECK(config.limits.idle_timeout == seconds(120));
  CHECK(config.drain_timeout == milliseconds(250));

  REQUIRE(config.upstreams.size() == 2);
  const UpstreamConfig& api = config.upstreams[0];
  CHECK(api.name == "api");
  CHECK(api.where.line == 18);
  REQUIRE(api.backends.size() == 4);
  CHECK(api.backends[0].host == "127.0.0.1");
  CHECK(api.backends[0].port == 9000);
  CHECK(api.backends[0].weight == 2);
  CHECK(api.backends[0].where.line == 20);
  CHECK(api.backends[1].host == "127.0.0.1");
  CHECK(api.backends[1].port == 9001);
  CHECK(api.backends[1].weight == 1);
  CHECK(api.backends[2].host == "::1");  // brackets removed: ready for getaddrinfo
  CHECK(api.backends[2].port == 9002);
  CHECK(api.backends[3].host == "backend.internal");
  CHECK(api.backends[3].port == 80);
  CHECK(api.pool.max_idle_per_backend == 0);
  CHECK(api.pool.idle_timeout == seconds(3600));
  CHECK(api.timeouts.connect == seconds(1));
  CHECK(api.timeouts.read == seconds(2));
  CHECK(api.timeouts.send == seconds(3));

  REQUIRE(config.routes.size() == 2);
  const RouteConfig& first = config.routes[0];
  CHECK(first.name == "api");
  CHECK(first.match.kind == PathMatch::Prefix);
  CHECK(first.match.path == "/api/");
  CHECK(first.match.methods == std::vector<std::string>{"GET", "POST"});
  CHECK(first.match.host == "api.example.com");  // lower-cased, trailing dot dropped
  CHECK(first.upstream == 0);
  CHECK(first.strip_prefix == "/api");
  CHECK_FALSE(first.preserve_host);
  CHECK(first.body_bytes == 10 * 1024 * 1024);
  CHECK(first.timeouts.connect == seconds(1));  // inherited from the upstream
  CHECK(first.timeouts.read == seconds(5));     // overridden by the route
  CHECK(first.timeouts.send == seconds(3));
  CHECK(first.where.line == 35);

  const RouteConfig& second = config.routes[1];
  CHECK(second.name == "route-2");
  CHECK(second.match.kind == PathMatch::Exact);
  CHECK(second.match.path == "/health");
  CHECK_FALSE(second.match.host);
  CHECK(second.match.methods.empty());
  CHECK(second.upstream == 1);
  CHECK(second.strip_prefix.empty());
  CHECK(second.preserve_host);
  CHECK(second.body_bytes == 2 * 1024 * 1024);  // the global limit
  CHECK(second.timeouts.read == seconds(60));   // upstream "other" has the defaults
}

TEST_CASE("omitted keys take their defaults") {
  const Config config = load(std::string(kHead) + "routes: [{upstream: u}]\n");
  CHECK(config.workers == std::max(1u, std::thread::hardware_concurrency()));
  CHECK(config.listeners[0].address == "0.0.0.0");
  const Limits defaults;
  CHECK(config.limits.request_line_bytes == defaults.request_line_bytes);
  CHECK(config.limits.header_bytes == defaults.header_bytes);
  CHECK(config.limits.header_count == defaults.header_count);
  CHECK(config.limits.body_bytes == defaults.body_bytes);
  CHECK(config.limits.client_header_timeout == defaults.client_header_timeout);
  CHECK(config.limits.client_body_timeout == defaults.client_body_timeout);
  CHECK(config.limits.idle_timeout == defaults.idle_timeout);
  CHECK(config.drain_timeout == seconds(30));
  const UpstreamConfig& upstream = config.upstreams[0];
  CHECK(upstream.backends[0].weight == 1);
  CHECK(upstream.pool.max_idle_per_backend == 64);
  CHECK(upstream.pool.idle_timeout == seconds(60));
  CHECK(upstream.timeouts.connect == seconds(5));
  CHECK(upstream.timeouts.read == seconds(60));
  CHECK(upstream.timeouts.send == seconds(60));
  const RouteConfig& route = config.routes[0];
  CHECK(route.name == "route-1");
  CHECK(route.match.kind == PathMatch::Prefix);
  CHECK(route.match.path == "/");
  CHECK(route.preserve_host);
  CHECK(route.body_bytes == defaults.body_bytes);
  CHECK(config.admin.enabled);
  CHECK(config.admin.address == "127.0.0.1");
  CHECK(config.admin.port == 9901);
  CHECK(config.admin.max_connections == 64);
  CHECK(config.admin.header_timeout == seconds(3));
}

TEST_CASE("admin: settings and a port shared with a proxy listener") {
  const Config config = load(std::string(kHead) +
                             "admin: {address: '::1', port: 9100}\nroutes: [{upstream: u}]\n");
  CHECK(config.admin.address == "::1");
  CHECK(config.admin.port == 9100);
  CHECK_FALSE(load(std::string(kHead) + "admin: {enabled: false}\nroutes: [{upstream: u}]\n")
                  .admin.enabled);
  // The listener in kHead is 0.0.0.0:8080: any IPv4 admin address on 8080 collides with it.
  CHECK(routeErrors("admin: {port: 8080}\nroutes: [{upstream: u}]\n") ==
        Lines{"t.yaml:3:8: the admin listener 127.0.0.1:8080 would share a port with the listener "
              "at t.yaml:1:13; admin traffic needs its own port"});
  CHECK(routeErrors("admin: {address: '::1', port: 8080}\nroutes: [{upstream: u}]\n").empty());
  CHECK(
      routeErrors("admin: {address: localhost, port: 0, color: red}\nroutes: [{upstream: u}]\n") ==
      Lines{"t.yaml:3:18: admin address must be an IPv4 or IPv6 address, got 'localhost'",
            "t.yaml:3:35: 'port': expected an integer from 1 to 65535, got '0'",
            "t.yaml:3:38: unknown key 'color' in admin; expected one of: enabled, address, "
            "port, max_connections, header_timeout"});
}

TEST_CASE("readiness: no upstream is required by default; a list or 'all' names them") {
  constexpr std::string_view kTwo =
      "listeners: [{port: 8080}]\n"
      "upstreams: [{name: u, backends: [127.0.0.1:9000]}, {name: v, backends: [127.0.0.1:9001]},\n"
      "            {name: w, backends: [127.0.0.1:9002]}]\n"
      "routes: [{match: {prefix: /v/}, upstream: v}, {upstream: u}]\n";
  CHECK(load(kTwo).readiness.required_upstreams.empty());
  CHECK(load(std::string(kTwo) + "readiness: {required_upstreams: [w, u, w]}\n")
            .readiness.required_upstreams == std::vector<std::size_t>{2, 0});
  // 'all': every upstream a route uses, in route order (w is used by none).
  CHECK(load(std::string(kTwo) + "readiness: {required_upstreams: all}\n")
            .readiness.required_upstreams == std::vector<std::size_t>{1, 0});
  CHECK(load(std::string(kTwo) + "readiness: {required_upstreams: []}\n")
            .readiness.required_upstreams.empty());
}

TEST_CASE("readiness: an unknown upstream, a bad shape or key is an error at its place") {
  CHECK(routeErrors(
            "routes: [{upstream: u}]\nreadiness:\n  required_upstreams: [u, nope, {a: 1}]\n") ==
        Lines{"t.yaml:5:27: required_upstreams: each entry must be the name of an upstream, got "
              "'nope'",
              "t.yaml:5:33: required_upstreams: each entry must be the name of an upstream, got a "
              "mapping"});
  CHECK(
      routeErrors("routes: [{upstream: u}]\nreadiness: {required_upstreams: u}\n") ==
      Lines{"t.yaml:4:33: required_upstreams must be a list of upstream names or 'all', got 'u'"});
  CHECK(routeErrors("routes: [{upstream: u}]\nreadiness: {required: [u]}\n") ==
        Lines{"t.yaml:4:13: unknown key 'required' in readiness; expected one of: "
              "required_upstreams, require_redis"});
}

TEST_CASE("admin: connection slots and the request head deadline") {
  const Config config = load(std::string(kHead) +
                             "admin: {max_connections: 8, header_timeout: 500ms}\n"
                             "routes: [{upstream: u}]\n");
  CHECK(config.admin.max_connections == 8);
  CHECK(config.admin.header_timeout == milliseconds(500));
  CHECK(routeErrors("admin:\n  max_connections: 0\n  header_timeout: 0s\n"
                    "routes: [{upstream: u}]\n") ==
        Lines{"t.yaml:4:20: 'max_connections': expected an integer from 1 to 10000, got '0'",
              "t.yaml:5:19: 'header_timeout': expected at least 1ms, got '0s'"});
  CHECK(routeErrors("admin: {max_connections: many, header_timeout: soon}\n"
                    "routes: [{upstream: u}]\n") ==
        Lines{"t.yaml:3:26: 'max_connections': expected an integer from 1 to 10000, got 'many'",
              "t.yaml:3:48: 'header_timeout': invalid duration 'soon': expected a whole number "
              "followed by ms, s, m or h"});
}

TEST_CASE("admin: a wildcard admin address beside a proxy listener on its port") {
  constexpr std::string_view kUpstreamAndRoute =
      "upstreams: [{name: u, backends: [127.0.0.1:9000]}]\nroutes: [{upstream: u}]\n";
  const auto errors = [&](std::string_view listeners, std::string_view admin) {
    return errorsOf(std::string(listeners) + std::string(admin) + std::string(kUpstreamAndRoute));
  };
  // 0.0.0.0:8080 takes 127.0.0.1:8080's connections: this used to pass -t and fail at start.
  CHECK(errors("listeners: [{address: 127.0.0.1, port: 8080}]\n",
               "admin: {address: 0.0.0.0, port: 8080}\n") ==
        Lines{"t.yaml:2:8: the admin listener 0.0.0.0:8080 would share a port with the listener "
              "at t.yaml:1:13; admin traffic needs its own port"});
  CHECK(errors("listeners: [{address: '::1', port: 8080}]\n",
               "admin: {address: '::', port: 8080}\n") ==
        Lines{"t.yaml:2:8: the admin listener [::]:8080 would share a port with the listener "
              "at t.yaml:1:13; admin traffic needs its own port"});
  // Wildcards of both families on one port: a client would reach one or the other by family.
  CHECK(errors("listeners: [{address: '::', port: 8080}]\n",
               "admin: {address: 0.0.0.0, port: 8080}\n") ==
        Lines{"t.yaml:2:8: the admin listener 0.0.0.0:8080 would share a port with the listener "
              "at t.yaml:1:13; admin traffic needs its own port"});
  // A specific address of the other family, or another port, is its own.
  CHECK(errors("listeners: [{address: '::1', port: 8080}]\n",
               "admin: {address: 0.0.0.0, port: 8080}\n")
            .empty());
  CHECK(errors("listeners: [{address: 127.0.0.1, port: 8080}]\n",
               "admin: {address: 0.0.0.0, port: 8081}\n")
            .empty());
}

TEST_CASE("error: a wildcard listener overlaps a specific one of its family and port") {
  CHECK(
      errorsOf("listeners:\n  - {address: 0.0.0.0, port: 80}\n  - {address: 127.0.0.1, port: 80}\n"
               "  - {address: '::1', port: 80}\n  - {address: '::', port: 80}\n"
               "  - {address: 127.0.0.1, port: 81}\n"
               "upstreams: [{name: u, backends: [h:1]}]\nroutes: [{upstream: u}]\n") ==
      Lines{"t.yaml:3:5: listener 127.0.0.1:80 overlaps the listener at t.yaml:2:5: a wildcard "
            "address (0.0.0.0, ::) takes every connection to its port; keep one of the two",
            "t.yaml:5:5: listener [::]:80 overlaps the listener at t.yaml:4:5: a wildcard "
            "address (0.0.0.0, ::) takes every connection to its port; keep one of the two"});
  // Both families' wildcards on one port: the usual dual-stack listener pair.
  CHECK(errorsOf("listeners: [{address: 0.0.0.0, port: 80}, {address: '::', port: 80}]\n"
                 "upstreams: [{name: u, backends: [h:1]}]\nroutes: [{upstream: u}]\n")
            .empty());
}

TEST_CASE("http: header rules: underscores dropped and no trusted proxy by default") {
  const Config defaults = load(std::string(kHead) + "routes: [{upstream: u}]\n");
  CHECK(defaults.underscores_in_headers == UnderscoreHeaders::Drop);
  CHECK(defaults.trusted_proxies.empty());
  const Config set = load(std::string(kHead) +
                          "http: {underscores_in_headers: reject, trusted_proxies: [10.0.0.0/8, "
                          "'::1']}\nroutes: [{upstream: u}]\n");
  CHECK(set.underscores_in_headers == UnderscoreHeaders::Reject);
  REQUIRE(set.trusted_proxies.size() == 2);
  CHECK(set.trusted_proxies[0].contains(*net::parseIpAddress("10.9.8.7")));
  CHECK(routeErrors("http: {underscores_in_headers: yes, trusted_proxies: [10.0.0.0/40, host]}\n"
                    "routes: [{upstream: u}]\n") ==
        Lines{"t.yaml:3:32: 'underscores_in_headers': expected drop, reject or allow, got 'yes'",
              "t.yaml:3:55: trusted_proxies: prefix /40 is longer than 32 bits",
              "t.yaml:3:68: trusted_proxies: not an IPv4 or IPv6 address"});
}

TEST_CASE("http: path rules refuse ambiguous spellings by default; settings and errors") {
  const Config defaults = load(std::string(kHead) + "routes: [{upstream: u}]\n");
  CHECK(defaults.path_rules.escaped_slashes == http::EscapedSlashes::Reject);
  CHECK(defaults.path_rules.path_parameters == http::PathParameters::Reject);
  const Config keep = load(std::string(kHead) +
                           "http: {escaped_slashes: keep, path_parameters: keep}\n"
                           "routes: [{upstream: u, match: {prefix: '/a%2Fb;v=1'}}]\n");
  CHECK(keep.path_rules.escaped_slashes == http::EscapedSlashes::Keep);
  CHECK(keep.path_rules.path_parameters == http::PathParameters::Keep);
  CHECK(load(std::string(kHead) + "http: {path_parameters: strip}\nroutes: [{upstream: u}]\n")
            .path_rules.path_parameters == http::PathParameters::Strip);
  CHECK(routeErrors("http: {escaped_slashes: decode, path_parameters: [strip], colour: red}\n"
                    "routes: [{upstream: u}]\n") ==
        Lines{"t.yaml:3:25: 'escaped_slashes': expected reject or keep, got 'decode'",
              "t.yaml:3:50: 'path_parameters' must be reject, strip or keep, got a list",
              "t.yaml:3:59: unknown key 'colour' in http; expected one of: escaped_slashes, "
              "path_parameters, underscores_in_headers, trusted_proxies"});
  // Match paths are checked under the configured rules: a route the rules would make unreachable
  // is an error.
  CHECK(routeErrors("routes:\n"
                    "  - {upstream: u, match: {prefix: /a%2Fb}}\n"
                    "  - {upstream: u, match: {exact: '/a;v=1'}}\n") ==
        Lines{"t.yaml:4:35: 'prefix' must not contain %2F or %5C: requests holding them are "
              "refused (http.escaped_slashes: reject)",
              "t.yaml:5:34: 'exact' must not contain ';' or %3B: requests holding them are "
              "refused or stripped (http.path_parameters)"});
  CHECK(routeErrors("http: {path_parameters: strip}\n"
                    "routes: [{upstream: u, match: {exact: '/a;v=1'}}]\n") ==
        Lines{"t.yaml:4:39: 'exact' must be written in normal form, '/a' (request paths are "
              "normalised before matching)"});
}

TEST_CASE("health_checks: active and passive settings, and their errors") {
  const Config defaults = load(std::string(kHead) + "routes: [{upstream: u}]\n");
  CHECK_FALSE(defaults.upstreams[0].active_check.has_value());
  CHECK(defaults.upstreams[0].passive_check.consecutive_failures == 5);
  CHECK_FALSE(defaults.upstreams[0].passive_check.count_5xx);
  CHECK_FALSE(defaults.upstreams[0].passive_check.count_read_timeouts);
  CHECK(defaults.upstreams[0].passive_check.max_ejection_percent == 50);
  const Config config = load(
      "listeners: [{port: 8080}]\n"
      "upstreams:\n"
      "  - name: u\n"
      "    backends: [127.0.0.1:9000]\n"
      "    health_checks:\n"
      "      active: {path: /healthz, interval: 1s, timeout: 300ms, healthy_threshold: 1,\n"
      "               unhealthy_threshold: 4, expected_statuses: [200, 300-302]}\n"
      "      passive: {consecutive_failures: 0, base_ejection: 2s, max_ejection: 1m,\n"
      "                count_5xx: true, count_read_timeouts: true, max_ejection_percent: 100}\n"
      "routes: [{upstream: u}]\n");
  const UpstreamConfig& u = config.upstreams[0];
  REQUIRE(u.active_check.has_value());
  CHECK(u.active_check->path == "/healthz");
  CHECK(u.active_check->interval == seconds(1));
  CHECK(u.active_check->timeout == milliseconds(300));
  CHECK(u.active_check->healthy_threshold == 1);
  CHECK(u.active_check->unhealthy_threshold == 4);
  CHECK(u.active_check->expected_statuses == std::vector<std::pair<int, int>>{{200, 200}, {300, 302}});
  CHECK(u.passive_check.consecutive_failures == 0);
  CHECK(u.passive_check.base_ejection == seconds(2));
  CHECK(u.passive_check.max_ejection == seconds(60));
  CHECK(u.passive_check.count_5xx);
  CHECK(u.passive_check.count_read_timeouts);
  CHECK(u.passive_check.max_ejection_percent == 100);
  CHECK(errorsOf("listeners: [{port: 8080}]\n"
                 "upstreams:\n"
                 "  - name: u\n"
                 "    backends: [127.0.0.1:9000]\n"
                 "    health_checks:\n"
                 "      active: {path: \"/x\\r\\nX-Evil: 1\", expected_statuses: [700, 302-300]}\n"
                 "      passive: {base_ejection: 1m, max_ejection: 10s}\n"
                 "routes: [{upstream: u}]\n") ==
        Lines{"t.yaml:6:22: health check path must start with '/' and contain no spaces or line "
              "breaks, got '/x\\r\\nX-Evil: 1'",
              "t.yaml:6:61: expected_statuses: each entry must be a status code (100-599) or a "
              "range such as 200-399, got '700'",
              "t.yaml:6:66: expected_statuses: each entry must be a status code (100-599) or a "
              "range such as 200-399, got '302-300'",
              "t.yaml:7:16: max_ejection must be at least base_ejection"});
  CHECK(errorsOf("listeners: [{port: 8080}]\n"
                 "upstreams:\n"
                 "  - name: u\n"
                 "    backends: [127.0.0.1:9000]\n"
                 "    health_checks:\n"
                 "      passive: {max_ejection_percent: 101, count_read_timeouts: sometimes}\n"
                 "routes: [{upstream: u}]\n") ==
        Lines{"t.yaml:6:39: 'max_ejection_percent': expected an integer from 0 to 100, got '101'",
              "t.yaml:6:65: 'count_read_timeouts': expected true or false, got 'sometimes'"});
}

TEST_CASE("load_balancing and outlier detection: settings, defaults and errors") {
  const Config defaults = load(std::string(kHead) + "routes: [{upstream: u}]\n");
  const UpstreamConfig& plain = defaults.upstreams[0];
  CHECK(plain.load_balancing.policy == BalancingPolicy::RoundRobin);
  CHECK(plain.passive_check.consecutive_5xx == 0);
  CHECK(plain.passive_check.consecutive_gateway_failure == 0);
  CHECK_FALSE(plain.success_rate_check.has_value());
  const Config config = load(
      "listeners: [{port: 8080}]\n"
      "upstreams:\n"
      "  - name: u\n"
      "    backends: [127.0.0.1:9000]\n"
      "    load_balancing: {policy: hash, hash_on: {cookie: sid}}\n"
      "    health_checks:\n"
      "      passive: {consecutive_5xx: 4, consecutive_gateway_failure: 2,\n"
      "                success_rate: {interval: 2s, minimum_hosts: 3, stdev_factor: 1.5}}\n"
      "routes: [{upstream: u}]\n");
  const UpstreamConfig& u = config.upstreams[0];
  CHECK(u.load_balancing.policy == BalancingPolicy::Hash);
  CHECK(u.load_balancing.hash_source == HashSource::Cookie);
  CHECK(u.load_balancing.hash_name == "sid");
  CHECK(u.passive_check.consecutive_5xx == 4);
  CHECK(u.passive_check.consecutive_gateway_failure == 2);
  REQUIRE(u.success_rate_check.has_value());
  CHECK(u.success_rate_check->interval == seconds(2));
  CHECK(u.success_rate_check->minimum_hosts == 3);
  CHECK(u.success_rate_check->request_volume == 100);
  CHECK(u.success_rate_check->stdev_factor == 1.5);
  CHECK(errorsOf("listeners: [{port: 8080}]\n"
                 "upstreams:\n"
                 "  - {name: a, backends: [127.0.0.1:9000], load_balancing: {policy: hash}}\n"
                 "  - {name: b, backends: [127.0.0.1:9000], load_balancing: {policy: fair}}\n"
                 "  - {name: c, backends: [127.0.0.1:9000],\n"
                 "     load_balancing: {policy: hash, hash_on: {header: \"X User\"}}}\n"
                 "  - {name: d, backends: [127.0.0.1:9000],\n"
                 "     load_balancing: {hash_on: {client_ip: true}},\n"
                 "     health_checks: {passive: {success_rate: {stdev_factor: 0}}}}\n"
                 "routes: [{upstream: a}]\n") ==
        Lines{"t.yaml:3:59: policy: hash needs 'hash_on': {header: NAME}, {cookie: NAME} or "
              "{client_ip: true}",
              "t.yaml:4:68: 'policy': expected round_robin, least_request or hash, got 'fair'",
              "t.yaml:6:55: header name must be an HTTP token, got 'X User'",
              "t.yaml:8:32: 'hash_on' applies only to policy: hash",
              "t.yaml:9:61: 'stdev_factor': expected a number above 0 and at most 10, got '0'"});
}

TEST_CASE("empty sections mean all defaults") {
  const Config config =
      load(std::string(kHead) + "limits:\nshutdown:\nroutes:\n  - upstream: u\n    match:\n");
  CHECK(config.limits.body_bytes == Limits{}.body_bytes);
  CHECK(config.routes[0].match.path == "/");
}

TEST_CASE("workers: auto and a number") {
  CHECK(load(std::string(kHead) + "workers: auto\nroutes: [{upstream: u}]\n").workers ==
        std::max(1u, std::thread::hardware_concurrency()));
  CHECK(load(std::string(kHead) + "workers: 1\nroutes: [{upstream: u}]\n").workers == 1);
}

TEST_CASE("error: missing file") {
  const LoadResult result = loadFile("/nonexistent/gw.yaml", testEnvironment());
  CHECK_FALSE(result.config);
  CHECK(
      format(result.errors) ==
      Lines{"/nonexistent/gw.yaml:0:0: cannot open configuration file: No such file or directory"});
}

TEST_CASE("error: YAML syntax") {
  CHECK(errorsOf("listeners:\n  port: 80: 1\n") ==
        Lines{"t.yaml:2:11: invalid YAML: illegal map value"});
}

TEST_CASE("error: YAML nested past yaml-cpp's depth guard") {
  const std::string deep = "x: " + std::string(600, '[') + std::string(600, ']') + "\n";
  const Lines errors = errorsOf(deep);
  REQUIRE(errors.size() == 1);
  CHECK(
      errors[0].ends_with(": invalid YAML: nested more deeply than yaml-cpp allows (about 500 "
                          "levels)"));
}

TEST_CASE("anchors and aliases load; past the expanded node limit they are an error") {
  const Config config = load(std::string(kHead) +
                             "routes:\n"
                             "  - {match: {prefix: /a/}, upstream: &up u}\n"
                             "  - {match: {prefix: /b/}, upstream: *up}\n");
  CHECK(config.routes[1].upstream == 0);
  // x2 expands to 1001 copies of x1's 1002 nodes: just over 1,000,000.
  std::string yaml = std::string(kHead) + "x1: &x1 [0";
  for (int i = 0; i < 1000; ++i) yaml += ", 0";
  yaml += "]\nx2: &x2 [*x1";
  for (int i = 0; i < 1000; ++i) yaml += ", *x1";
  yaml += "]\n";
  CHECK(errorsOf(yaml) ==
        Lines{"t.yaml:4:5: this node holds more than 1000000 YAML nodes once aliases are "
              "expanded (each *alias counts as a copy of the node it names), more than a "
              "configuration may"});
  // Within the limit the same shape is only what it is; a loop never is within it.
  const Lines small = errorsOf(std::string(kHead) + "x1: &x1 [0]\nx2: [*x1, *x1]\n");
  REQUIRE(small.size() == 3);
  CHECK(small[1].starts_with("t.yaml:3:1: unknown key 'x1'"));
  CHECK(errorsOf(std::string(kHead) + "x: &x {a: [1, *x]}\n") ==
        Lines{"t.yaml:3:4: an alias is used inside the node it names: this node would expand "
              "without end"});
}

TEST_CASE("error: empty file and a non-mapping document") {
  CHECK(errorsOf("") == Lines{"t.yaml:1:1: the configuration is empty"});
  CHECK(errorsOf("# only a comment\n") == Lines{"t.yaml:1:1: the configuration is empty"});
  CHECK(errorsOf("- a\n") == Lines{"t.yaml:1:1: the configuration must be a mapping, got a list"});
}

TEST_CASE("error: a ',' no document can hold, where yaml-cpp's LoadAll() never returned") {
  // Found by test/fuzz/config_fuzz.cpp: `gatewayd -t` on a file holding only "," grew to 23 GB.
  CHECK(errorsOf(",") ==
        Lines{"t.yaml:1:1: invalid YAML: ',' outside a flow collection ([...] or {...})"});
  CHECK(errorsOf("# comment\n,workers: 1\n") ==
        Lines{"t.yaml:2:1: invalid YAML: ',' outside a flow collection ([...] or {...})"});
  CHECK(errorsOf("workers: 1\n---\nworkers: 2\n") ==
        Lines{"t.yaml:2:1: only one YAML document is allowed"});
}

TEST_CASE("error: unknown key, with the allowed ones listed") {
  CHECK(
      routeErrors("routes: [{upstream: u}]\nlimit: {}\n") ==
      Lines{"t.yaml:4:1: unknown key 'limit' in the configuration; expected one of: workers, "
            "listeners, admin, readiness, access_log, tracing, limits, http, shutdown, redis, "
            "upstreams, plugins, routes"});
  CHECK(errorsOf("listeners: [{port: 1, prot: 2}]\nupstreams: [{name: u, backends: [h:1]}]\n"
                 "routes: [{upstream: u}]\n") ==
        Lines{"t.yaml:1:23: unknown key 'prot' in listener; expected one of: address, port, tls"});
}

TEST_CASE("error: a key given twice") {
  CHECK(routeErrors("routes: [{upstream: u, upstream: u}]\n") ==
        Lines{"t.yaml:3:24: duplicate key 'upstream' (first at t.yaml:3:11)"});
}

TEST_CASE("error: missing required keys") {
  CHECK(errorsOf("workers: 1\n") ==
        Lines{"t.yaml:1:1: the configuration is missing required key 'listeners'",
              "t.yaml:1:1: the configuration is missing required key 'upstreams'",
              "t.yaml:1:1: the configuration is missing required key 'routes'"});
  CHECK(routeErrors("routes:\n  - match: {prefix: /}\n") ==
        Lines{"t.yaml:4:5: route is missing required key 'upstream'"});
  CHECK(errorsOf("listeners: [{address: 127.0.0.1}]\nupstreams: [{backends: [h:1]}]\n"
                 "routes: [{upstream: u}]\n") ==
        Lines{"t.yaml:1:13: listener is missing required key 'port'",
              "t.yaml:2:13: upstream is missing required key 'name'",
              "t.yaml:3:21: unknown upstream 'u'"});
}

TEST_CASE("error: wrong types") {
  CHECK(routeErrors("routes: {upstream: u}\n") ==
        Lines{"t.yaml:3:9: 'routes' must be a list, got a mapping"});
  CHECK(routeErrors("routes: [{upstream: u, preserve_host: yes}]\n") ==
        Lines{"t.yaml:3:39: 'preserve_host': expected true or false, got 'yes'"});
  CHECK(routeErrors("routes: [{upstream: [u]}]\n") ==
        Lines{"t.yaml:3:21: 'upstream' must be a string, got a list"});
  CHECK(routeErrors("routes: [{upstream: u, limits: 5}]\n") ==
        Lines{"t.yaml:3:32: 'limits' must be a mapping, got '5'"});
  CHECK(errorsOf("listeners: []\nupstreams: [{name: u, backends: [h:1]}]\n"
                 "routes: [{upstream: u}]\n") ==
        Lines{"t.yaml:1:12: 'listeners' must have at least one entry"});
  CHECK(routeErrors("routes: [{upstream: u}, 5]\n") ==
        Lines{"t.yaml:3:25: a route must be a mapping, got '5'"});
  // An empty value is reported at its key.
  CHECK(routeErrors("routes:\n  - upstream:\n") ==
        Lines{"t.yaml:4:5: 'upstream' must be a string, got nothing"});
}

TEST_CASE("error: numbers out of range") {
  CHECK(errorsOf("listeners: [{port: 0}, {port: 65536}]\n"
                 "upstreams: [{name: u, backends: [{address: 'h:1', weight: 1001}]}]\n"
                 "routes: [{upstream: u}]\nworkers: 0\n") ==
        Lines{"t.yaml:1:20: 'port': expected an integer from 1 to 65535, got '0'",
              "t.yaml:1:31: 'port': expected an integer from 1 to 65535, got '65536'",
              "t.yaml:2:59: 'weight': expected an integer from 1 to 1000, got '1001'",
              "t.yaml:4:10: 'workers': expected 'auto' or an integer from 1 to 1024, got '0'"});
  CHECK(routeErrors("routes: [{upstream: u}]\nlimits: {header_count: -1}\n") ==
        Lines{"t.yaml:4:24: 'header_count': expected an integer from 1 to 65535, got '-1'"});
  CHECK(routeErrors("routes: [{upstream: u}]\n"
                    "limits: {max_connections_per_worker: 0, upstream_header_count: 0}\n") ==
        Lines{"t.yaml:4:38: 'max_connections_per_worker': expected an integer from 1 to 1000000, "
              "got '0'",
              "t.yaml:4:64: 'upstream_header_count': expected an integer from 1 to 65535, got '0'"});
}

TEST_CASE("limits: connections per worker and the upstream head's own limits") {
  const Config set = load(std::string(kHead) +
                          "limits: {max_connections_per_worker: 2000, upstream_header_bytes: "
                          "128KiB, upstream_header_count: 300}\nroutes: [{upstream: u}]\n");
  CHECK(set.limits.max_connections_per_worker == 2000);
  CHECK(set.limits.upstream_header_bytes == 128 * 1024);
  CHECK(set.limits.upstream_header_count == 300);
  const Config defaults = load(std::string(kHead) + "routes: [{upstream: u}]\n");
  CHECK(defaults.limits.max_connections_per_worker == 16384);
  CHECK(defaults.limits.upstream_header_bytes == 64 * 1024);
  CHECK(defaults.limits.upstream_header_count == 200);
}

TEST_CASE("error: bad durations and sizes") {
  CHECK(routeErrors("routes: [{upstream: u}]\n"
                    "limits: {idle_timeout: 30, body_bytes: 1.5MiB, header_bytes: 0}\n"
                    "shutdown: {drain_timeout: 5 s}\n") ==
        Lines{"t.yaml:4:24: 'idle_timeout': duration '30' needs a unit (ms, s, m or h), e.g. '30s'",
              "t.yaml:4:40: 'body_bytes': invalid size '1.5MiB': must be a whole number; use a "
              "smaller unit instead of a fraction",
              "t.yaml:4:62: 'header_bytes': expected at least 1B, got '0'",
              "t.yaml:5:27: 'drain_timeout': invalid duration '5 s': unit must be ms, s, m or h"});
  CHECK(routeErrors("routes: [{upstream: u, timeouts: {read: 0ms}}]\n") ==
        Lines{"t.yaml:3:41: 'read': expected at least 1ms, got '0ms'"});
}

TEST_CASE("error: listener address and duplicate listener") {
  CHECK(errorsOf("listeners:\n  - {address: localhost, port: 80}\n  - {port: 80}\n"
                 "  - {address: 0.0.0.0, port: 80}\n  - {address: '::0', port: 80}\n"
                 "  - {address: '::', port: 80}\n"
                 "upstreams: [{name: u, backends: [h:1]}]\nroutes: [{upstream: u}]\n") ==
        Lines{"t.yaml:2:15: listener address must be an IPv4 or IPv6 address, got 'localhost'",
              "t.yaml:4:5: duplicate listener 0.0.0.0:80 (first at t.yaml:3:5)",
              "t.yaml:6:5: duplicate listener [::]:80 (first at t.yaml:5:5)"});
}

TEST_CASE("error: upstream names") {
  CHECK(errorsOf("listeners: [{port: 1}]\nroutes: [{upstream: a}]\n"
                 "upstreams:\n  - {name: a, backends: [h:1]}\n  - {name: a, backends: [h:1]}\n"
                 "  - {name: 'a b', backends: [h:1]}\n") ==
        Lines{"t.yaml:5:12: duplicate upstream name 'a' (first at t.yaml:4:5)",
              "t.yaml:6:12: 'name': expected only letters, digits, '_', '.' and '-', got 'a b'"});
}

TEST_CASE("error: backends") {
  CHECK(errorsOf("listeners: [{port: 1}]\nroutes: [{upstream: u}]\nupstreams:\n"
                 "  - name: u\n    backends:\n"
                 "      - ::1:80\n"
                 "      - '[::1:80'\n"
                 "      - host\n"
                 "      - 'bad host:80'\n"
                 "      - h:0\n"
                 "      - [::1]\n"
                 "      - {weight: 2}\n"
                 "  - {name: v, backends: []}\n") ==
        Lines{"t.yaml:6:9: IPv6 backend addresses must be bracketed, e.g. \"[::1]:9000\"",
              "t.yaml:7:9: backend address must look like [::1]:9000",
              "t.yaml:8:9: backend address must be host:port",
              "t.yaml:9:9: invalid backend host 'bad host'",
              "t.yaml:10:9: backend port must be an integer from 1 to 65535, got '0'",
              "t.yaml:11:9: backend must be host:port or a mapping with 'address' and 'weight', "
              "got a list (quote IPv6 addresses: \"[::1]:9000\")",
              "t.yaml:12:9: backend is missing required key 'address'",
              "t.yaml:13:25: 'backends' must have at least one entry"});
}

TEST_CASE("error: unknown upstream reference") {
  CHECK(routeErrors("routes: [{upstream: nope}]\n") ==
        Lines{"t.yaml:3:21: unknown upstream 'nope'"});
}

TEST_CASE("error: duplicate route names, including a default one") {
  CHECK(routeErrors("routes:\n  - {upstream: u, match: {prefix: /a}}\n"
                    "  - {name: a, upstream: u, match: {prefix: /b}}\n"
                    "  - {name: route-1, upstream: u, match: {prefix: /c}}\n"
                    "  - {name: a, upstream: u, match: {prefix: /d}}\n") ==
        Lines{"t.yaml:6:5: duplicate route name 'route-1' (first at t.yaml:4:5)",
              "t.yaml:7:5: duplicate route name 'a' (first at t.yaml:5:5)"});
}

TEST_CASE("error: match paths") {
  CHECK(routeErrors("routes:\n"
                    "  - {upstream: u, match: {prefix: /a, exact: /a}}\n"
                    "  - {upstream: u, match: {prefix: api}}\n"
                    "  - {upstream: u, match: {exact: /a/../b}}\n"
                    "  - {upstream: u, match: {prefix: /a//b}}\n"
                    "  - {upstream: u, match: {prefix: '/a b'}}\n"
                    "  - {upstream: u, match: {exact: /../a}}\n"
                    "  - {upstream: u, match: {prefix: /%7ea}}\n") ==
        Lines{"t.yaml:4:26: match must have only one of 'prefix' and 'exact'",
              "t.yaml:5:35: 'prefix' must start with '/'",
              "t.yaml:6:34: 'exact' must be written in normal form, '/b' (request paths are "
              "normalised before matching)",
              "t.yaml:7:35: 'prefix' must be written in normal form, '/a/b' (request paths are "
              "normalised before matching)",
              "t.yaml:8:35: 'prefix' is not a valid path (spaces, control characters, '?', '#', "
              "'\\', non-ASCII bytes and malformed %-escapes are refused)",
              "t.yaml:9:34: 'exact' must not climb above '/' with '..'",
              "t.yaml:10:35: 'prefix' must be written in normal form, '/~a' (request paths are "
              "normalised before matching)"});
}

TEST_CASE("error: methods") {
  CHECK(routeErrors("routes:\n"
                    "  - {upstream: u, match: {prefix: /a, methods: [get, FETCH]}}\n"
                    "  - {upstream: u, match: {prefix: /b, methods: []}}\n") ==
        Lines{"t.yaml:4:49: unknown HTTP method 'get' (one of GET, HEAD, POST, PUT, DELETE, "
              "CONNECT, OPTIONS, TRACE, PATCH; upper-case)",
              "t.yaml:4:54: unknown HTTP method 'FETCH' (one of GET, HEAD, POST, PUT, DELETE, "
              "CONNECT, OPTIONS, TRACE, PATCH; upper-case)",
              "t.yaml:5:48: 'methods' must be a non-empty list (omit it to match any method), got "
              "a list"});
}

TEST_CASE("error: host") {
  CHECK(routeErrors("routes:\n"
                    "  - {upstream: u, match: {host: 'a.com:80'}}\n"
                    "  - {upstream: u, match: {host: 'a..com'}}\n"
                    "  - {upstream: u, match: {host: '*'}}\n") ==
        Lines{"t.yaml:4:33: 'host' must not include a port",
              "t.yaml:5:33: 'host' must be a host name such as api.example.com or *.example.com, "
              "got 'a..com'",
              "t.yaml:6:33: 'host' must be a host name such as api.example.com or *.example.com, "
              "got '*'"});
}

TEST_CASE("error: strip_prefix not a prefix of the match path") {
  CHECK(routeErrors("routes: [{upstream: u, match: {prefix: /api/}, strip_prefix: /v1}]\n") ==
        Lines{"t.yaml:3:62: strip_prefix '/v1' is not a prefix of the match path '/api/'"});
}

TEST_CASE("error: duplicate routes") {
  CHECK(routeErrors("routes:\n"
                    "  - {name: a, upstream: u, match: {prefix: /x, methods: [GET, POST]}}\n"
                    "  - {name: b, upstream: u, match: {prefix: /x, methods: [POST, GET]}}\n") ==
        Lines{"t.yaml:5:5: route 'b' duplicates route 'a' (t.yaml:4:5)"});
}

TEST_CASE("error: unreachable routes") {
  SUBCASE("an earlier prefix covers a later prefix") {
    CHECK(routeErrors("routes:\n  - {name: all, upstream: u}\n"
                      "  - {name: api, upstream: u, match: {prefix: /api/}}\n") ==
          Lines{"t.yaml:5:5: route 'api' is unreachable: shadowed by route 'all' (t.yaml:4:5)"});
  }
  SUBCASE("prefixes cover whole segments") {
    CHECK(routeErrors("routes:\n  - {name: a, upstream: u, match: {prefix: /api}}\n"
                      "  - {name: b, upstream: u, match: {prefix: /api/v1}}\n") ==
          Lines{"t.yaml:5:5: route 'b' is unreachable: shadowed by route 'a' (t.yaml:4:5)"});
  }
  SUBCASE("an earlier prefix covers a later exact path") {
    CHECK(routeErrors("routes:\n  - {name: a, upstream: u, match: {prefix: /api}}\n"
                      "  - {name: b, upstream: u, match: {exact: /api/health}}\n") ==
          Lines{"t.yaml:5:5: route 'b' is unreachable: shadowed by route 'a' (t.yaml:4:5)"});
  }
  SUBCASE("equal exact paths, earlier takes any method") {
    CHECK(routeErrors("routes:\n  - {name: a, upstream: u, match: {exact: /h}}\n"
                      "  - {name: b, upstream: u, match: {exact: /h, methods: [GET]}}\n") ==
          Lines{"t.yaml:5:5: route 'b' is unreachable: shadowed by route 'a' (t.yaml:4:5)"});
  }
  SUBCASE("earlier methods are a superset, earlier host equal") {
    CHECK(routeErrors(
              "routes:\n"
              "  - {name: a, upstream: u, match: {host: x.io, methods: [GET, PUT]}}\n"
              "  - {name: b, upstream: u, match: {host: X.io, prefix: /b, methods: [GET]}}\n") ==
          Lines{"t.yaml:5:5: route 'b' is unreachable: shadowed by route 'a' (t.yaml:4:5)"});
  }
  SUBCASE("an earlier wildcard host covers a subdomain") {
    CHECK(routeErrors("routes:\n  - {name: a, upstream: u, match: {host: '*.x.io'}}\n"
                      "  - {name: b, upstream: u, match: {host: a.b.x.io}}\n") ==
          Lines{"t.yaml:5:5: route 'b' is unreachable: shadowed by route 'a' (t.yaml:4:5)"});
  }
}

TEST_CASE("reachable routes are not reported") {
  load(std::string(kHead) +
       "routes:\n"
       "  - {upstream: u, match: {exact: /api}}\n"  // exact before prefix
       "  - {upstream: u, match: {prefix: /api}}\n"
       "  - {upstream: u, match: {prefix: /apix}}\n"  // "/api" is segment-aware
       "  - {upstream: u, match: {prefix: /b/}}\n"    // "/b/" does not match "/b"
       "  - {upstream: u, match: {exact: /b}}\n"
       "  - {upstream: u, match: {prefix: /, methods: [GET]}}\n"  // later takes more methods
       "  - {upstream: u, match: {prefix: /, methods: [GET, POST]}}\n"
       "  - {upstream: u, match: {host: a.x.io}}\n"  // later is less specific
       "  - {upstream: u, match: {host: '*.x.io'}}\n"
       "  - {upstream: u, match: {host: x.io}}\n"  // wildcard excludes x.io
       "  - {upstream: u}\n");
}

TEST_CASE("every problem is reported, in file order") {
  const auto errors = errorsOf(
      "routes: [{upstream: nope}]\n"
      "listeners: [{port: 0}]\n"
      "upstreams: [{name: u, backends: [h:1], pool: {max_idle: x}}]\n"
      "extra: 1\n");
  CHECK(errors.size() == 4);
  CHECK(errors[0].starts_with("t.yaml:1:21: unknown upstream"));
  CHECK(errors[1].starts_with("t.yaml:2:20: 'port'"));
  CHECK(errors[2].starts_with("t.yaml:3:57: 'max_idle'"));
  CHECK(errors[3].starts_with("t.yaml:4:1: unknown key 'extra'"));
}

TEST_CASE("warnings: unused upstream and repeated method") {
  const LoadResult ok = loadText(
      "listeners: [{port: 1}]\n"
      "upstreams: [{name: u, backends: [h:1]}, {name: v, backends: [h:2]}]\n"
      "routes: [{upstream: v, match: {methods: [GET, GET]}}]\n");
  CHECK(ok.errors.empty());
  CHECK(format(ok.warnings) == Lines{"t.yaml:2:13: upstream 'u' is not used by any route",
                                     "t.yaml:3:47: method 'GET' is listed twice"});
  REQUIRE(ok.config);
  CHECK(ok.config->routes[0].match.methods == std::vector<std::string>{"GET"});
}

TEST_CASE("warnings: a prefix's other methods falling through to a later route") {
  const LoadResult result = loadText(
      "listeners: [{port: 1}]\n"
      "upstreams: [{name: u, backends: [h:1]}, {name: v, backends: [h:2]}]\n"
      "routes:\n"
      "  - {name: admin, upstream: v, match: {prefix: /admin, methods: [GET, POST]}}\n"
      "  - {name: tenant, upstream: v, match: {host: a.x.io, prefix: /, methods: [GET]}}\n"
      "  - {name: upload, upstream: u, match: {prefix: /upload, methods: [PUT]}}\n"
      "  - {name: all, upstream: u}\n");
  CHECK(result.errors.empty());
  // 'upload' falls through to the same upstream with the same plugins: nothing to say.
  CHECK(format(result.warnings) ==
        Lines{"t.yaml:4:5: route 'admin' takes only GET, POST on prefix '/admin'; requests there "
              "with other methods fall through to route 'all' (t.yaml:7:5) and its plugins "
              "instead of a 405",
              "t.yaml:5:5: route 'tenant' takes only GET on host 'a.x.io' prefix '/'; requests "
              "there with other methods fall through to route 'all' (t.yaml:7:5) and its plugins "
              "instead of a 405"});
}

// ---- plugins ----

LoadResult loadPlugins(std::string_view rest) {
  return loadText(std::string(kHead) + std::string(rest));
}
Lines pluginErrors(std::string_view rest) { return format(loadPlugins(rest).errors); }
Lines pluginWarnings(std::string_view rest) {
  const LoadResult result = loadPlugins(rest);
  CHECK(format(result.errors) == Lines{});
  return format(result.warnings);
}

int probeValue(const PluginBinding& binding) {
  return static_cast<const Probe&>(*binding.settings).value;
}

TEST_CASE("plugins: the global list comes first, then the route's own, in YAML order") {
  const LoadResult result = loadPlugins(
      "plugins:\n"
      "  - ids\n"
      "  - limit: {value: 1}\n"
      "routes:\n"
      "  - upstream: u\n"
      "    match: {exact: /x}\n"
      "    plugins:\n"
      "      - probe: {value: 2}\n"
      "      - limit: {value: 3}\n"
      "  - {upstream: u}\n");
  INFO(format(result.errors));
  REQUIRE(result.config);
  const Config& config = *result.config;
  REQUIRE(config.plugins.size() == 2);
  CHECK(config.plugins[0].name == "ids");
  CHECK(config.plugins[0].type == testPlugins().find("ids"));
  CHECK(probeValue(config.plugins[0]) == 0);  // no settings: the defaults
  CHECK(config.plugins[0].where.line == 4);
  CHECK(config.plugins[0].where.column == 5);
  REQUIRE(config.routes.size() == 2);
  const auto& own = config.routes[0].plugins;
  REQUIRE(own.size() == 4);
  CHECK(own[0].name == "ids");
  CHECK(own[1].name == "limit");
  CHECK(probeValue(own[1]) == 1);
  CHECK(own[1].settings == config.plugins[1].settings);  // one shared object: one global limit
  CHECK(own[2].name == "probe");
  CHECK(probeValue(own[2]) == 2);
  CHECK(own[2].where.line == 10);
  CHECK(own[3].name == "limit");
  CHECK(probeValue(own[3]) == 3);
  REQUIRE(config.routes[1].plugins.size() == 2);
  CHECK(config.routes[1].plugins[1].name == "limit");
  CHECK(result.warnings.empty());
}

TEST_CASE("plugins: entries that are not plugins") {
  CHECK(pluginErrors("routes:\n"
                     "  - upstream: u\n"
                     "    plugins:\n"
                     "      - cors\n"
                     "      - rate_limit: {rps: 5}\n"
                     "      - {a: 1, b: 2}\n"
                     "      - [probe]\n") ==
        Lines{"t.yaml:6:9: unknown plugin 'cors' (known plugins: 'probe', 'ids', 'key_auth', "
              "'limit')",
              "t.yaml:7:9: unknown plugin 'rate_limit' (known plugins: 'probe', 'ids', "
              "'key_auth', 'limit')",
              "t.yaml:8:9: a plugin entry must be a plugin name or a mapping with one key, the "
              "plugin name, got a mapping",
              "t.yaml:9:9: a plugin entry must be a plugin name or a mapping with one key, the "
              "plugin name, got a list"});
  CHECK(pluginErrors("routes: [{upstream: u, plugins: cors}]\n") ==
        Lines{"t.yaml:3:33: 'plugins' must be a list, got 'cors'"});
  CHECK(pluginErrors("plugins: {probe: {}}\nroutes: [{upstream: u}]\n") ==
        Lines{"t.yaml:3:10: 'plugins' must be a list, got a mapping"});
  const TestCatalogue none;
  CHECK(format(loadString(std::string(kHead) + "routes: [{upstream: u, plugins: [x]}]\n", "t.yaml",
                          testEnvironment(none))
                   .errors) == Lines{"t.yaml:3:34: unknown plugin 'x' (known plugins: none)"});
}

TEST_CASE("plugins: settings errors are located in the file") {
  CHECK(pluginErrors("plugins:\n"
                     "  - probe: {value: 10, colour: red}\n"
                     "routes:\n"
                     "  - upstream: u\n"
                     "    plugins:\n"
                     "      - limit:\n"
                     "          value: x\n"
                     "      - ids: [1]\n"
                     "      - key_auth: {value: throw}\n") ==
        Lines{"t.yaml:4:20: 'value': expected an integer from 1 to 9, got '10'",
              "t.yaml:4:24: unknown key 'colour' in probe; expected one of: value",
              "t.yaml:9:18: 'value': expected an integer from 1 to 9, got 'x'",
              "t.yaml:10:14: the settings of ids must be a mapping, got a list",
              "t.yaml:11:27: cannot read the settings of 'key_auth': bad conversion"});
}

TEST_CASE("plugins: a plugin listed twice is an error unless its type allows repeats") {
  CHECK(pluginErrors("plugins: [probe]\n"
                     "routes:\n"
                     "  - {upstream: u, match: {exact: /x}, plugins: [ids, ids]}\n"
                     "  - {upstream: u, plugins: [probe, limit, limit]}\n") ==
        Lines{"t.yaml:5:54: plugin 'ids' is listed twice (first at t.yaml:5:49)",
              "t.yaml:6:29: plugin 'probe' is listed twice (first at t.yaml:3:11)"});
  CHECK(pluginErrors("plugins: [ids, ids]\nroutes: [{upstream: u}]\n") ==
        Lines{"t.yaml:3:16: plugin 'ids' is listed twice (first at t.yaml:3:11)"});
}

// A listener with `tls:` on line 1 and its settings from line 2 on, then an upstream and a route.
std::string tlsConfig(std::string_view tls) {
  return "listeners:\n  - port: 8443\n    tls:\n" + std::string(tls) +
         "upstreams: [{name: u, backends: [127.0.0.1:9000]}]\nroutes: [{upstream: u}]\n";
}

TEST_CASE("listeners: tls settings and their defaults") {
  const Config defaults = load(tlsConfig("      certificates: [{chain: /c.pem, key: /k.pem}]\n"));
  REQUIRE(defaults.listeners[0].tls);
  const ListenerTls& plain = *defaults.listeners[0].tls;
  REQUIRE(plain.options.certificates.size() == 1);
  CHECK(plain.options.certificates[0].chainPath == "/c.pem");
  CHECK(plain.options.certificates[0].keyPath == "/k.pem");
  CHECK(plain.certificateWhere[0].chain.line == 4);
  CHECK(plain.certificateWhere[0].chain.column == 30);
  CHECK(plain.certificateWhere[0].key.column == 43);
  CHECK(plain.options.minVersion == net::TlsVersion::Tls12);
  CHECK(plain.options.maxVersion == net::TlsVersion::Tls13);
  CHECK(plain.options.ciphers == net::kDefaultTlsCiphers);
  CHECK(plain.options.ciphersuites == net::kDefaultTlsCiphersuites);
  CHECK(plain.options.handshakeTimeout == seconds(10));
  CHECK(plain.options.sessionTickets);

  const Config set = load(tlsConfig("      certificates:\n"
                                    "        - {chain: /a.pem, key: /a.key}\n"
                                    "        - {chain: /b.pem, key: /b.key}\n"
                                    "      protocols: [TLSv1.3]\n"
                                    "      ciphers: ECDHE-ECDSA-AES128-GCM-SHA256\n"
                                    "      ciphersuites: TLS_AES_128_GCM_SHA256\n"
                                    "      handshake_timeout: 3s\n"
                                    "      session_tickets: false\n"));
  const ListenerTls& tls = *set.listeners[0].tls;
  REQUIRE(tls.options.certificates.size() == 2);
  CHECK(tls.options.certificates[1].chainPath == "/b.pem");
  CHECK(tls.options.minVersion == net::TlsVersion::Tls13);
  CHECK(tls.options.maxVersion == net::TlsVersion::Tls13);
  CHECK(tls.options.ciphers == "ECDHE-ECDSA-AES128-GCM-SHA256");
  CHECK(tls.ciphersWhere.line == 8);
  CHECK(tls.ciphersuitesWhere.line == 9);
  CHECK(tls.options.handshakeTimeout == seconds(3));
  CHECK_FALSE(tls.options.sessionTickets);
  CHECK(load(tlsConfig("      certificates: [{chain: /c.pem, key: /k.pem}]\n"
                       "      protocols: [TLSv1.2]\n"))
            .listeners[0]
            .tls->options.maxVersion == net::TlsVersion::Tls12);
  CHECK_FALSE(load(std::string(kHead) + "routes: [{upstream: u}]\n").listeners[0].tls);
}

TEST_CASE("listeners: tls errors") {
  CHECK(errorsOf(tlsConfig("      certificates: []\n")) ==
        Lines{"t.yaml:4:21: 'certificates' must have at least one entry"});
  CHECK(errorsOf(tlsConfig("      protocols: [TLSv1.2]\n")) ==
        Lines{"t.yaml:4:7: tls is missing required key 'certificates'"});
  CHECK(errorsOf("listeners:\n  - port: 8443\n    tls:\n"
                 "upstreams: [{name: u, backends: [127.0.0.1:9000]}]\nroutes: [{upstream: u}]\n") ==
        Lines{"t.yaml:3:5: 'tls' must be a mapping with at least 'certificates', got nothing"});
  CHECK(errorsOf(tlsConfig("      certificates: [{chain: c.pem, key: /k.pem}, {key: /k.pem}, 7]\n"
                           "      protocols: [TLSv1.1, TLSv1.3, [x]]\n"
                           "      ciphers: ''\n"
                           "      handshake_timeout: 0s\n"
                           "      colour: blue\n")) ==
        Lines{"t.yaml:4:30: certificate chain must be an absolute file path, got 'c.pem'",
              "t.yaml:4:51: certificate is missing required key 'chain'",
              "t.yaml:4:66: a certificate must be a mapping, got '7'",
              "t.yaml:5:19: protocols: each entry must be TLSv1.2 or TLSv1.3 (older versions are "
              "not supported), got 'TLSv1.1'",
              "t.yaml:5:37: protocols: each entry must be TLSv1.2 or TLSv1.3 (older versions are "
              "not supported), got a list",
              "t.yaml:6:16: 'ciphers' must not be empty",
              "t.yaml:7:26: 'handshake_timeout': expected at least 1ms, got '0s'",
              "t.yaml:8:7: unknown key 'colour' in tls; expected one of: certificates, protocols, "
              "ciphers, ciphersuites, handshake_timeout, session_tickets"});
  CHECK(errorsOf(tlsConfig("      certificates: [{chain: /c.pem, key: /k.pem}]\n"
                           "      protocols: []\n")) ==
        Lines{"t.yaml:5:18: 'protocols' must list at least one of TLSv1.2, TLSv1.3"});
  CHECK(errorsOf(tlsConfig("      certificates: [{chain: /c.pem, key: /k.pem}]\n"
                           "      protocols: TLSv1.3\n")) ==
        Lines{"t.yaml:5:18: 'protocols' must be a list of TLSv1.2, TLSv1.3, got 'TLSv1.3'"});
}

// A listener, then an upstream whose `tls:` is on line 4 with its settings from line 5 on.
std::string upstreamTlsConfig(std::string_view tls) {
  return "listeners: [{port: 8080}]\n"
         "upstreams:\n"
         "  - {name: u, backends: [api.test:443]}\n"
         "  - name: v\n"
         "    backends: [api.test:443]\n"
         "    tls:\n" +
         std::string(tls) + "routes: [{upstream: v, match: {prefix: /v}}, {upstream: u}]\n";
}

TEST_CASE("upstreams: tls settings and their defaults") {
  CHECK_FALSE(load(upstreamTlsConfig("      {}\n")).upstreams[0].tls);
  const LoadResult defaults = loadText(upstreamTlsConfig("      {}\n"));
  REQUIRE(defaults.config);
  CHECK(defaults.warnings.empty());
  REQUIRE(defaults.config->upstreams[1].tls);
  const net::TlsClientOptions& plain = defaults.config->upstreams[1].tls->options;
  CHECK(plain.verify);
  CHECK(plain.caFile.empty());
  CHECK(plain.serverName.empty());
  CHECK(plain.certificatePath.empty());
  CHECK(plain.keyPath.empty());
  CHECK(plain.minVersion == net::TlsVersion::Tls12);

  const LoadResult set = loadText(upstreamTlsConfig("      verify: false\n"
                                                    "      ca_file: /ca.pem\n"
                                                    "      server_name: backend.internal\n"
                                                    "      certificate: /client.pem\n"
                                                    "      key: /client.key\n"
                                                    "      min_version: TLSv1.3\n"));
  REQUIRE(set.config);
  CHECK(format(set.warnings) ==
        Lines{"t.yaml:7:15: tls verify is false: the backends' certificates are not checked, so "
              "anyone on the path to them can pose as them"});
  const UpstreamTls& tls = *set.config->upstreams[1].tls;
  CHECK_FALSE(tls.options.verify);
  CHECK(tls.options.caFile == "/ca.pem");
  CHECK(tls.caFileWhere.line == 8);
  CHECK(tls.caFileWhere.column == 16);
  CHECK(tls.options.serverName == "backend.internal");
  CHECK(tls.options.certificatePath == "/client.pem");
  CHECK(tls.certificateWhere.line == 10);
  CHECK(tls.options.keyPath == "/client.key");
  CHECK(tls.keyWhere.line == 11);
  CHECK(tls.options.minVersion == net::TlsVersion::Tls13);
  CHECK(load(upstreamTlsConfig("      server_name: 10.0.0.7\n")).upstreams[1].tls->options.serverName ==
        "10.0.0.7");
}

TEST_CASE("upstreams: tls errors") {
  CHECK(errorsOf(upstreamTlsConfig("      verify: maybe\n"
                                   "      ca_file: ca.pem\n"
                                   "      server_name: 'bad name'\n"
                                   "      certificate: /client.pem\n"
                                   "      min_version: TLSv1.1\n"
                                   "      ciphers: x\n")) ==
        Lines{"t.yaml:7:15: 'verify': expected true or false, got 'maybe'",
              "t.yaml:8:16: ca_file must be an absolute file path, got 'ca.pem'",
              "t.yaml:9:20: server_name must be a DNS name or an IP address, got 'bad name'",
              "t.yaml:10:20: a client certificate needs both 'certificate' and 'key': 'key' is "
              "missing",
              "t.yaml:11:20: 'min_version': expected TLSv1.2 or TLSv1.3, got 'TLSv1.1'",
              "t.yaml:12:7: unknown key 'ciphers' in tls; expected one of: verify, ca_file, "
              "server_name, certificate, key, min_version"});
  CHECK(errorsOf("listeners: [{port: 8080}]\n"
                 "upstreams:\n"
                 "  - name: u\n"
                 "    backends: [api.test:443]\n"
                 "    tls:\n"
                 "routes: [{upstream: u}]\n") ==
        Lines{"t.yaml:5:5: 'tls' must be a mapping ({} for the defaults), got nothing"});
}

TEST_CASE("plugins: warnings on orders that defeat a plugin") {
  // Anything before the request id: its errors and logs have no id. Given once for a global
  // plugin, however many routes it runs on.
  CHECK(pluginWarnings("plugins: [probe]\n"
                       "routes:\n"
                       "  - {upstream: u, match: {exact: /x}, plugins: [limit, ids]}\n"
                       "  - {upstream: u, plugins: [ids]}\n") ==
        Lines{"t.yaml:3:11: plugin 'probe' runs before 'ids': its errors and logs will have no "
              "request id",
              "t.yaml:5:49: plugin 'limit' runs before 'ids': its errors and logs will have no "
              "request id"});
  // Authentication before any rate limit: failed logins are never limited.
  CHECK(pluginWarnings("routes: [{upstream: u, plugins: [ids, key_auth, limit]}]\n") ==
        Lines{"t.yaml:3:39: plugin 'key_auth' (authentication) runs before 'limit': requests "
              "that fail authentication are never limited; put a per-client rate_limit first"});
  // The two tiers users want, and authentication with no limit at all, are fine.
  CHECK(pluginWarnings("routes: [{upstream: u, plugins: [ids, limit, key_auth, limit]}]\n") ==
        Lines{});
  CHECK(pluginWarnings("routes: [{upstream: u, plugins: [ids, key_auth, probe]}]\n") == Lines{});
}

std::string capsConfig(std::string_view upstreamKeys) {
  return "listeners: [{port: 8080}]\n"
         "upstreams:\n"
         "  - name: u\n"
         "    backends: [127.0.0.1:9000]\n" +
         std::string(upstreamKeys) + "routes: [{upstream: u}]\n";
}

TEST_CASE("upstreams: caps and retry_budget, and their defaults") {
  const Config defaults = load(capsConfig(""));
  CHECK_FALSE(defaults.upstreams[0].caps.any());
  CHECK_FALSE(defaults.upstreams[0].retry_budget);
  const Config set =
      load(capsConfig("    caps: {max_connections: 10, max_pending: 2, max_requests: 8,\n"
                      "           per_backend: {max_requests: 4}}\n"
                      "    retry_budget: {percent: 25, min_concurrency: 5}\n"));
  const UpstreamCaps& caps = set.upstreams[0].caps;
  CHECK(caps.upstream.max_connections == 10);
  CHECK(caps.upstream.max_pending == 2);
  CHECK(caps.upstream.max_requests == 8);
  CHECK(caps.per_backend.max_requests == 4);
  CHECK(caps.per_backend.max_connections == 0);
  REQUIRE(set.upstreams[0].retry_budget);
  CHECK(set.upstreams[0].retry_budget->percent == 25);
  CHECK(set.upstreams[0].retry_budget->min_concurrency == 5);
  CHECK(load(capsConfig("    retry_budget: {}\n")).upstreams[0].retry_budget->percent == 20);
}

TEST_CASE("upstreams: bad caps and retry_budget are refused with their place") {
  CHECK(errorsOf(capsConfig("    caps: {max_requests: -1}\n")) ==
        Lines{"t.yaml:5:26: 'max_requests': expected an integer from 0 to 10000000, got '-1'"});
  CHECK(errorsOf(capsConfig("    caps: {per_backend: {max_queue: 1}}\n")) ==
        Lines{"t.yaml:5:26: unknown key 'max_queue' in per_backend caps; expected one of: "
              "max_connections, max_pending, max_requests"});
  CHECK(errorsOf(capsConfig("    retry_budget: {percent: 101}\n")) ==
        Lines{"t.yaml:5:29: 'percent': expected an integer from 0 to 100, got '101'"});
}

TEST_CASE("routes: retries and their defaults") {
  CHECK_FALSE(load(std::string(kHead) + "routes: [{upstream: u}]\n").routes[0].retries);
  const Config defaults = load(std::string(kHead) + "routes: [{upstream: u, retries: {}}]\n");
  REQUIRE(defaults.routes[0].retries);
  const RetryPolicy& plain = *defaults.routes[0].retries;
  CHECK(plain.attempts == 2);
  CHECK(plain.on_reset);
  CHECK(plain.on_per_try_timeout);
  CHECK(plain.statuses.empty());
  CHECK_FALSE(plain.non_idempotent);
  CHECK(plain.per_try_timeout == milliseconds(0));
  const Config set = load(std::string(kHead) +
                          "routes:\n"
                          "  - upstream: u\n"
                          "    retries: {attempts: 3, on: [503, reset], methods: all,\n"
                          "              per_try_timeout: 250ms, timeout: 2s, backoff: 10ms}\n");
  const RetryPolicy& policy = *set.routes[0].retries;
  CHECK(policy.attempts == 3);
  CHECK(policy.on_reset);
  CHECK_FALSE(policy.on_per_try_timeout);
  CHECK(policy.statuses == std::vector<int>{503});
  CHECK(policy.non_idempotent);
  CHECK(policy.per_try_timeout == milliseconds(250));
  CHECK(policy.timeout == seconds(2));
  CHECK(policy.backoff == milliseconds(10));
  CHECK(policy.max_backoff == milliseconds(100));
}

TEST_CASE("routes: bad retries are refused with their place") {
  CHECK(routeErrors("routes: [{upstream: u, retries: {on: [404]}}]\n") ==
        Lines{"t.yaml:3:39: retries 'on': each entry must be reset, per_try_timeout or a status "
              "code from 500 to 599, got '404'"});
  CHECK(routeErrors("routes: [{upstream: u, retries: {methods: post}}]\n") ==
        Lines{"t.yaml:3:43: retries 'methods' must be idempotent or all, got 'post'"});
  CHECK(routeErrors("routes: [{upstream: u, retries: {attempts: 11}}]\n") ==
        Lines{"t.yaml:3:44: 'attempts': expected an integer from 1 to 10, got '11'"});
}

TEST_CASE("routes: concurrency and its defaults") {
  CHECK_FALSE(load(std::string(kHead) + "routes: [{upstream: u}]\n").routes[0].concurrency);
  const Config plain =
      load(std::string(kHead) + "routes: [{upstream: u, concurrency: {max_requests: 5}}]\n");
  REQUIRE(plain.routes[0].concurrency);
  CHECK(plain.routes[0].concurrency->max_requests == 5);
  CHECK(plain.routes[0].concurrency->queue == 0);
  CHECK(plain.routes[0].concurrency->queue_timeout == seconds(1));
  const Config set =
      load(std::string(kHead) +
           "routes:\n"
           "  - upstream: u\n"
           "    concurrency: {max_requests: 100, queue: 50, queue_timeout: 250ms}\n");
  const RouteConcurrency& limit = *set.routes[0].concurrency;
  CHECK(limit.max_requests == 100);
  CHECK(limit.queue == 50);
  CHECK(limit.queue_timeout == milliseconds(250));
}

TEST_CASE("routes: bad concurrency is refused with its place") {
  CHECK(routeErrors("routes: [{upstream: u, concurrency: {queue: 5}}]\n") ==
        Lines{"t.yaml:3:37: concurrency is missing required key 'max_requests'"});
  CHECK(routeErrors("routes: [{upstream: u, concurrency: {max_requests: 0}}]\n") ==
        Lines{"t.yaml:3:52: 'max_requests': expected an integer from 1 to 10000000, got '0'"});
  CHECK(routeErrors("routes: [{upstream: u, concurrency: {max_requests: 1, queue: 100001}}]\n") ==
        Lines{"t.yaml:3:62: 'queue': expected an integer from 0 to 100000, got '100001'"});
  CHECK(
      routeErrors("routes: [{upstream: u, concurrency: {max_requests: 1, queue_timeout: 0s}}]\n") ==
      Lines{"t.yaml:3:70: 'queue_timeout': expected at least 1ms, got '0s'"});
  CHECK(routeErrors("routes: [{upstream: u, concurrency: {max_requests: 1, wait: 1s}}]\n") ==
        Lines{"t.yaml:3:55: unknown key 'wait' in concurrency; expected one of: max_requests, "
              "queue, queue_timeout"});
  CHECK(routeErrors("routes: [{upstream: u, concurrency: 5}]\n") ==
        Lines{"t.yaml:3:37: 'concurrency' must be a mapping, got '5'"});
}

}  // namespace
}  // namespace gw::config

namespace gw::config {
namespace {

TEST_CASE("redis: no block by default; {} gives every default") {
  const std::string routes = std::string(kHead) + "routes: [{upstream: u}]\n";
  CHECK_FALSE(load(routes).redis);
  CHECK_FALSE(load(routes).readiness.require_redis);
  const Config config = load(routes + "redis: {}\n");
  REQUIRE(config.redis);
  const RedisConfig& redis = *config.redis;
  CHECK(redis.address == "127.0.0.1:6379");
  CHECK(redis.host == "127.0.0.1");
  CHECK(redis.port == 6379);
  CHECK(redis.unix_path.empty());
  CHECK(redis.username.empty());
  CHECK(redis.password.empty());
  CHECK(redis.database == 0);
  CHECK(redis.connect_timeout == milliseconds(200));
  CHECK(redis.command_timeout == milliseconds(50));
  CHECK(redis.max_pending == 1024);
  CHECK(redis.reconnect_initial == milliseconds(100));
  CHECK(redis.reconnect_max == seconds(5));
  CHECK(redis.breaker_errors == 5);
  CHECK(redis.half_open_probes == 8);
  CHECK(redis.key_prefix == "gw:");
  CHECK(redis.key_secret.empty());
  CHECK(redis.where.line == 4);
}

TEST_CASE("redis: every setting, the secrets read from a file and the environment") {
  test::TempDir dir;
  const std::string passwordFile = dir.path + "/password";
  std::ofstream(passwordFile) << "s3cret\n";
  ::setenv("GW_TEST_REDIS_KEY_SECRET", "digest-key", 1);
  const Config config = load(std::string(kHead) + "routes: [{upstream: u}]\n" +
                             "redis:\n"
                             "  address: localhost:6380\n"
                             "  username: gatewayd\n"
                             "  password_file: " +
                             passwordFile +
                             "\n"
                             "  database: 15\n"
                             "  connect_timeout: 1s\n"
                             "  command_timeout: 20ms\n"
                             "  max_pending: 64\n"
                             "  reconnect_initial: 50ms\n"
                             "  reconnect_max: 2s\n"
                             "  breaker_errors: 3\n"
                             "  half_open_probes: 2\n"
                             "  key_prefix: 'prod:'\n"
                             "  key_secret_env: GW_TEST_REDIS_KEY_SECRET\n"
                             "readiness: {require_redis: true}\n");
  ::unsetenv("GW_TEST_REDIS_KEY_SECRET");
  REQUIRE(config.redis);
  const RedisConfig& redis = *config.redis;
  CHECK(redis.address == "localhost:6380");
  CHECK((redis.host == "127.0.0.1" || redis.host == "::1"));  // as /etc/hosts has it
  CHECK(redis.port == 6380);
  CHECK(redis.username == "gatewayd");
  CHECK(redis.password == "s3cret");  // without the file's newline
  CHECK(redis.database == 15);
  CHECK(redis.connect_timeout == seconds(1));
  CHECK(redis.command_timeout == milliseconds(20));
  CHECK(redis.max_pending == 64);
  CHECK(redis.reconnect_initial == milliseconds(50));
  CHECK(redis.reconnect_max == seconds(2));
  CHECK(redis.breaker_errors == 3);
  CHECK(redis.half_open_probes == 2);
  CHECK(redis.key_prefix == "prod:");
  CHECK(redis.key_secret == "digest-key");
  CHECK(config.readiness.require_redis);

  const Config unix = load(std::string(kHead) + "routes: [{upstream: u}]\n" +
                           "redis: {address: 'unix:/run/redis/redis.sock', password_env: HOME}\n");
  CHECK(unix.redis->unix_path == "/run/redis/redis.sock");
  CHECK(unix.redis->host.empty());
  CHECK(unix.redis->password == std::getenv("HOME"));
}

TEST_CASE("redis: a block is the same connection unless what the connection uses changed") {
  RedisConfig a;
  RedisConfig b;
  b.key_prefix = "other:";
  b.key_secret = "x";
  b.where.line = 9;
  CHECK(a.sameConnection(b));
  b.password = "p";
  CHECK_FALSE(a.sameConnection(b));
  b = a;
  b.command_timeout = milliseconds(51);
  CHECK_FALSE(a.sameConnection(b));
  b = a;
  b.host = "127.0.0.2";
  CHECK_FALSE(a.sameConnection(b));
}

TEST_CASE("redis: errors at their place, secrets never in a message") {
  const std::string head = std::string(kHead) + "routes: [{upstream: u}]\n";
  CHECK(errorsOf(head + "redis:\n") ==
        Lines{"t.yaml:4:1: 'redis' must be a mapping ({} for the defaults), got nothing"});
  CHECK(errorsOf(head + "redis: {address: 'redis'}\n") ==
        Lines{"t.yaml:4:18: redis address must be host:port (or unix:/path)"});
  CHECK(errorsOf(head + "redis: {address: '::1:6379'}\n") ==
        Lines{"t.yaml:4:18: IPv6 redis addresses must be bracketed, e.g. \"[::1]:9000\" (or "
              "unix:/path)"});
  CHECK(errorsOf(head + "redis: {address: '127.0.0.1:0'}\n") ==
        Lines{"t.yaml:4:18: redis port must be an integer from 1 to 65535, got '0' (or "
              "unix:/path)"});
  CHECK(errorsOf(head + "redis: {address: 'no-such-host.invalid:6379'}\n") ==
        Lines{"t.yaml:4:18: cannot resolve the redis host 'no-such-host.invalid': Name or service "
              "not known"});
  CHECK(errorsOf(head + "redis: {address: 'unix:redis.sock'}\n") ==
        Lines{"t.yaml:4:18: redis address unix: needs an absolute socket path shorter than 108 "
              "bytes, got 'unix:redis.sock'"});
  CHECK(errorsOf(head + "redis: {database: 16, max_pending: 0, breaker_errors: 0}\n") ==
        Lines{"t.yaml:4:19: 'database': expected an integer from 0 to 15, got '16'",
              "t.yaml:4:36: 'max_pending': expected an integer from 1 to 1000000, got '0'",
              "t.yaml:4:55: 'breaker_errors': expected an integer from 1 to 10000, got '0'"});
  CHECK(errorsOf(head +
                 "redis: {command_timeout: 0ms, reconnect_initial: 2s, reconnect_max: 1s}\n") ==
        Lines{"t.yaml:4:26: 'command_timeout': expected at least 1ms, got '0ms'",
              "t.yaml:4:69: redis reconnect_max must be at least reconnect_initial"});
  CHECK(errorsOf(head + "redis: {key_prefix: 'a{b}:'}\n") ==
        Lines{"t.yaml:4:21: redis key_prefix must not contain '{' or '}', got 'a{b}:'"});
  CHECK(errorsOf(head + "redis: {username: u}\n") ==
        Lines{"t.yaml:4:19: redis username needs a password (password_file or password_env)"});
  CHECK(errorsOf(head + "redis: {password_file: /p, password_env: P}\n") ==
        Lines{"t.yaml:4:28: redis 'password_file' and 'password_env' are exclusive: give one"});
  CHECK(errorsOf(head + "redis: {password_file: p}\n") ==
        Lines{"t.yaml:4:24: password_file must be an absolute file path, got 'p'"});
  CHECK(errorsOf(head + "redis: {key_secret_file: /nonexistent/secret}\n") ==
        Lines{"t.yaml:4:26: cannot read redis key_secret_file /nonexistent/secret: No such file "
              "or directory"});
  ::setenv("GW_TEST_REDIS_EMPTY", "", 1);
  CHECK(errorsOf(head + "redis: {password_env: GW_TEST_REDIS_EMPTY}\n") ==
        Lines{"t.yaml:4:23: redis password_env: the environment variable GW_TEST_REDIS_EMPTY is "
              "empty"});
  ::unsetenv("GW_TEST_REDIS_EMPTY");
  CHECK(errorsOf(head + "redis: {password_env: GW_TEST_REDIS_UNSET}\n") ==
        Lines{"t.yaml:4:23: redis password_env: the environment variable GW_TEST_REDIS_UNSET is "
              "not set"});
  CHECK(errorsOf(head + "redis: {password_env: 'A-B'}\n") ==
        Lines{"t.yaml:4:23: redis password_env must be an environment variable name, got 'A-B'"});
  test::TempDir dir;
  std::ofstream(dir.path + "/empty") << "\n";
  CHECK(errorsOf(head + "redis: {password_file: " + dir.path + "/empty}\n") ==
        Lines{"t.yaml:4:24: redis password_file " + dir.path + "/empty is empty"});
  CHECK(errorsOf(head + "redis: {passwd: x}\n") ==
        Lines{"t.yaml:4:9: unknown key 'passwd' in redis; expected one of: address, username, "
              "password_file, password_env, database, connect_timeout, command_timeout, "
              "max_pending, reconnect_initial, reconnect_max, breaker_errors, half_open_probes, "
              "key_prefix, key_secret_file, key_secret_env"});
  CHECK(errorsOf(head + "readiness: {require_redis: true}\n") ==
        Lines{"t.yaml:4:28: readiness.require_redis needs a top-level 'redis:' block"});
}

TEST_CASE("redis: plugin settings see the block; one that uses Redis needs it") {
  TestCatalogue catalogue;
  catalogue.add(std::make_unique<ProbeType>("shared", "", false));
  const LoadEnvironment environment = testEnvironment(catalogue);
  const std::string routes =
      std::string(kHead) +
      "routes: [{upstream: u, plugins: [{shared: {value: 1, redis: true}}]}]\n";
  CHECK(format(loadString(routes, "t.yaml", environment).errors) ==
        Lines{"t.yaml:3:35: plugin 'shared' uses Redis: add a top-level 'redis:' block "
              "(docs/configuration.md)"});
  // The block may come after the plugins in the file.
  const LoadResult result =
      loadString(routes + "redis: {key_prefix: 'p:'}\n", "t.yaml", environment);
  REQUIRE(result.config);
  const auto& probe = static_cast<const Probe&>(*result.config->routes[0].plugins[0].settings);
  CHECK(probe.keyPrefix == "p:");
}

}  // namespace
}  // namespace gw::config
