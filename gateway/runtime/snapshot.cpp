#include "gateway/runtime/snapshot.h"

#include <algorithm>
#include <utility>

namespace gw::runtime {

namespace {

// Sorts the errors from `first` on by their place in the file.
void inFileOrder(std::vector<config::Diagnostic>& errors, std::size_t first) {
  std::stable_sort(errors.begin() + static_cast<std::ptrdiff_t>(first), errors.end(),
                   [](const config::Diagnostic& a, const config::Diagnostic& b) {
                     return std::pair(a.where.line, a.where.column) <
                            std::pair(b.where.line, b.where.column);
                   });
}

// The listener's TLS contexts, with each problem located where its part was written.
std::shared_ptr<const net::TlsContext> loadTls(const config::ListenerTls& tls,
                                               std::shared_ptr<net::TicketKeys> ticketKeys,
                                               std::vector<config::Diagnostic>& errors) {
  std::vector<net::TlsProblem> problems;
  auto context = net::TlsContext::create(tls.options, problems, std::move(ticketKeys));
  const std::size_t first = errors.size();
  for (net::TlsProblem& problem : problems) {
    using Part = net::TlsProblem::Part;
    const config::Location* where = &tls.ciphersWhere;
    if (problem.part == Part::Chain || problem.part == Part::Key) {
      const auto& files = tls.certificateWhere.at(problem.certificate);
      where = problem.part == Part::Chain ? &files.chain : &files.key;
    } else if (problem.part == Part::Ciphersuites) {
      where = &tls.ciphersuitesWhere;
    }
    errors.push_back({*where, std::move(problem.message)});
  }
  inFileOrder(errors, first);
  return context;
}

// The upstream's TLS client side, with each problem located where its file was named.
std::shared_ptr<const net::TlsClientContext> loadUpstreamTls(
    const config::UpstreamTls& tls, std::vector<config::Diagnostic>& errors) {
  std::vector<net::TlsClientProblem> problems;
  auto context = net::TlsClientContext::create(tls.options, problems);
  const std::size_t first = errors.size();
  for (net::TlsClientProblem& problem : problems) {
    using Part = net::TlsClientProblem::Part;
    const config::Location& where = problem.part == Part::CaFile        ? tls.caFileWhere
                                    : problem.part == Part::Certificate ? tls.certificateWhere
                                                                        : tls.keyWhere;
    errors.push_back({where, std::move(problem.message)});
  }
  inFileOrder(errors, first);
  return context;
}

// The live snapshot's board of an upstream written the same, else a new one.
std::shared_ptr<upstream::LoadBoard> loadBoardFor(const config::UpstreamConfig& upstream,
                                                  const Snapshot* live) {
  if (live) {
    const auto& before = live->config.upstreams;
    for (std::size_t i = 0; i < before.size(); ++i) {
      if (before[i].name == upstream.name && before[i].identity == upstream.identity) {
        return live->upstreamLoads[i];
      }
    }
  }
  return std::make_shared<upstream::LoadBoard>(upstream.caps, upstream.retry_budget,
                                               upstream.backends.size());
}

// The live snapshot's gate of a route with the same name and limit, else a new one.
std::shared_ptr<proxy::RouteGate> routeGateFor(const config::RouteConfig& route, unsigned workers,
                                               const Snapshot* live) {
  if (!route.concurrency) return nullptr;
  if (live) {
    const auto& before = live->config.routes;
    for (std::size_t i = 0; i < before.size(); ++i) {
      if (before[i].name == route.name && before[i].concurrency == route.concurrency) {
        return live->routeGates[i];
      }
    }
  }
  return std::make_shared<proxy::RouteGate>(*route.concurrency, workers);
}

}  // namespace

std::shared_ptr<const Snapshot> buildSnapshot(config::Config config,
                                              const plugin::Registry& plugins,
                                              std::vector<config::Diagnostic>& errors,
                                              const Snapshot* live) {
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->plugins = &plugins;
  snapshot->generation = live ? live->generation + 1 : 1;
  snapshot->ticketKeys = live ? live->ticketKeys : std::make_shared<net::TicketKeys>();
  std::string error;
  for (const auto& listener : config.listeners) {
    auto address = net::resolve(listener.address, listener.port, error);
    if (!address) {
      errors.push_back({listener.where, error});
      continue;
    }
    snapshot->listenerAddresses.push_back(*address);
    snapshot->listenerTls.push_back(
        listener.tls ? loadTls(*listener.tls, snapshot->ticketKeys, errors) : nullptr);
  }
  for (const auto& upstream : config.upstreams) {
    snapshot->upstreamLoads.push_back(loadBoardFor(upstream, live));
    snapshot->upstreamTls.push_back(upstream.tls ? loadUpstreamTls(*upstream.tls, errors)
                                                 : nullptr);
    auto& resolved = snapshot->backendAddresses.emplace_back();
    for (const auto& backend : upstream.backends) {
      auto address = net::resolve(backend.host, backend.port, error);
      if (!address) {
        errors.push_back({backend.where, error});
        continue;
      }
      resolved.push_back(*address);
    }
  }
  if (config.admin.enabled) {
    auto address = net::resolve(config.admin.address, config.admin.port, error);
    if (address) {
      snapshot->adminAddress = *address;
    } else {
      errors.push_back({config.admin.where, error});
    }
  }
  if (!errors.empty()) return nullptr;
  auto layout = observability::MetricsLayout::fromConfig(config, plugins.counterFamilies());
  auto withUnrouted = std::make_shared<observability::MetricsLayout>(*layout);
  withUnrouted->routes.emplace_back(Snapshot::kUnroutedName);
  snapshot->metricsLayout = std::move(withUnrouted);
  if (config.access_log.enabled) {
    const config::AccessLogConfig& log = config.access_log;
    auto format = std::make_shared<observability::AccessLogFormat>(plugins.logFields());
    if (!log.fields.empty()) format->setFields(log.fields);  // names checked at load
    for (const std::string& name : log.mask_headers) format->addMaskedHeader(name);
    if (log.mask_query_params) format->setMaskedQueryParams(*log.mask_query_params);
    snapshot->accessLogFormat = std::move(format);
  }
  snapshot->unrouted.name = Snapshot::kUnroutedName;
  snapshot->unrouted.plugins = config.plugins;
  snapshot->unrouted.body_bytes = config.limits.body_bytes;
  for (const auto& route : config.routes) {
    snapshot->routeGates.push_back(routeGateFor(route, config.workers, live));
  }
  snapshot->config = std::move(config);
  snapshot->router = std::make_unique<proxy::Router>(snapshot->config);
  return snapshot;
}

}  // namespace gw::runtime
