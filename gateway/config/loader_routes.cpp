// The routes: what each matches, where it goes, and the checks across routes (names, overlaps,
// requests that fall through to another route).

#include <algorithm>
#include <cctype>

#include "gateway/config/loader_sections.h"
#include "gateway/http/path.h"

namespace gw::config {
namespace {

constexpr uint32_t kMaxAttempts = 10;
constexpr uint32_t kMaxConcurrency = 10'000'000;
constexpr uint32_t kMaxQueue = 100'000;

constexpr std::string_view kHttpMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                             "CONNECT", "OPTIONS", "TRACE", "PATCH"};

// Requests are routed by their normalised path (http::normalisePath), so a match path that is not
// in normal form would never match, or would match something other than it reads.
std::optional<std::string> checkMatchPath(std::string_view path, http::PathRules rules) {
  if (!path.starts_with('/')) return "must start with '/'";
  std::string normal;
  switch (http::normalisePath(path, normal, rules)) {
    case http::PathError::None:
      break;
    case http::PathError::EscapesRoot:
      return "must not climb above '/' with '..'";
    case http::PathError::Invalid:
      return "is not a valid path (spaces, control characters, '?', '#', '\\', non-ASCII bytes "
             "and malformed %-escapes are refused)";
    case http::PathError::EscapedSlash:
      return "must not contain %2F or %5C: requests holding them are refused "
             "(http.escaped_slashes: reject)";
    case http::PathError::PathParameter:
      return "must not contain ';' or %3B: requests holding them are refused or stripped "
             "(http.path_parameters)";
  }
  if (normal != path) {
    return "must be written in normal form, " + quote(normal) +
           " (request paths are normalised before matching)";
  }
  return std::nullopt;
}

}  // namespace

void Loader::parseRoutes(NodeReader& root) {
  const auto list = root.requireList("routes");
  if (!list) return;
  std::map<std::string, Location> names;
  RouteOverlaps overlaps(kHttpMethods);  // of the routes whose match parsed cleanly
  std::size_t index = 0;
  for (const YAML::Node& node : *list) {
    ++index;
    if (!expectMap(node, "a route")) continue;
    NodeReader in = reader(node, "route");
    in.allowKeys({"name", "match", "upstream", "strip_prefix", "preserve_host", "limits",
                  "timeouts", "retries", "concurrency", "plugins"});
    RouteConfig route;
    route.where = locate(node);
    route.name = "route-" + std::to_string(index);
    readName(in, "name", route.name);
    if (const auto [first, inserted] = names.emplace(route.name, route.where); !inserted) {
      error(node, "duplicate route name " + quote(route.name) + " (first at " +
                      toString(first->second) + ")");
    }
    const bool matchOk = parseMatch(in, route.match);
    resolveUpstream(in, route);
    route.body_bytes = config_.limits.body_bytes;
    if (const auto limits = in.readMap("limits")) {
      NodeReader limitsIn = reader(*limits, "route limits");
      limitsIn.allowKeys({"body_bytes"});
      limitsIn.readSize("body_bytes", route.body_bytes, 0);
    }
    parseTimeouts(in, route.timeouts);
    parseRetries(in, route);
    parseConcurrency(in, route);
    if (in.readString("strip_prefix", route.strip_prefix) && matchOk &&
        !route.match.path.starts_with(route.strip_prefix)) {
      error(in.field("strip_prefix")->anchor(), "strip_prefix " + quote(route.strip_prefix) +
                                                    " is not a prefix of the match path " +
                                                    quote(route.match.path));
    }
    in.readBool("preserve_host", route.preserve_host);
    route.plugins = config_.plugins;
    if (const auto plugins = in.field("plugins")) parsePlugins(*plugins, route.plugins);
    warnPluginOrder(route.plugins);
    if (matchOk) checkOverlaps(node, route, overlaps);
    config_.routes.push_back(std::move(route));
  }
  warnFallThroughs(overlaps);
}

// retries: {attempts, on, methods, per_try_timeout, timeout, backoff, max_backoff}
void Loader::parseRetries(NodeReader& route, RouteConfig& out) {
  const auto retries = route.readMap("retries");
  if (!retries) return;
  NodeReader in = reader(*retries, "retries");
  in.allowKeys(
      {"attempts", "on", "methods", "per_try_timeout", "timeout", "backoff", "max_backoff"});
  RetryPolicy& policy = out.retries.emplace();
  in.readInt("attempts", policy.attempts, 1, kMaxAttempts);
  if (const auto on = in.field("on")) {
    if (!on->value.IsSequence()) {
      error(on->anchor(), "'on' must be a list of reset, per_try_timeout and status codes, got " +
                              describe(on->value));
    } else {
      policy.on_reset = false;
      policy.on_per_try_timeout = false;
      for (const YAML::Node& item : on->value) {
        const std::string text = item.IsScalar() ? item.Scalar() : std::string();
        if (text == "reset") {
          policy.on_reset = true;
        } else if (text == "per_try_timeout") {
          policy.on_per_try_timeout = true;
        } else if (const auto status = parseInt<int>(text, 500, 599)) {
          policy.statuses.push_back(*status);
        } else {
          error(item,
                "retries 'on': each entry must be reset, per_try_timeout or a status "
                "code from 500 to 599, got " +
                    describe(item));
        }
      }
    }
  }
  std::string methods;
  if (in.readString("methods", methods)) {
    if (methods == "all") {
      policy.non_idempotent = true;
    } else if (methods != "idempotent") {
      error(in.field("methods")->anchor(),
            "retries 'methods' must be idempotent or all, got " + quote(methods));
    }
  }
  in.readDuration("per_try_timeout", policy.per_try_timeout, kMinTimeout);
  in.readDuration("timeout", policy.timeout, kMinTimeout);
  in.readDuration("backoff", policy.backoff, kMinTimeout);
  policy.max_backoff = policy.backoff * 10;
  in.readDuration("max_backoff", policy.max_backoff, policy.backoff);
}

// concurrency: {max_requests, queue, queue_timeout}
void Loader::parseConcurrency(NodeReader& route, RouteConfig& out) {
  const auto concurrency = route.readMap("concurrency");
  if (!concurrency) return;
  NodeReader in = reader(*concurrency, "concurrency");
  in.allowKeys({"max_requests", "queue", "queue_timeout"});
  RouteConcurrency& limit = out.concurrency.emplace();
  if (in.require("max_requests"))
    in.readInt("max_requests", limit.max_requests, 1, kMaxConcurrency);
  in.readInt("queue", limit.queue, 0, kMaxQueue);
  in.readDuration("queue_timeout", limit.queue_timeout, kMinTimeout);
}

// Sets the upstream index and the timeouts the route inherits from it.
void Loader::resolveUpstream(NodeReader& route, RouteConfig& out) {
  std::string name;
  if (!route.require("upstream") || !route.readString("upstream", name)) return;
  const auto found = upstreamIndex_.find(name);
  if (found == upstreamIndex_.end()) {
    error(route.field("upstream")->anchor(), "unknown upstream " + quote(name));
    return;
  }
  out.upstream = found->second;
  out.timeouts = config_.upstreams[found->second].timeouts;
  used_[found->second] = true;
}

// Returns whether the match is fully valid (a partly parsed one would be reported as overlapping
// routes it does not really overlap).
bool Loader::parseMatch(NodeReader& route, RouteMatch& out) {
  const auto field = route.field("match");
  if (!field || field->value.IsNull()) return true;  // default: prefix "/"
  const auto match = route.readMap("match");
  if (!match) return false;
  const std::size_t errorsBefore = errors_.size();
  NodeReader in = reader(*match, "match");
  in.allowKeys({"prefix", "exact", "methods", "host"});
  const bool hasPrefix = in.has("prefix");
  const bool hasExact = in.has("exact");
  if (hasPrefix && hasExact) {
    error(*match, "match must have only one of 'prefix' and 'exact'");
  } else if (hasPrefix || hasExact) {
    out.kind = hasExact ? PathMatch::Exact : PathMatch::Prefix;
    const std::string_view key = hasExact ? "exact" : "prefix";
    if (in.readString(key, out.path)) {
      if (const auto problem = checkMatchPath(out.path, config_.path_rules)) {
        error(in.field(key)->anchor(), quote(key) + " " + *problem);
      }
    }
  }
  if (const auto methods = in.field("methods")) parseMethods(*methods, out.methods);
  std::string host;
  if (in.readString("host", host)) {
    std::transform(host.begin(), host.end(), host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (host.ends_with('.')) host.pop_back();  // the fully qualified spelling, "example.com."
    const std::string_view name = host.starts_with("*.") ? std::string_view(host).substr(2) : host;
    if (host.find(':') != std::string::npos) {
      error(in.field("host")->anchor(), "'host' must not include a port");
    } else if (!isValidHostName(name)) {
      error(in.field("host")->anchor(),
            "'host' must be a host name such as api.example.com or *.example.com, got " +
                quote(host));
    }
    out.host = std::move(host);
  }
  return errors_.size() == errorsBefore;
}

void Loader::parseMethods(const NodeReader::Field& field, std::vector<std::string>& out) {
  if (!field.value.IsSequence() || field.value.size() == 0) {
    const std::string message = "'methods' must be a non-empty list (omit it to match any method)";
    error(field.anchor(), message + ", got " + describe(field.value));
    return;
  }
  for (const YAML::Node& entry : field.value) {
    if (!entry.IsScalar()) {
      error(entry, "HTTP method must be a name such as GET, got " + describe(entry));
      continue;
    }
    const std::string& method = entry.Scalar();
    if (std::find(std::begin(kHttpMethods), std::end(kHttpMethods), method) ==
        std::end(kHttpMethods)) {
      error(entry, "unknown HTTP method " + quote(method) +
                       " (one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH; "
                       "upper-case)");
    } else if (std::find(out.begin(), out.end(), method) != out.end()) {
      warn(locate(entry), "method " + quote(method) + " is listed twice");
    } else {
      out.push_back(method);
    }
  }
}

// First match wins, so a route that an earlier route fully covers can never be chosen.
void Loader::checkOverlaps(const YAML::Node& node, const RouteConfig& route,
                           RouteOverlaps& overlaps) {
  const auto shadow = overlaps.shadowOf(route.match);
  if (!shadow) {
    overlaps.add(config_.routes.size(), route.match);
    return;
  }
  const RouteConfig& earlier = config_.routes[shadow->earlier];
  const std::string other = quote(earlier.name) + " (" + toString(earlier.where) + ")";
  error(node, shadow->duplicate
                  ? "route " + quote(route.name) + " duplicates route " + other
                  : "route " + quote(route.name) + " is unreachable: shadowed by route " + other);
}

// A guard on a prefix (ip_filter, auth) is easily undone by a catch-all that takes the methods
// the prefix's routes leave out: say so rather than let it pass silently, unless the requests
// that fall through reach the same upstream through the same plugins.
void Loader::warnFallThroughs(const RouteOverlaps& overlaps) {
  const auto samePlugins = [](const RouteConfig& a, const RouteConfig& b) {
    return std::equal(
        a.plugins.begin(), a.plugins.end(), b.plugins.begin(), b.plugins.end(),
        [](const PluginBinding& x, const PluginBinding& y) { return x.settings == y.settings; });
  };
  for (const RouteOverlaps::FallThrough& f : overlaps.fallThroughs(config_.routes)) {
    const RouteConfig& route = config_.routes[f.route];
    const RouteConfig& destination = config_.routes[f.destination];
    if (route.upstream == destination.upstream && samePlugins(route, destination)) continue;
    const std::string where =
        (route.match.host ? "host " + quote(*route.match.host) + " " : std::string()) + "prefix " +
        quote(route.match.path);
    warn(route.where, "route " + quote(route.name) + " takes only " +
                          overlaps.methodNames(f.methods) + " on " + where +
                          "; requests there with other methods fall through to route " +
                          quote(destination.name) + " (" + toString(destination.where) +
                          ") and its plugins instead of a 405");
  }
}

}  // namespace gw::config
