// The upstreams: their backends, connection pool, timeouts and health checks.

#include "gateway/config/loader_sections.h"
#include "gateway/config/yaml_identity.h"

namespace gw::config {
namespace {

constexpr uint32_t kMaxWeight = 1000;
constexpr uint32_t kMaxPoolIdle = 100'000;
constexpr uint32_t kMaxThreshold = 1000;

}  // namespace

std::optional<std::string> splitHostPort(std::string_view text, std::string_view what,
                                         std::string& host, uint16_t& port) {
  const std::string name(what);
  std::string_view hostText;
  std::string_view portText;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") {
      return name + " address must look like [::1]:9000";
    }
    hostText = text.substr(1, close - 1);
    portText = text.substr(close + 2);
    if (!canonicalIp(std::string(hostText))) return "invalid IPv6 address " + quote(hostText);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return name + " address must be host:port";
    hostText = text.substr(0, colon);
    portText = text.substr(colon + 1);
    if (hostText.find(':') != std::string_view::npos) {
      return "IPv6 " + name + " addresses must be bracketed, e.g. \"[::1]:9000\"";
    }
    if (!isValidHostName(hostText)) return "invalid " + name + " host " + quote(hostText);
  }
  const auto portNumber = parseInt<uint16_t>(portText, 1, 65535);
  if (!portNumber) {
    return name + " port must be an integer from 1 to 65535, got " + quote(portText);
  }
  host = std::string(hostText);
  port = *portNumber;
  return std::nullopt;
}

void Loader::parseUpstreams(NodeReader& root) {
  const auto list = root.requireList("upstreams");
  if (!list) return;
  for (const YAML::Node& node : *list) {
    if (!expectMap(node, "an upstream")) continue;
    NodeReader in = reader(node, "upstream");
    in.allowKeys({"name", "backends", "pool", "timeouts", "health_checks", "tls"});
    UpstreamConfig upstream;
    upstream.where = locate(node);
    upstream.identity = identityOf(node);
    if (in.require("name") && readName(in, "name", upstream.name)) {
      const auto [first, inserted] =
          upstreamIndex_.emplace(upstream.name, config_.upstreams.size());
      if (!inserted) {
        error(in.field("name")->anchor(),
              "duplicate upstream name " + quote(upstream.name) + " (first at " +
                  toString(config_.upstreams[first->second].where) + ")");
      }
    }
    if (const auto backends = in.requireList("backends")) {
      for (const YAML::Node& backend : *backends) parseBackend(backend, upstream.backends);
    }
    if (const auto pool = in.readMap("pool")) {
      NodeReader poolIn = reader(*pool, "pool");
      poolIn.allowKeys({"max_idle", "idle_timeout"});
      poolIn.readInt("max_idle", upstream.pool.max_idle_per_backend, 0, kMaxPoolIdle);
      poolIn.readDuration("idle_timeout", upstream.pool.idle_timeout, kMinTimeout);
    }
    parseTimeouts(in, upstream.timeouts);
    parseHealthChecks(in, upstream);
    if (const auto tls = in.readMap("tls")) {
      upstream.tls = parseUpstreamTls(*tls);
    } else if (const auto field = in.field("tls"); field && field->value.IsNull()) {
      error(field->anchor(), "'tls' must be a mapping ({} for the defaults), got nothing");
    }
    config_.upstreams.push_back(std::move(upstream));
    used_.push_back(false);
  }
}

// tls: {verify, ca_file, server_name, certificate, key, min_version}; the files are read when
// the snapshot is built.
UpstreamTls Loader::parseUpstreamTls(const YAML::Node& node) {
  NodeReader in = reader(node, "tls");
  in.allowKeys({"verify", "ca_file", "server_name", "certificate", "key", "min_version"});
  UpstreamTls out;
  net::TlsClientOptions& options = out.options;
  if (in.readBool("verify", options.verify) && !options.verify) {
    warn(locate(in.field("verify")->anchor()),
         "tls verify is false: the backends' certificates are not checked, so anyone on the "
         "path to them can pose as them");
  }
  readAbsolutePath(in, "ca_file", "ca_file", options.caFile, out.caFileWhere);
  if (in.readString("server_name", options.serverName) && !isValidHostName(options.serverName) &&
      !canonicalIp(options.serverName)) {
    error(in.field("server_name")->anchor(),
          "server_name must be a DNS name or an IP address, got " + quote(options.serverName));
  }
  readAbsolutePath(in, "certificate", "certificate", options.certificatePath, out.certificateWhere);
  readAbsolutePath(in, "key", "key", options.keyPath, out.keyWhere);
  if (in.has("certificate") != in.has("key")) {
    const bool certificate = in.has("certificate");
    error(in.field(certificate ? "certificate" : "key")->anchor(),
          std::string("a client certificate needs both 'certificate' and 'key': '") +
              (certificate ? "key" : "certificate") + "' is missing");
  }
  in.readEnum("min_version", options.minVersion,
              {{"TLSv1.2", net::TlsVersion::Tls12}, {"TLSv1.3", net::TlsVersion::Tls13}});
  return out;
}

void Loader::parseTimeouts(NodeReader& owner, UpstreamTimeouts& out) {
  const auto timeouts = owner.readMap("timeouts");
  if (!timeouts) return;
  NodeReader in = reader(*timeouts, "timeouts");
  in.allowKeys({"connect", "read", "send"});
  in.readDuration("connect", out.connect, kMinTimeout);
  in.readDuration("read", out.read, kMinTimeout);
  in.readDuration("send", out.send, kMinTimeout);
}

void Loader::parseHealthChecks(NodeReader& owner, UpstreamConfig& upstream) {
  const auto checks = owner.readMap("health_checks");
  if (!checks) return;
  NodeReader in = reader(*checks, "health_checks");
  in.allowKeys({"active", "passive"});
  if (const auto active = in.readMap("active")) {
    NodeReader probe = reader(*active, "active health check");
    probe.allowKeys({"path", "host", "interval", "timeout", "healthy_threshold",
                     "unhealthy_threshold", "expected_statuses"});
    ActiveHealthCheck& out = upstream.active_check.emplace();
    out.where = locate(*active);
    // Both go into the probe's request line and Host field verbatim: nothing that could end
    // a line or a field may pass.
    if (probe.readString("path", out.path) &&
        (!out.path.starts_with('/') || out.path.find_first_of(" \t\r\n") != std::string::npos)) {
      error(probe.field("path")->anchor(),
            "health check path must start with '/' and contain no spaces or line breaks, got " +
                quote(out.path));
    }
    if (probe.readString("host", out.host) &&
        (out.host.empty() || out.host.find_first_of(" \t\r\n/") != std::string::npos)) {
      error(probe.field("host")->anchor(),
            "health check host must be a host name or host:port, got " + quote(out.host));
    }
    probe.readDuration("interval", out.interval, kMinTimeout);
    probe.readDuration("timeout", out.timeout, kMinTimeout);
    probe.readInt("healthy_threshold", out.healthy_threshold, 1, kMaxThreshold);
    probe.readInt("unhealthy_threshold", out.unhealthy_threshold, 1, kMaxThreshold);
    if (const auto statuses = probe.field("expected_statuses")) {
      parseStatusRanges(*statuses, out.expected_statuses);
    }
  }
  if (const auto passive = in.readMap("passive")) {
    NodeReader traffic = reader(*passive, "passive health check");
    traffic.allowKeys({"consecutive_failures", "base_ejection", "max_ejection", "count_5xx",
                       "count_read_timeouts", "max_ejection_percent"});
    PassiveHealthCheck& out = upstream.passive_check;
    traffic.readInt("consecutive_failures", out.consecutive_failures, 0, kMaxThreshold);
    traffic.readDuration("base_ejection", out.base_ejection, kMinTimeout);
    traffic.readDuration("max_ejection", out.max_ejection, kMinTimeout);
    traffic.readBool("count_5xx", out.count_5xx);
    traffic.readBool("count_read_timeouts", out.count_read_timeouts);
    traffic.readInt("max_ejection_percent", out.max_ejection_percent, 0, 100);
    if (out.max_ejection < out.base_ejection) {
      error(*passive, "max_ejection must be at least base_ejection");
    }
  }
}

// expected_statuses: [200, 204, "200-299"]: codes or inclusive ranges, each within 100..599.
void Loader::parseStatusRanges(const NodeReader::Field& field,
                               std::vector<std::pair<int, int>>& out) {
  if (!field.value.IsSequence() || field.value.size() == 0) {
    error(field.anchor(),
          "expected_statuses must be a non-empty list of status codes or ranges such as "
          "200-399, got " +
              describe(field.value));
    return;
  }
  out.clear();
  for (const YAML::Node& item : field.value) {
    const std::string text = item.IsScalar() ? item.Scalar() : std::string();
    const std::size_t dash = text.find('-');
    const auto low = parseInt<int>(std::string_view(text).substr(0, dash), 100, 599);
    const auto high = dash == std::string::npos
                          ? low
                          : parseInt<int>(std::string_view(text).substr(dash + 1), 100, 599);
    if (!low || !high || *high < *low) {
      error(item,
            "expected_statuses: each entry must be a status code (100-599) or a range such as "
            "200-399, got " +
                describe(item));
      continue;
    }
    out.emplace_back(*low, *high);
  }
}

// A backend is "host:port" or {address: "host:port", weight: N}.
void Loader::parseBackend(const YAML::Node& node, std::vector<BackendConfig>& out) {
  BackendConfig backend;
  backend.where = locate(node);
  NodeReader::Field address{node, node};
  if (node.IsMap()) {
    NodeReader in = reader(node, "backend");
    in.allowKeys({"address", "weight"});
    in.readInt("weight", backend.weight, 1, kMaxWeight);
    if (!in.require("address")) return;
    address = *in.field("address");
  }
  if (!address.value.IsScalar()) {
    std::string message =
        "backend must be host:port or a mapping with 'address' and 'weight', got " +
        describe(address.value);
    if (address.value.IsSequence()) message += " (quote IPv6 addresses: \"[::1]:9000\")";
    error(address.anchor(), std::move(message));
    return;
  }
  if (const auto problem =
          splitHostPort(address.value.Scalar(), "backend", backend.host, backend.port)) {
    error(address.anchor(), *problem);
    return;
  }
  out.push_back(std::move(backend));
}

void Loader::warnUnusedUpstreams() {
  for (std::size_t i = 0; i < config_.upstreams.size(); ++i) {
    if (used_[i] || config_.upstreams[i].name.empty()) continue;
    const UpstreamConfig& upstream = config_.upstreams[i];
    warn(upstream.where, "upstream " + quote(upstream.name) + " is not used by any route");
  }
}

}  // namespace gw::config
