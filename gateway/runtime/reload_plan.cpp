#include "gateway/runtime/reload_plan.h"

#include <map>
#include <string_view>

namespace gw::runtime {

namespace {

// The live entries of one plugin list, by type, in order: the n-th entry of a type in the next
// list is matched with the n-th of that type in the live one.
void keepUnchangedEntries(std::vector<config::PluginBinding>& next,
                          const std::vector<config::PluginBinding>& live, ReloadPlan& plan) {
  std::map<std::string_view, std::vector<const config::PluginBinding*>> liveByType;
  for (const auto& binding : live) liveByType[binding.name].push_back(&binding);
  std::map<std::string_view, std::size_t> seen;
  for (auto& binding : next) {
    const std::size_t occurrence = seen[binding.name]++;
    const auto found = liveByType.find(binding.name);
    if (found == liveByType.end() || occurrence >= found->second.size()) continue;
    const config::PluginBinding& before = *found->second[occurrence];
    if (before.type != binding.type || before.identity != binding.identity) continue;
    binding.settings = before.settings;
    ++plan.pluginEntriesKept;
  }
}

bool sameOtlp(const std::optional<config::OtlpConfig>& a,
              const std::optional<config::OtlpConfig>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->endpoint == b->endpoint && a->service_name == b->service_name &&
         a->batch_size == b->batch_size && a->flush_interval == b->flush_interval &&
         a->max_queued_spans == b->max_queued_spans;
}

bool sameAdmin(const config::AdminConfig& a, const config::AdminConfig& b) {
  return a.enabled == b.enabled && a.address == b.address && a.port == b.port &&
         a.max_connections == b.max_connections && a.header_timeout == b.header_timeout;
}

// Puts the live value back when the next one differs, and names the key.
template <typename T, typename Same>
void keepLive(T& next, const T& live, std::string_view key, Same same, ReloadPlan& plan) {
  if (same(next, live)) return;
  next = live;
  plan.needsRestart.emplace_back(key);
}

}  // namespace

ReloadPlan planReload(config::Config& next, const config::Config& live) {
  ReloadPlan plan;
  std::map<std::string_view, const config::RouteConfig*> liveRoutes;
  for (const auto& route : live.routes) liveRoutes.emplace(route.name, &route);
  for (auto& route : next.routes) {
    const auto found = liveRoutes.find(route.name);
    if (found != liveRoutes.end())
      keepUnchangedEntries(route.plugins, found->second->plugins, plan);
  }
  keepUnchangedEntries(next.plugins, live.plugins, plan);
  std::map<std::string_view, const config::UpstreamConfig*> liveUpstreams;
  for (const auto& upstream : live.upstreams) liveUpstreams.emplace(upstream.name, &upstream);
  for (const auto& upstream : next.upstreams) {
    const auto found = liveUpstreams.find(upstream.name);
    if (found != liveUpstreams.end() && found->second->identity == upstream.identity) {
      ++plan.upstreamsKept;
    }
  }
  const auto equal = [](const auto& a, const auto& b) { return a == b; };
  keepLive(next.workers, live.workers, "workers", equal, plan);
  keepLive(next.admin, live.admin, "admin", sameAdmin, plan);
  keepLive(next.access_log.enabled, live.access_log.enabled, "access_log.enabled", equal, plan);
  keepLive(next.access_log.path, live.access_log.path, "access_log.path", equal, plan);
  keepLive(next.access_log.max_queued_bytes, live.access_log.max_queued_bytes,
           "access_log.max_queued_bytes", equal, plan);
  keepLive(next.tracing.otlp, live.tracing.otlp, "tracing.otlp", sameOtlp, plan);
  return plan;
}

}  // namespace gw::runtime
