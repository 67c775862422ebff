// The sections that watch the gateway: the admin listener and what its /ready requires, the
// access log and tracing. What only
// observability can judge (field names, OTLP endpoints) is asked of the LoadEnvironment.

#include <algorithm>

#include "gateway/config/loader_sections.h"
#include "gateway/http/headers.h"

namespace gw::config {

void Loader::parseAdmin(NodeReader& root) {
  // Each admin connection holds a descriptor; more than this is a typo, not a need.
  constexpr std::size_t kMaxAdminConnections = 10'000;
  const auto admin = root.readMap("admin");
  if (!admin) return;
  NodeReader in = reader(*admin, "admin");
  in.allowKeys({"enabled", "address", "port", "max_connections", "header_timeout"});
  AdminConfig& out = config_.admin;
  out.where = locate(*admin);
  in.readBool("enabled", out.enabled);
  if (in.readString("address", out.address) && !canonicalIp(out.address)) {
    error(in.field("address")->anchor(),
          "admin address must be an IPv4 or IPv6 address, got " + quote(out.address));
  }
  in.readInt("port", out.port, 1, 65535);
  in.readInt("max_connections", out.max_connections, 1, kMaxAdminConnections);
  in.readDuration("header_timeout", out.header_timeout, kMinTimeout);
  if (!out.enabled) return;
  const auto adminIp = canonicalIp(out.address);
  for (const ListenerConfig& listener : config_.listeners) {
    const auto ip = canonicalIp(listener.address);
    // A wildcard address of the same family on either side takes the other's connections (the
    // second socket then fails to listen); wildcards of both families on one port would send
    // a client to the admin or to the proxy depending on how it reached the host.
    if (!ip || !adminIp || listener.port != out.port) continue;
    const bool anyWildcard = isWildcardIp(*ip) || isWildcardIp(*adminIp);
    const bool overlaps = *ip == *adminIp || (anyWildcard && isIpv6(*ip) == isIpv6(*adminIp)) ||
                          (isWildcardIp(*ip) && isWildcardIp(*adminIp));
    if (overlaps) {
      error(*admin, "the admin listener " + hostPort(*adminIp, out.port) +
                        " would share a port with the listener at " + toString(listener.where) +
                        "; admin traffic needs its own port");
    }
  }
}

void Loader::parseReadiness(NodeReader& root) {
  const auto readiness = root.readMap("readiness");
  if (!readiness) return;
  NodeReader in = reader(*readiness, "readiness");
  in.allowKeys({"required_upstreams", "require_redis"});
  ReadinessConfig& out = config_.readiness;
  out.where = locate(*readiness);
  if (in.readBool("require_redis", out.require_redis) && out.require_redis && !config_.redis) {
    error(in.field("require_redis")->anchor(),
          "readiness.require_redis needs a top-level 'redis:' block");
  }
  const auto field = in.field("required_upstreams");
  if (!field) return;
  auto require = [&](std::size_t upstream) {
    if (std::find(out.required_upstreams.begin(), out.required_upstreams.end(), upstream) ==
        out.required_upstreams.end()) {
      out.required_upstreams.push_back(upstream);
    }
  };
  if (field->value.IsScalar() && field->value.Scalar() == "all") {
    for (const RouteConfig& route : config_.routes) require(route.upstream);
    return;
  }
  if (!field->value.IsSequence()) {
    error(field->anchor(), "required_upstreams must be a list of upstream names or 'all', got " +
                               describe(field->value));
    return;
  }
  for (const YAML::Node& item : field->value) {
    const auto found = item.IsScalar() ? upstreamIndex_.find(item.Scalar()) : upstreamIndex_.end();
    if (found == upstreamIndex_.end()) {
      error(item, "required_upstreams: each entry must be the name of an upstream, got " +
                      describe(item));
      continue;
    }
    require(found->second);
  }
}

void Loader::parseAccessLog(NodeReader& root) {
  const auto log = root.readMap("access_log");
  if (!log) return;
  NodeReader in = reader(*log, "access_log");
  in.allowKeys({"enabled", "path", "fields", "log_headers", "mask_headers", "mask_query_params",
                "max_queued_bytes"});
  AccessLogConfig& out = config_.access_log;
  out.where = locate(*log);
  in.readBool("enabled", out.enabled);
  if (in.readString("path", out.path) && out.path != "stdout" && !out.path.starts_with('/')) {
    error(in.field("path")->anchor(),
          "access_log path must be 'stdout' or an absolute file path, got " + quote(out.path));
  }
  in.readSize("max_queued_bytes", out.max_queued_bytes, 64 * 1024);
  auto isField = [&](const std::string& name) { return environment_.isAccessLogField(name); };
  auto isHeaderName = [](const std::string& name) { return http::isToken(name); };
  auto isParamName = [](const std::string& name) {
    return !name.empty() && name.find_first_of("&=;# ") == std::string::npos;
  };
  readNameList(in, "fields", "a field name such as status or request_id", isField, out.fields);
  readNameList(in, "log_headers", "a header name", isHeaderName, out.log_headers);
  readNameList(in, "mask_headers", "a header name", isHeaderName, out.mask_headers);
  if (in.has("mask_query_params")) {
    readNameList(in, "mask_query_params", "a query parameter name", isParamName,
                 out.mask_query_params.emplace());
  }
}

void Loader::parseTracing(NodeReader& root) {
  const auto tracing = root.readMap("tracing");
  if (!tracing) return;
  NodeReader in = reader(*tracing, "tracing");
  in.allowKeys({"enabled", "otlp"});
  in.readBool("enabled", config_.tracing.enabled);
  const auto otlp = in.readMap("otlp");
  if (!otlp) return;
  NodeReader exporter = reader(*otlp, "tracing.otlp");
  exporter.allowKeys(
      {"endpoint", "service_name", "batch_size", "flush_interval", "max_queued_spans"});
  OtlpConfig& out = config_.tracing.otlp.emplace();
  out.where = locate(*otlp);
  if (exporter.require("endpoint") && exporter.readString("endpoint", out.endpoint)) {
    if (auto problem = environment_.otlpEndpointProblem(out.endpoint)) {
      error(exporter.field("endpoint")->anchor(), "tracing.otlp endpoint: " + std::move(*problem));
    }
  }
  exporter.readString("service_name", out.service_name);
  exporter.readInt("batch_size", out.batch_size, 1, 100'000);
  exporter.readDuration("flush_interval", out.flush_interval, kMinTimeout);
  exporter.readInt("max_queued_spans", out.max_queued_spans, 1, 10'000'000);
  if (!config_.tracing.enabled) {
    error(*otlp, "tracing.otlp needs tracing enabled (spans come from the trace context)");
  }
}

}  // namespace gw::config
