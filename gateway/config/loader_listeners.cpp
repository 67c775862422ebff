// The sections that shape what clients meet: workers' listeners, limits, and the http rules.

#include <arpa/inet.h>

#include "gateway/config/loader_sections.h"

namespace gw::config {
namespace {

constexpr std::size_t kMaxHeaderCount = 65'535;
constexpr std::size_t kMaxConnectionsPerWorker = 1'000'000;

}  // namespace

std::optional<std::string> canonicalIp(const std::string& text) {
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN];
  for (int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, text.c_str(), bytes) == 1 &&
        inet_ntop(family, bytes, out, sizeof(out)) != nullptr) {
      return std::string(out);
    }
  }
  return std::nullopt;
}

bool isWildcardIp(std::string_view canonical) {
  return canonical == "0.0.0.0" || canonical == "::";
}

bool isIpv6(std::string_view canonical) { return canonical.find(':') != std::string_view::npos; }

void Loader::parseListeners(NodeReader& root) {
  const auto list = root.requireList("listeners");
  if (!list) return;
  std::map<std::string, Location> seen;  // canonical address:port -> first listener
  // (IPv6, port) -> the first listener on a wildcard address / on a specific one there.
  std::map<std::pair<bool, uint16_t>, Location> wildcards, specifics;
  for (const YAML::Node& node : *list) {
    if (!expectMap(node, "a listener")) continue;
    NodeReader in = reader(node, "listener");
    in.allowKeys({"address", "port", "tls"});
    ListenerConfig listener;
    listener.where = locate(node);
    std::optional<std::string> ip = canonicalIp(listener.address);
    if (in.readString("address", listener.address)) {
      ip = canonicalIp(listener.address);
      if (!ip) {
        in.error(
            in.field("address")->anchor(),
            "listener address must be an IPv4 or IPv6 address, got " + quote(listener.address));
      }
    }
    const bool hasPort = in.require("port") && in.readInt("port", listener.port, 1, 65535);
    if (const auto tls = in.readMap("tls")) {
      listener.tls = parseListenerTls(*tls);
    } else if (const auto field = in.field("tls"); field && field->value.IsNull()) {
      error(field->anchor(), "'tls' must be a mapping with at least 'certificates', got nothing");
    }
    if (ip && hasPort) {
      const auto [first, inserted] = seen.emplace(hostPort(*ip, listener.port), listener.where);
      const std::pair familyPort{isIpv6(*ip), listener.port};
      // The wildcard would take the other's connections, and gatewayd refuses to listen where
      // a socket of its own (or of another process) is listening already.
      const auto& across = isWildcardIp(*ip) ? specifics : wildcards;
      if (!inserted) {
        error(node, "duplicate listener " + hostPort(*ip, listener.port) + " (first at " +
                        toString(first->second) + ")");
      } else if (const auto other = across.find(familyPort); other != across.end()) {
        error(node, "listener " + hostPort(*ip, listener.port) + " overlaps the listener at " +
                        toString(other->second) +
                        ": a wildcard address (0.0.0.0, ::) takes every connection to its "
                        "port; keep one of the two");
      }
      (isWildcardIp(*ip) ? wildcards : specifics).emplace(familyPort, listener.where);
    }
    config_.listeners.push_back(std::move(listener));
  }
}

ListenerTls Loader::parseListenerTls(const YAML::Node& node) {
  NodeReader in = reader(node, "tls");
  in.allowKeys({"certificates", "protocols", "ciphers", "ciphersuites", "handshake_timeout",
                "session_tickets"});
  ListenerTls out;
  net::TlsOptions& options = out.options;
  if (const auto list = in.requireList("certificates")) {
    for (const YAML::Node& item : *list) {
      if (!expectMap(item, "a certificate")) continue;
      NodeReader entry = reader(item, "certificate");
      entry.allowKeys({"chain", "key"});
      net::TlsOptions::Certificate certificate;
      ListenerTls::CertificateLocations where;
      const auto readPath = [&](std::string_view key, std::string& path, Location& at) {
        if (entry.require(key)) {
          readAbsolutePath(entry, key, "certificate " + std::string(key), path, at);
        }
      };
      readPath("chain", certificate.chainPath, where.chain);
      readPath("key", certificate.keyPath, where.key);
      options.certificates.push_back(std::move(certificate));
      out.certificateWhere.push_back(std::move(where));
    }
  }
  if (const auto field = in.field("protocols")) parseTlsProtocols(*field, options);
  const auto readCipherList = [&](std::string_view key, std::string& list, Location& at) {
    if (!in.readString(key, list)) return;
    at = locate(in.field(key)->anchor());
    if (list.empty()) error(in.field(key)->anchor(), quote(key) + " must not be empty");
  };
  readCipherList("ciphers", options.ciphers, out.ciphersWhere);
  readCipherList("ciphersuites", options.ciphersuites, out.ciphersuitesWhere);
  in.readDuration("handshake_timeout", options.handshakeTimeout, kMinTimeout);
  in.readBool("session_tickets", options.sessionTickets);
  return out;
}

void Loader::parseTlsProtocols(const NodeReader::Field& field, net::TlsOptions& out) {
  if (!field.value.IsSequence()) {
    error(field.anchor(),
          "'protocols' must be a list of TLSv1.2, TLSv1.3, got " + describe(field.value));
    return;
  }
  if (field.value.size() == 0) {
    error(field.anchor(), "'protocols' must list at least one of TLSv1.2, TLSv1.3");
    return;
  }
  bool tls12 = false;
  bool tls13 = false;
  for (const YAML::Node& item : field.value) {
    if (item.IsScalar() && item.Scalar() == "TLSv1.2") {
      tls12 = true;
    } else if (item.IsScalar() && item.Scalar() == "TLSv1.3") {
      tls13 = true;
    } else {
      error(item,
            "protocols: each entry must be TLSv1.2 or TLSv1.3 (older versions are not "
            "supported), got " +
                describe(item));
    }
  }
  if (!tls12 && !tls13) return;
  out.minVersion = tls12 ? net::TlsVersion::Tls12 : net::TlsVersion::Tls13;
  out.maxVersion = tls13 ? net::TlsVersion::Tls13 : net::TlsVersion::Tls12;
}

void Loader::parseLimits(NodeReader& root) {
  const auto limits = root.readMap("limits");
  if (!limits) return;
  NodeReader in = reader(*limits, "limits");
  in.allowKeys({"request_line_bytes", "header_bytes", "header_count", "body_bytes",
                "max_connections_per_worker", "upstream_header_bytes", "upstream_header_count",
                "client_header_timeout", "client_body_timeout", "idle_timeout"});
  Limits& out = config_.limits;
  in.readSize("request_line_bytes", out.request_line_bytes, 1);
  in.readSize("header_bytes", out.header_bytes, 1);
  in.readInt("header_count", out.header_count, 1, kMaxHeaderCount);
  in.readSize("body_bytes", out.body_bytes, 0);
  in.readInt("max_connections_per_worker", out.max_connections_per_worker, 1,
             kMaxConnectionsPerWorker);
  in.readSize("upstream_header_bytes", out.upstream_header_bytes, 1);
  in.readInt("upstream_header_count", out.upstream_header_count, 1, kMaxHeaderCount);
  in.readDuration("client_header_timeout", out.client_header_timeout, kMinTimeout);
  in.readDuration("client_body_timeout", out.client_body_timeout, kMinTimeout);
  in.readDuration("idle_timeout", out.idle_timeout, kMinTimeout);
}

void Loader::parseHttp(NodeReader& root) {
  const auto section = root.readMap("http");
  if (!section) return;
  NodeReader in = reader(*section, "http");
  in.allowKeys({"escaped_slashes", "path_parameters", "underscores_in_headers", "trusted_proxies"});
  http::PathRules& out = config_.path_rules;
  in.readEnum("escaped_slashes", out.escaped_slashes,
              {{"reject", http::EscapedSlashes::Reject}, {"keep", http::EscapedSlashes::Keep}});
  in.readEnum("path_parameters", out.path_parameters,
              {{"reject", http::PathParameters::Reject},
               {"strip", http::PathParameters::Strip},
               {"keep", http::PathParameters::Keep}});
  in.readEnum("underscores_in_headers", config_.underscores_in_headers,
              {{"drop", UnderscoreHeaders::Drop},
               {"reject", UnderscoreHeaders::Reject},
               {"allow", UnderscoreHeaders::Allow}});
  readNetworks(in, "trusted_proxies", config_.trusted_proxies);
}

void Loader::readNetworks(NodeReader& in, std::string_view key, std::vector<net::IpNetwork>& out) {
  forEachListItem(in, key, [&](const YAML::Node& item) {
    std::string why = "expected an address or CIDR block, got " + describe(item);
    const auto network = item.IsScalar() ? net::parseIpNetwork(item.Scalar(), why) : std::nullopt;
    if (network) {
      out.push_back(*network);
    } else {
      error(item, std::string(key) + ": " + why);
    }
  });
}

}  // namespace gw::config
