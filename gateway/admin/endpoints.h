#pragma once
// What the admin listener answers: GET/HEAD /health, /ready, /status and /metrics, and the
// endpoints plugin types offer (the cache's DELETE /cache). The answers are made here from the
// live configuration, the health board and what the process reports of itself (Process), which
// also gathers the workers' metric shards for /metrics. Runs on the admin loop's thread.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "gateway/admin/admin_server.h"
#include "gateway/config/model.h"
#include "gateway/plugin/registry.h"
#include "gateway/upstream/health.h"

namespace gw::admin {

enum class ProcessState : uint8_t { Starting, Serving, Draining };

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

 protected:
  ~Process() = default;
};

class Endpoints final : public Service {
 public:
  // Each must outlive the endpoints.
  Endpoints(const config::Config& config, const plugin::Registry& plugins,
            const upstream::HealthBoard& health, Process& process)
      : config_(config), plugins_(plugins), health_(health), process_(process) {}

  void handle(const Request& request, std::function<void(Response)> done) override;

 private:
  // 200 when the process serves and every upstream of readiness.required_upstreams has a usable
  // backend; else 503 with the reasons. Either lists the upstreams routes use that have none.
  Response readiness() const;
  Response status() const;
  // An admin endpoint a plugin type offers, over the live configuration's routes.
  Response pluginEndpoint(const plugin::Factory& factory, const plugin::AdminEndpoint& endpoint,
                          std::string_view query) const;

  const config::Config& config_;
  const plugin::Registry& plugins_;
  const upstream::HealthBoard& health_;
  Process& process_;
};

}  // namespace gw::admin
