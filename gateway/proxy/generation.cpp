#include "gateway/proxy/generation.h"

#include <map>
#include <string_view>

#include "gateway/proxy/worker_context.h"

namespace gw::proxy {

namespace {

// The previous generation's cluster of the upstream `next`, if it is written the same.
std::shared_ptr<upstream::Cluster> sameUpstream(const Generation& previous,
                                                const config::UpstreamConfig& next) {
  for (const auto& cluster : previous.clusters()) {
    const config::UpstreamConfig& before = cluster->config();
    if (before.name == next.name && before.identity == next.identity) return cluster;
  }
  return nullptr;
}

// The previous generation's queue of `gate` on this worker, else a new one.
std::shared_ptr<RouteQueue> queueFor(const std::shared_ptr<RouteGate>& gate, WorkerContext& worker,
                                     const Generation* previous) {
  if (previous) {
    for (const auto& queue : previous->routeQueues()) {
      if (queue && &queue->gate() == gate.get()) return queue;
    }
  }
  return std::make_shared<RouteQueue>(gate, worker.index(), worker.dispatcher());
}

}  // namespace

Generation::Generation(WorkerContext& worker, const ServedConfig& served,
                       upstream::HealthBoard& health, std::shared_ptr<const void> keepAlive,
                       uint64_t number, Generation* previous)
    : worker_(worker),
      served_(served),
      keepAlive_(std::move(keepAlive)),
      number_(number),
      metrics_(served.metricsLayout) {
  const auto& upstreams = served.config.upstreams;
  for (std::size_t i = 0; i < upstreams.size(); ++i) {
    if (auto kept = previous ? sameUpstream(*previous, upstreams[i]) : nullptr) {
      kept->rebind(upstreams[i], metrics_.upstreams[i], health, i, served.upstreamTls[i]);
      clusters_.push_back(std::move(kept));
      continue;
    }
    clusters_.push_back(std::make_shared<upstream::Cluster>(
        upstreams[i], served.backendAddresses[i], worker.base(), worker.graveyard(),
        worker.timeouts(), worker.upstreamHeadLimits(), worker.upstreamBlocks(),
        metrics_.upstreams[i], health, i, served.upstreamTls[i]));
    clusters_.back()->shareLoad(*served.upstreamLoads[i]);
  }
  // The previous generation's worker states, by route name and settings object.
  std::map<std::pair<std::string_view, const void*>, std::shared_ptr<plugin::WorkerState>> before;
  if (previous) {
    const auto remember = [&](const config::RouteConfig& route, std::size_t index) {
      for (std::size_t k = 0; k < route.plugins.size(); ++k) {
        if (auto& state = previous->pluginStates_[index][k]) {
          before.emplace(std::pair(std::string_view(route.name), route.plugins[k].settings.get()),
                         state);
        }
      }
    };
    const auto& routes = previous->config().routes;
    for (std::size_t r = 0; r < routes.size(); ++r) remember(routes[r], r);
    remember(previous->unrouted(), previous->unroutedIndex());
  }
  auto addRoute = [&](const config::RouteConfig& route) {
    routeTimeouts_.push_back({worker.timeouts().get(route.timeouts.connect),
                              worker.timeouts().get(route.timeouts.read),
                              worker.timeouts().get(route.timeouts.send)});
    auto& states = pluginStates_.emplace_back();
    auto& views = pluginStateViews_.emplace_back();
    for (const auto& binding : route.plugins) {
      const auto kept =
          before.find(std::pair(std::string_view(route.name), binding.settings.get()));
      if (kept != before.end()) {
        states.push_back(kept->second);
        before.erase(kept);  // one entry takes it
      } else {
        states.push_back(plugin::factoryOf(binding).makeWorkerState(plugin::settingsOf(binding),
                                                                    worker.dispatcher()));
      }
      views.push_back(states.back().get());
    }
  };
  for (const auto& route : served.config.routes) addRoute(route);
  for (const auto& gate : served.routeGates) {
    routeQueues_.push_back(gate ? queueFor(gate, worker, previous) : nullptr);
  }
  routeQueues_.push_back(nullptr);  // at unroutedIndex()
  addRoute(served.unrouted);  // at unroutedIndex()
}

Generation::~Generation() = default;

void Generation::replace() {
  replaced_ = true;
  if (holds_ == 0) unused();
}

void Generation::unused() { worker_.generationUnused(*this); }

}  // namespace gw::proxy
