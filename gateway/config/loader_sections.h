#pragma once
// Inside the loader (not for other callers): the Loader's state and the sections it reads, one
// file per group of sections: loader.cpp (the document, the top level, the order of sections),
// loader_listeners.cpp (workers, listeners, limits, http), loader_upstreams.cpp,
// loader_routes.cpp, loader_plugins.cpp (plugin lists and their order) and
// loader_observability.cpp (admin, readiness, access_log, tracing) and loader_redis.cpp.

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/config/loader.h"
#include "gateway/config/node_reader.h"
#include "gateway/config/route_overlaps.h"

namespace gw::config {

inline constexpr Duration kMinTimeout{1};

// "FILE:LINE:COL", as messages name another place in the file.
std::string toString(const Location& where);

// The IP literal in canonical text form ("::0:1" -> "::1"), so equal addresses compare equal.
std::optional<std::string> canonicalIp(const std::string& text);
bool isWildcardIp(std::string_view canonical);
bool isIpv6(std::string_view canonical);
// A decimal integer from `min` to `max`, nothing else (no sign, no spaces).
template <typename Int>
std::optional<Int> parseInt(std::string_view text, Int min, Int max) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  if (value < static_cast<uint64_t>(min) || value > static_cast<uint64_t>(max)) return std::nullopt;
  return static_cast<Int>(value);
}
// "host:port" or "[v6]:port" into `host` (without brackets, so it can be resolved directly) and
// `port`; otherwise says why, naming the address `what` ("backend", "redis").
std::optional<std::string> splitHostPort(std::string_view text, std::string_view what,
                                         std::string& host, uint16_t& port);
// A DNS-style name: dot-separated non-empty labels of letters, digits, '-' and '_'.
bool isValidHostName(std::string_view host);

class Loader {
 public:
  Loader(const std::string& source, const LoadEnvironment& environment);
  LoadResult load(std::string_view yaml);

 private:
  // ---- diagnostics (loader.cpp) ----
  Location locate(const YAML::Node& node) const;
  void error(const YAML::Mark& at, std::string message);
  void error(const YAML::Node& at, std::string message) {
    addError(errors_, at, std::move(message));
  }
  void warn(const Location& at, std::string message);
  // A reader of `map`, named `what` in its messages, reporting into this load's errors.
  NodeReader reader(const YAML::Node& map, std::string_view what) {
    return NodeReader(map, what, errors_, config_.source);
  }
  bool expectMap(const YAML::Node& node, std::string_view what);
  bool readName(NodeReader& in, std::string_view key, std::string& out);
  // The optional file path under `key`, which must be absolute (`what` names it in the error),
  // and where it was written.
  bool readAbsolutePath(NodeReader& in, std::string_view key, std::string_view what,
                        std::string& path, Location& at);
  // Calls each(item) for every entry of the optional list `key`.
  template <typename Each>
  void forEachListItem(NodeReader& in, std::string_view key, Each each) {
    const auto field = in.field(key);
    if (!field) return;
    if (!field->value.IsSequence()) {
      error(field->anchor(), std::string(key) + " must be a list, got " + describe(field->value));
      return;
    }
    for (const YAML::Node& item : field->value) each(item);
  }
  // A list of names under `key`, each checked by `valid` (errors name `expected`).
  template <typename Valid>
  void readNameList(NodeReader& in, std::string_view key, std::string_view expected, Valid valid,
                    std::vector<std::string>& out) {
    forEachListItem(in, key, [&](const YAML::Node& item) {
      if (!item.IsScalar() || !valid(item.Scalar())) {
        error(item, std::string(key) + ": each entry must be " + std::string(expected) + ", got " +
                        describe(item));
        return;
      }
      out.push_back(item.Scalar());
    });
  }

  // ---- the top level (loader.cpp) ----
  void parseRoot(const YAML::Node& root);
  void parseWorkers(NodeReader& root);

  // ---- loader_listeners.cpp ----
  void parseListeners(NodeReader& root);
  ListenerTls parseListenerTls(const YAML::Node& node);
  void parseTlsProtocols(const NodeReader::Field& field, net::TlsOptions& out);
  void parseLimits(NodeReader& root);
  void parseHttp(NodeReader& root);
  void readNetworks(NodeReader& in, std::string_view key, std::vector<net::IpNetwork>& out);

  // ---- loader_observability.cpp ----
  void parseAdmin(NodeReader& root);
  void parseReadiness(NodeReader& root);  // after upstreams and routes
  void parseAccessLog(NodeReader& root);
  void parseTracing(NodeReader& root);

  // ---- loader_redis.cpp ----
  void parseRedis(NodeReader& root);  // before plugins: their settings may read it
  void parseRedisAddress(NodeReader& in, RedisConfig& out);
  // The secret named by `<key>_file` or `<key>_env` (at most one), read now into `out`.
  void readSecret(NodeReader& in, std::string_view key, std::string& out);

  // ---- loader_upstreams.cpp ----
  void parseUpstreams(NodeReader& root);
  // Shared by upstreams and routes: a route's timeouts start as its upstream's and override them.
  void parseTimeouts(NodeReader& owner, UpstreamTimeouts& out);
  void parseHealthChecks(NodeReader& owner, UpstreamConfig& upstream);
  void parseCaps(NodeReader& owner, UpstreamCaps& out);
  void parseRetries(NodeReader& route, RouteConfig& out);
  void parseConcurrency(NodeReader& route, RouteConfig& out);
  void parseRetryBudget(NodeReader& owner, std::optional<RetryBudget>& out);
  void parseSuccessRate(const YAML::Node& node, SuccessRateCheck& out);
  void parseLoadBalancing(NodeReader& owner, LoadBalancing& out);
  void parseStatusRanges(const NodeReader::Field& field, std::vector<std::pair<int, int>>& out);
  void parseBackend(const YAML::Node& node, std::vector<BackendConfig>& out);
  UpstreamTls parseUpstreamTls(const YAML::Node& node);
  void warnUnusedUpstreams();

  // ---- loader_routes.cpp ----
  void parseRoutes(NodeReader& root);
  void resolveUpstream(NodeReader& route, RouteConfig& out);
  bool parseMatch(NodeReader& route, RouteMatch& out);
  void parseMethods(const NodeReader::Field& field, std::vector<std::string>& out);
  void checkOverlaps(const YAML::Node& node, const RouteConfig& route, RouteOverlaps& overlaps);
  void warnFallThroughs(const RouteOverlaps& overlaps);

  // ---- loader_plugins.cpp ----
  void parsePlugins(const NodeReader::Field& field, std::vector<PluginBinding>& out);
  std::optional<PluginBinding> parsePlugin(const YAML::Node& name, const YAML::Node& settings,
                                           const std::vector<PluginBinding>& earlier);
  void warnPluginOrder(const std::vector<PluginBinding>& plugins);

  Config config_;
  // Located in config_.source; made Diagnostics when the load ends.
  std::vector<ConfigError> errors_;
  std::vector<ConfigError> warnings_;
  std::map<std::string, std::size_t> upstreamIndex_;
  std::vector<bool> used_;  // parallel to config_.upstreams
  const LoadEnvironment& environment_;
  std::set<std::pair<std::string, std::string>> pluginWarnings_;  // (where, message) given
};

}  // namespace gw::config
