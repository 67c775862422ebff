#pragma once
// Per-worker metric shards.
//
// Each worker owns one WorkerMetrics of plain integers, touched only by its own thread: no
// atomics, no locks, no allocation on the request path (except the first time a route sees a new
// (method, status) pair). At scrape the admin thread has every worker copy its shard and merges
// the copies into one total, which exposition.h turns into the Prometheus exposition.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/net/tls_handshake_failure.h"
#include "gateway/observability/histogram.h"

namespace gw::config {
struct Config;
}  // namespace gw::config

namespace gw::observability {

// A counter family a plugin type declares (plugin::Factory::counters()): one series per route,
// or per route and value of `label`. Names are static strings.
struct CounterFamily {
  std::string_view name;  // e.g. "gatewayd_cache_requests_total"
  std::string_view help;
  std::string_view label;                    // "" for route only, e.g. "result"
  std::span<const std::string_view> values;  // the label's values, one series each
  std::size_t series() const { return label.empty() ? 1 : values.size(); }
  friend bool operator==(const CounterFamily& a, const CounterFamily& b) {
    return a.name == b.name && a.help == b.help && a.label == b.label &&
           std::equal(a.values.begin(), a.values.end(), b.values.begin(), b.values.end());
  }
};

// The label values of a shard: index i of `routes` names WorkerMetrics::routes[i], and so on.
// Immutable and shared (by shards and their scrape copies), so a copy never duplicates names.
struct MetricsLayout {
  struct Upstream {
    std::string name;
    std::vector<std::string> backends;  // "host:port", IPv6 as "[::1]:9000"
    bool operator==(const Upstream&) const = default;
  };
  std::vector<std::string> routes;  // index = index in config::Config::routes
  // Per route: 1 where it has a concurrency limit (routes[].concurrency), whose queue it reports
  // (routes past its end have none).
  std::vector<uint8_t> limited;
  bool isLimited(std::size_t route) const { return route < limited.size() && limited[route]; }
  std::vector<Upstream> upstreams;  // index = index in config::Config::upstreams
  // The plugins' families; every route has a counter for each of their series, in this order.
  std::vector<CounterFamily> routeCounters;
  bool operator==(const MetricsLayout&) const = default;
  std::size_t routeCounterSlots() const;

  // `routeCounters` from the registry the configuration was loaded with.
  static std::shared_ptr<const MetricsLayout> fromConfig(
      const config::Config& config, std::span<const CounterFamily> routeCounters);
};

// Methods outside this fixed set count as "OTHER", so the method label stays bounded.
inline constexpr std::array<std::string_view, 10> kMethodNames = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER"};

enum class UpstreamErrorKind : uint8_t { Connect, Timeout, Reset, Protocol };
inline constexpr std::array<std::string_view, 4> kUpstreamErrorKindNames = {"connect", "timeout",
                                                                            "reset", "protocol"};

// The caps of an upstream (upstream::Cap), by which a request was refused.
inline constexpr std::array<std::string_view, 3> kCapNames = {"connections", "pending", "requests"};

// Why an attempt was retried (proxy::RetryReason).
inline constexpr std::array<std::string_view, 4> kRetryReasonNames = {"connect_failure", "reset",
                                                                      "status", "per_try_timeout"};

struct RouteMetrics {
  struct RequestCount {
    uint8_t method = 0;  // index into kMethodNames
    uint16_t code = 0;
    uint64_t count = 0;
  };

  // `methodIndex` from WorkerMetrics::methodIndex(); `code` is the status sent downstream.
  void countRequest(int methodIndex, int code);

  // Sparse, sorted by (method, code): a route sees few distinct pairs, so a linear walk is cheap.
  std::vector<RequestCount> requests;
  Histogram duration;  // whole exchange, first request byte to last response byte
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  std::vector<uint64_t> counters;  // the plugins' (MetricsLayout::routeCounters), by slot
  // Routes with a concurrency limit: requests that waited for a slot, those that stopped
  // waiting (admitted, refused or gone; the difference is the queue's depth), the time they
  // waited and the ROUTE_OVERLOADED answers, by kRouteOverloadNames.
  uint64_t queue_joined = 0;
  uint64_t queue_left = 0;
  uint64_t queue_wait_us = 0;
  std::array<uint64_t, 2> overloaded{};
};

// Why a request got ROUTE_OVERLOADED (proxy::RouteGate): the queue was full, or its wait ran out.
inline constexpr std::array<std::string_view, 2> kRouteOverloadNames = {"queue_full",
                                                                        "queue_timeout"};

struct BackendMetrics {
  uint64_t requests = 0;
  uint64_t errors = 0;
};

struct UpstreamMetrics {
  void countError(UpstreamErrorKind kind) { ++errors[static_cast<std::size_t>(kind)]; }

  Histogram duration;     // request sent to response complete, per attempt
  uint64_t connects = 0;  // new connections opened
  uint64_t reuses = 0;    // requests sent on a pooled keep-alive connection
  std::array<uint64_t, kUpstreamErrorKindNames.size()> errors{};  // by UpstreamErrorKind
  std::array<uint64_t, kCapNames.size()> overloaded{};       // requests refused, by the cap reached
  std::array<uint64_t, kRetryReasonNames.size()> retries{};  // retries started, by reason
  uint64_t retry_budget_exhausted = 0;                       // retries the budget refused
  uint64_t per_try_timeouts = 0;  // attempts that ran out of their per-try time
  // Gauges: the worker increments and decrements; the sum over workers is the value.
  int64_t active_connections = 0;
  int64_t idle_connections = 0;
  std::vector<BackendMetrics> backends;  // index = MetricsLayout::Upstream::backends
};

// A worker's Redis connection (gateway/redis/connection.h): round trips by what the command was
// for, failures by reason, commands refused without being sent.
enum class RedisCommand : uint8_t { RateLimit, CacheGet, CacheSet, Other };
inline constexpr std::array<std::string_view, 4> kRedisCommandNames = {"rate_limit", "cache_get",
                                                                       "cache_set", "other"};
enum class RedisError : uint8_t {
  Timeout,
  Disconnected,
  ServerError,
  NoScript,
  ConnectFailed,
  AuthFailed
};
inline constexpr std::array<std::string_view, 6> kRedisErrorNames = {
    "timeout", "disconnected", "server_error", "noscript", "connect_failed", "auth_failed"};
enum class RedisRejection : uint8_t { Down, Overloaded };
inline constexpr std::array<std::string_view, 2> kRedisRejectionNames = {"down", "overloaded"};

struct RedisMetrics {
  void countError(RedisError error) { ++errors[static_cast<std::size_t>(error)]; }
  void countRejection(RedisRejection why) { ++rejected[static_cast<std::size_t>(why)]; }
  void merge(const RedisMetrics& other);

  std::array<Histogram, kRedisCommandNames.size()> round_trip;   // by RedisCommand
  std::array<uint64_t, kRedisErrorNames.size()> errors{};        // by RedisError
  std::array<uint64_t, kRedisRejectionNames.size()> rejected{};  // by RedisRejection
  uint64_t reconnects = 0;  // connection attempts after the first
  int64_t pending = 0;      // gauge: commands in flight
};

struct WorkerMetrics {
  explicit WorkerMetrics(std::shared_ptr<const MetricsLayout> layout);

  // Index into kMethodNames; anything not in the set (methods are case-sensitive) is "OTHER".
  static int methodIndex(std::string_view method);

  // Adds `other` (a scrape copy of another shard) into this one. With an equal layout this is a
  // plain element-wise sum; otherwise (a reload changed routes, upstreams or backends) series are
  // matched by name and those of `other` that no longer exist here are dropped. So
  // `WorkerMetrics(newLayout).merge(old)` also carries a shard across a reload.
  void merge(const WorkerMetrics& other);

  std::shared_ptr<const MetricsLayout> layout;
  std::vector<RouteMetrics> routes;
  std::vector<UpstreamMetrics> upstreams;
  int64_t downstream_connections = 0;  // gauge: open now
  uint64_t downstream_connections_accepted = 0;
  uint64_t tls_handshakes = 0;        // completed on the TLS listeners
  uint64_t tls_sessions_resumed = 0;  // of those, resumed with a session ticket
  std::array<uint64_t, net::kHandshakeFailureNames.size()> tls_handshake_failures{};  // by reason
  RedisMetrics redis;  // the worker's connection's (filled in at scrape)

  void countHandshakeFailure(net::HandshakeFailure reason) {
    ++tls_handshake_failures[static_cast<std::size_t>(reason)];
  }
};

}  // namespace gw::observability
