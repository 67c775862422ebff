#pragma once
// The validated, immutable configuration. Built once by config/loader from YAML; the hot path
// reads these plain structs (and what proxy/router compiles from them), never YAML.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/http/path.h"
#include "gateway/net/cidr.h"
#include "gateway/net/tls_options.h"

namespace gw::config {

class PluginType;
struct PluginSettings;

using Duration = std::chrono::milliseconds;

// Where a value came from, so later checks (router, plugins) can report FILE:LINE:COL too.
struct Location {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
};

struct Diagnostic {
  Location where;
  std::string message;
  std::string format() const;  // "FILE:LINE:COL: message"
};

// A problem found in YAML where the file is not known (a plugin's settings, a NodeReader):
// the loader adds the file. Line 0 means "no position of its own".
struct ConfigError {
  int line = 0;    // 1-based, from YAML::Node::Mark()
  int column = 0;  // 1-based
  std::string message;
};

// A listener's `tls:`. The files are read when the snapshot is built (runtime/snapshot), which
// reports their problems at these locations.
struct ListenerTls {
  net::TlsOptions options;
  struct CertificateLocations {
    Location chain;
    Location key;
  };
  std::vector<CertificateLocations> certificateWhere;  // parallel to options.certificates
  Location ciphersWhere;
  Location ciphersuitesWhere;
};

struct ListenerConfig {
  std::string address = "0.0.0.0";
  uint16_t port = 0;
  Location where;
  std::optional<ListenerTls> tls;  // none: plain HTTP
};

// "host:port" with an IPv6 literal bracketed: how an address is written in messages, metric
// labels and Host fields.
std::string hostPort(std::string_view host, uint16_t port);

struct BackendConfig {
  std::string host;
  uint16_t port = 0;
  uint32_t weight = 1;
  Location where;
};

struct PoolConfig {
  uint32_t max_idle_per_backend = 64;  // per worker
  Duration idle_timeout = std::chrono::seconds(60);
};

struct UpstreamTimeouts {
  Duration connect = std::chrono::seconds(5);
  Duration read = std::chrono::seconds(60);  // waiting for any byte of the response
  Duration send = std::chrono::seconds(60);  // a blocked write to the backend
};

// An HTTP probe of every backend, run off the request path (health_checks.active).
struct ActiveHealthCheck {
  std::string path = "/health";
  std::string host;  // Host header; empty: the backend's host:port
  Duration interval = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(2);
  uint32_t healthy_threshold = 2;
  uint32_t unhealthy_threshold = 3;
  std::vector<std::pair<int, int>> expected_statuses = {{200, 399}};  // inclusive ranges
  Location where;
};

// Outlier detection from real traffic (health_checks.passive).
struct PassiveHealthCheck {
  uint32_t consecutive_failures = 5;  // 0: never eject
  Duration base_ejection = std::chrono::seconds(10);
  Duration max_ejection = std::chrono::minutes(5);
  bool count_5xx = false;  // connect failures, connect timeouts and resets always count
  // Read and send timeouts follow the route's request, not the backend's health (one slow path):
  // counted only when asked for.
  bool count_read_timeouts = false;
  // Envoy's outlier triggers, off at 0. Each counts its own streak, ended by a response below
  // 500: any 5xx the backend answered, or only 502/503/504 (a 500 ends that streak); our own
  // connect failures and resets count in both.
  uint32_t consecutive_5xx = 0;
  uint32_t consecutive_gateway_failure = 0;
  // A passive ejection never leaves an upstream without a backend in rotation, nor more than this
  // share of its backends (rounded down) ejected at once.
  uint32_t max_ejection_percent = 50;
};

// Success-rate outliers (health_checks.passive.success_rate, Envoy's success_rate_*): every
// interval, among the backends that saw at least request_volume requests, when at least
// minimum_hosts did, those below mean - stdev_factor x stdev are ejected.
struct SuccessRateCheck {
  Duration interval = std::chrono::seconds(10);
  uint32_t minimum_hosts = 5;
  uint32_t request_volume = 100;
  double stdev_factor = 1.9;
};

enum class BalancingPolicy : uint8_t { RoundRobin, LeastRequest, Hash };
enum class HashSource : uint8_t { Header, Cookie, ClientIp };

// upstreams[].load_balancing: how a backend is chosen for each request.
struct LoadBalancing {
  BalancingPolicy policy = BalancingPolicy::RoundRobin;
  HashSource hash_source = HashSource::ClientIp;  // policy hash only
  std::string hash_name;                          // the header or cookie name
};

// An upstream's `tls:`: HTTPS to its backends. The files are read when the snapshot is built
// (runtime/snapshot), which reports their problems at these locations.
struct UpstreamTls {
  net::TlsClientOptions options;
  Location caFileWhere;
  Location certificateWhere;
  Location keyWhere;
};

// Caps on what is in flight toward an upstream or one of its backends, for the whole process
// (Envoy's circuit breakers). 0: no cap.
struct CapLimits {
  uint32_t max_connections = 0;  // open connections: leased, connecting and idle in the pools
  uint32_t max_pending = 0;      // connects in progress
  uint32_t max_requests = 0;     // requests in flight
  bool any() const { return max_connections != 0 || max_pending != 0 || max_requests != 0; }
};

struct UpstreamCaps {
  CapLimits upstream;     // all its backends together
  CapLimits per_backend;  // each backend
  bool any() const { return upstream.any() || per_backend.any(); }
};

// How many retries may be in flight toward an upstream at once, for the whole process (Envoy's
// retry_budget): `percent` of its requests in flight, and at least `min_concurrency`. Without
// one, `min_concurrency` alone bounds them (Envoy's default max_retries of 3).
struct RetryBudget {
  uint32_t percent = 20;
  uint32_t min_concurrency = 3;
};

struct UpstreamConfig {
  std::string name;
  std::vector<BackendConfig> backends;
  PoolConfig pool;
  UpstreamTimeouts timeouts;
  std::optional<ActiveHealthCheck> active_check;
  PassiveHealthCheck passive_check;
  std::optional<SuccessRateCheck> success_rate_check;
  LoadBalancing load_balancing;
  std::optional<UpstreamTls> tls;  // none: plain HTTP
  UpstreamCaps caps;
  std::optional<RetryBudget> retry_budget;
  Location where;
  // What the upstream's YAML says (config/yaml_identity.h): a reload keeps the per-worker
  // connection pools of an upstream whose identity did not change.
  std::string identity;
};

struct Limits {
  std::size_t request_line_bytes = 8 * 1024;  // over -> 414
  std::size_t header_bytes = 32 * 1024;       // request line + headers; over -> 431
  std::size_t header_count = 100;             // over -> 431
  std::size_t body_bytes = 1024 * 1024;       // over -> 413
  // A backend's response head: status line + headers. Over either -> 502, and the backend is
  // not held responsible (the limit is ours).
  // Client connections one worker holds at once; at the limit it stops accepting (connections
  // wait in the kernel's backlog) until one closes, as nginx's worker_connections.
  std::size_t max_connections_per_worker = 16384;
  std::size_t upstream_header_bytes = 64 * 1024;
  std::size_t upstream_header_count = 200;
  Duration client_header_timeout = std::chrono::seconds(10);
  Duration client_body_timeout = std::chrono::seconds(30);
  Duration idle_timeout = std::chrono::seconds(60);
};

// One entry of a `plugins:` list, its settings parsed by its type at load
// (config/plugin_catalogue.h).
struct PluginBinding {
  std::string name;
  const PluginType* type = nullptr;
  std::shared_ptr<const PluginSettings> settings;
  Location where;
  // What the settings' YAML says (config/yaml_identity.h): a reload keeps the state (e.g.
  // rate-limit windows, cache stores) of an entry whose route, position and identity stayed.
  std::string identity;
};

enum class PathMatch : uint8_t { Prefix, Exact };

struct RouteMatch {
  PathMatch kind = PathMatch::Prefix;
  std::string path = "/";
  std::optional<std::string> host;   // lower-case, no port; "*.example.com" matches subdomains
  std::vector<std::string> methods;  // upper-case; empty = any method
};

// When a failed attempt is tried again (routes[].retries), on top of what is always retried: a
// connect that never reached a backend, and a stale pooled connection (once, idempotent only).
struct RetryPolicy {
  uint32_t attempts = 2;  // tries in all, the first included
  bool on_reset = true;   // the backend closed or reset before any response byte
  bool on_per_try_timeout = true;
  std::vector<int> statuses;  // response statuses retried (e.g. 502, 503, 504)
  // Also retry methods that are not idempotent (POST, PATCH): the backend may act twice.
  bool non_idempotent = false;
  Duration per_try_timeout{0};  // each try, connect to response head; 0: none
  Duration timeout{0};          // all tries together, to the response head; 0: none
  Duration backoff{0};          // base of the jittered wait before a retry; 0: none
  Duration max_backoff{0};      // cap of that wait (10 x backoff unless given)
};

// How many of a route's requests may be in flight toward its upstream at once, for the whole
// process (routes[].concurrency); the rest wait in a bounded FIFO, each at most `queue_timeout`.
struct RouteConcurrency {
  uint32_t max_requests = 0;
  uint32_t queue = 0;            // requests waiting at most, process-wide; 0: none wait
  Duration queue_timeout{1000};  // the longest a request waits for its turn
  friend bool operator==(const RouteConcurrency&, const RouteConcurrency&) = default;
};

struct RouteConfig {
  std::string name;
  RouteMatch match;
  std::size_t upstream = 0;   // index into Config::upstreams
  std::string strip_prefix;   // removed from the path before forwarding; empty = none
  bool preserve_host = true;  // false: send Host = the backend's host:port
  // Effective values: the route's own, else the upstream's / the global limits.
  std::size_t body_bytes = 0;
  UpstreamTimeouts timeouts;
  std::optional<RetryPolicy> retries;  // none: only what is always retried
  std::optional<RouteConcurrency> concurrency;  // none: no limit of its own
  // The global `plugins:` list followed by the route's own, in YAML order.
  std::vector<PluginBinding> plugins;
  Location where;
};

// The JSON access log: one line per exchange, written off the request path.
struct AccessLogConfig {
  bool enabled = true;
  std::string path = "stdout";            // or a file, reopened on SIGUSR1
  std::vector<std::string> fields;        // empty: every field
  std::vector<std::string> log_headers;   // request headers to log (secrets masked)
  std::vector<std::string> mask_headers;  // masked besides Authorization, Cookie, ...
  std::optional<std::vector<std::string>> mask_query_params;  // replaces the default list
  std::size_t max_queued_bytes = 8 * 1024 * 1024;  // lines beyond are dropped and counted
  Location where;
};

// Where spans are exported (TracingConfig::otlp). Not nested in TracingConfig: clang cannot
// default-construct a nested struct with member initializers in std::optional while the
// enclosing struct is incomplete.
struct OtlpConfig {
  std::string endpoint;  // http://host:port/v1/traces
  std::string service_name = "gatewayd";
  std::size_t batch_size = 512;
  Duration flush_interval = std::chrono::seconds(1);
  std::size_t max_queued_spans = 8192;
  Location where;
};

// W3C trace context, and the optional export of one span per request.
struct TracingConfig {
  bool enabled = true;  // continue or start a trace; send traceparent upstream
  std::optional<OtlpConfig> otlp;
};

// The admin listener (/metrics, /health, /ready, /status, DELETE /cache); never shared with
// proxied traffic.
struct AdminConfig {
  bool enabled = true;
  std::string address = "127.0.0.1";
  uint16_t port = 9901;
  // Connections open at once; when all are taken, a new one replaces the oldest that has not sent
  // a complete request head (else the oldest), so probes are answered whoever holds the rest.
  std::size_t max_connections = 64;
  Duration header_timeout = std::chrono::seconds(3);  // accept to complete request head; then 408
  Location where;
};

// What the admin /ready answer depends on besides the process's own state (starting, serving,
// draining): the upstreams that must each have a usable backend. Empty by default: one dead
// backend pool should not take the whole gateway, every healthy route included, out of a load
// balancer that shares that backend with every other instance.
struct ReadinessConfig {
  std::vector<std::size_t> required_upstreams;  // indices into Config::upstreams, each once
  // /ready answers 503 while any worker's Redis breaker is open. Off by default: with
  // `on_redis_error: allow` the gateway still serves, counting locally.
  bool require_redis = false;
  Location where;
};

// The `redis:` block: the one Redis every worker keeps a connection to (gateway/redis), shared by
// the plugins that count or cache across instances.
struct RedisConfig {
  std::string address = "127.0.0.1:6379";  // as written (host:port or unix:/path), for /status
  std::string host = "127.0.0.1";          // the IP the name resolved to at load; empty: unix
  uint16_t port = 6379;
  std::string unix_path;  // set for unix:/path
  std::string username;   // ACL user; empty: AUTH <password> (or no AUTH without a password)
  std::string password;   // read at load from password_file or password_env; never shown
  uint32_t database = 0;  // SELECT when not 0
  Duration connect_timeout = std::chrono::milliseconds(200);  // connect plus handshake
  Duration command_timeout = std::chrono::milliseconds(50);   // a late reply drops the connection
  std::size_t max_pending = 1024;                             // per worker; over it: Overloaded
  Duration reconnect_initial = std::chrono::milliseconds(100);
  Duration reconnect_max = std::chrono::seconds(5);
  uint32_t breaker_errors = 5;    // consecutive error replies that open the breaker
  uint32_t half_open_probes = 8;  // successes that close it again
  std::string key_prefix = "gw:";
  std::string key_secret;  // read at load from key_secret_file or key_secret_env; may be empty
  Location where;

  // Whether a connection made for `other` would be the same as one made for this block (the
  // keys' prefix and secret are the plugins' business): a reload keeps the connections then.
  bool sameConnection(const RedisConfig& other) const;
};

// What happens to a request header whose name holds an underscore: backends that read `_` and
// `-` alike (WSGI, CGI, PHP) would take `X_Forwarded_For` for `X-Forwarded-For`.
enum class UnderscoreHeaders : uint8_t { Drop, Reject, Allow };

struct Config {
  std::string source;  // file name, for messages
  unsigned workers = 1;
  std::vector<ListenerConfig> listeners;
  std::vector<UpstreamConfig> upstreams;
  std::vector<RouteConfig> routes;
  Limits limits;
  Duration drain_timeout = std::chrono::seconds(30);
  std::vector<PluginBinding> plugins;  // the global list, applied before each route's own
  http::PathRules path_rules;  // the `http:` section: path spellings backends read differently
  UnderscoreHeaders underscores_in_headers = UnderscoreHeaders::Drop;
  // Peers whose X-Real-IP and Forwarded fields are passed on (from anyone else they are removed:
  // the gateway is the one that knows the client's address).
  std::vector<net::IpNetwork> trusted_proxies;
  AdminConfig admin;
  ReadinessConfig readiness;
  std::optional<RedisConfig> redis;  // none: plugin::Dispatcher::redis() is null
  AccessLogConfig access_log;
  TracingConfig tracing;
};

}  // namespace gw::config
