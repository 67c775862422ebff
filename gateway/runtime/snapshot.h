#pragma once
// Everything a worker needs from one loaded configuration, built and validated on the main
// thread, then shared read-only by every worker. A reload builds a new snapshot beside the old.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/net/socket.h"
#include "gateway/net/tls_client.h"
#include "gateway/net/tls_context.h"
#include "gateway/net/tls_ticket_keys.h"
#include "gateway/observability/access_log.h"
#include "gateway/observability/metrics.h"
#include "gateway/plugin/registry.h"
#include "gateway/proxy/route_gate.h"
#include "gateway/proxy/router.h"
#include "gateway/upstream/load_board.h"

namespace gw::runtime {

struct Snapshot {
  config::Config config;
  // The plugin types the configuration was loaded with: their counters, log fields and admin
  // endpoints.
  const plugin::Registry* plugins = nullptr;
  std::unique_ptr<proxy::Router> router;
  // Per upstream, per backend (same order as in config), resolved once at load.
  std::vector<std::vector<net::SocketAddress>> backendAddresses;
  // Per upstream (same order as in config): the TLS client side of each with `tls:` (its CA
  // bundle and client certificate read when this snapshot was built), null for plain HTTP.
  std::vector<std::shared_ptr<const net::TlsClientContext>> upstreamTls;
  // Per upstream (same order as in config): what the process has in flight toward it, against its
  // caps and retry budget. Taken over from the live snapshot for an upstream written the same,
  // as each worker keeps its cluster.
  std::vector<std::shared_ptr<upstream::LoadBoard>> upstreamLoads;
  // Per route (same order as in config): the process-wide gate of a route with `concurrency:`,
  // null for the others. Taken over from the live snapshot for a route of the same name and
  // limit, so requests in flight keep their slots across a reload.
  std::vector<std::shared_ptr<proxy::RouteGate>> routeGates;
  std::vector<net::SocketAddress> listenerAddresses;
  // Parallel to listenerAddresses: the TLS server side of each listener with `tls:` (its
  // certificates read when this snapshot was built), null for a plain one.
  std::vector<std::shared_ptr<const net::TlsContext>> listenerTls;
  net::SocketAddress adminAddress;  // when config.admin.enabled
  // Metric label values: the routes (plus kUnroutedName for requests no route took) and the
  // upstreams with their backends.
  std::shared_ptr<const observability::MetricsLayout> metricsLayout;
  static constexpr std::string_view kUnroutedName = "(none)";
  // What each access log line holds; null when the access log is off.
  std::shared_ptr<const observability::AccessLogFormat> accessLogFormat;
  std::size_t unroutedIndex() const { return config.routes.size(); }
  // What answers no route took (a request refused before routing, or one no route matches) are
  // handled as: the global `plugins:` list, whose response phase runs on them (security headers
  // on a 400 too). Never forwarded anywhere.
  config::RouteConfig unrouted;
  uint64_t generation = 1;
  // Seal the TLS listeners' session tickets: made once per process, handed from snapshot to
  // snapshot.
  std::shared_ptr<net::TicketKeys> ticketKeys;
};

// Compiles routes, resolves addresses, reads the TLS listeners' certificates and keys and the
// TLS upstreams' CA bundles and client certificates. Errors are FILE:LINE:COL diagnostics.
// `plugins` is the registry `config` was loaded with; it must outlive the snapshot. `live`: the
// snapshot a reload replaces (null at start), whose generation this one follows and whose
// session ticket keys it keeps, so clients resume across the reload.
std::shared_ptr<const Snapshot> buildSnapshot(config::Config config,
                                              const plugin::Registry& plugins,
                                              std::vector<config::Diagnostic>& errors,
                                              const Snapshot* live = nullptr);

}  // namespace gw::runtime
