#pragma once
// What a reload keeps of the live configuration. The identity rule (docs/operations.md,
// "Reload"): a plugin entry is unchanged when its route has the same name and the entry the same
// type, the same place among that route's entries of its type and the same settings as written;
// it then keeps its state (rate-limit windows, cache stores). An upstream is unchanged when it is
// written the same; it then keeps each worker's connection pool. Health results and ejections go
// by upstream name and backend host:port. Some settings are bound to the process (its threads,
// its admin socket, its log writer and span exporter): a reload keeps their live values and says
// which of them wait for a restart.

#include <string>
#include <vector>

#include "gateway/config/model.h"

namespace gw::runtime {

struct ReloadPlan {
  // The top-level keys that changed but take effect only at the next restart ("workers",
  // "admin", "access_log.path", ...), in the order of the configuration reference.
  std::vector<std::string> needsRestart;
  std::size_t pluginEntriesKept = 0;  // entries that share the live one's settings and state
  std::size_t upstreamsKept = 0;      // upstreams written the same (their pools are kept)
};

// Makes `next` share the settings object of every unchanged plugin entry of `live` (the object
// that holds shared state, and the key by which workers carry their per-worker state), and puts
// back the live values of what only a restart changes.
ReloadPlan planReload(config::Config& next, const config::Config& live);

}  // namespace gw::runtime
