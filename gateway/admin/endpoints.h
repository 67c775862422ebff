#pragma once
// What the admin listener answers: GET/HEAD /health, /ready, /status and /metrics, and the
// endpoints plugin types offer (the cache's DELETE /cache). The answers are made here from the
// live configuration, the health board and what the process reports of itself (Process), which
// also gathers the workers' metric shards for /metrics. Runs on the admin loop's thread.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/admin/admin_server.h"
#include "gateway/config/model.h"
#include "gateway/plugin/registry.h"
#include "gateway/redis/state_board.h"
#include "gateway/upstream/health.h"

namespace gw::admin {

enum class ProcessState : uint8_t { Starting, Serving, Draining };

// What one reload attempt did (SIGHUP or POST /reload).
struct ReloadOutcome {
  bool applied = false;
  bool shuttingDown = false;        // refused: the process is draining
  uint64_t generation = 0;          // the live one after the attempt
  int64_t atMs = 0;                 // wall clock, when the attempt ended
  std::vector<std::string> errors;  // FILE:LINE:COL: message, when refused
  // Keys that changed but take effect only at a restart (the rest was applied).
  std::vector<std::string> needsRestart;
};

// What the running process tells the admin endpoints about itself (runtime::Server).
class Process {
 public:
  virtual ProcessState state() const = 0;
  virtual std::size_t workerCount() const = 0;
  virtual int64_t startedAtMs() const = 0;  // wall clock
  virtual uint64_t configGeneration() const = 0;
  // Calls `done` once, on the admin loop's thread, with the Prometheus exposition of every
  // worker's counters and the process's own.
  virtual void collectMetrics(std::function<void(std::string)> done) = 0;
  // Re-reads the configuration file; `done` runs once, on the admin loop's thread, when the new
  // configuration is live on every worker or was refused.
  virtual void reload(std::function<void(const ReloadOutcome&)> done) = 0;
  // The last attempt, if any since start.
  virtual const std::optional<ReloadOutcome>& lastReload() const = 0;
  // Each worker's Redis connection state (read when the configuration has a `redis:` block).
  virtual const redis::StateBoard* redisStates() const { return nullptr; }

 protected:
  ~Process() = default;
};

class Endpoints final : public Service {
 public:
  // Each must outlive the endpoints.
  Endpoints(const config::Config& config, const plugin::Registry& plugins,
            const upstream::HealthBoard& health, Process& process)
      : config_(&config), plugins_(plugins), health_(&health), process_(process) {}
  // After a reload: answers from the new configuration and its board (each must outlive its use
  // here, until the next serve()).
  void serve(const config::Config& config, const upstream::HealthBoard& health) {
    config_ = &config;
    health_ = &health;
  }

  void handle(const Request& request, std::function<void(Response)> done) override;

 private:
  // 200 when the process serves, every upstream of readiness.required_upstreams has a usable
  // backend and, with readiness.require_redis, no worker's Redis breaker is open; else 503 with
  // the reasons. Either lists the upstreams routes use that have none, and Redis's states.
  Response readiness() const;
  // ,"redis":{"address":...,"workers":{"closed":N,...}} with a `redis:` block, else nothing.
  std::string redisJson() const;
  Response status() const;
  // An admin endpoint a plugin type offers, over the live configuration's routes.
  Response pluginEndpoint(const plugin::Factory& factory, const plugin::AdminEndpoint& endpoint,
                          std::string_view query) const;

  const config::Config* config_;
  const plugin::Registry& plugins_;
  const upstream::HealthBoard* health_;
  Process& process_;
};

}  // namespace gw::admin
