#include "gateway/runtime/watchdog.h"

#include <string>
#include <utility>

#include "gateway/core/log.h"

namespace gw::runtime {

namespace log = core::log;

Watchdog::Watchdog(Workers& workers, std::chrono::microseconds interval,
                   std::function<int64_t()> nowUs, std::function<void()> ping)
    : workers_(workers),
      interval_(interval),
      nowUs_(std::move(nowUs)),
      ping_(std::move(ping)),
      heartbeats_(workers.count()) {}

void Watchdog::tick() {
  const int64_t now = nowUs_();
  bool allAnswer = true;
  for (std::size_t i = 0; i < heartbeats_.size(); ++i) {
    if (!workers_.running(i)) continue;
    Heartbeat& heartbeat = heartbeats_[i];
    if (!heartbeat.outstanding) {
      heartbeat.outstanding = true;
      heartbeat.sentUs = now;
      workers_.sendHeartbeat(i, [this, i] { answered(i); });
      continue;
    }
    const int64_t waitedUs = now - heartbeat.sentUs;
    if (waitedUs < interval_.count()) continue;
    allAnswer = false;
    if (!std::exchange(heartbeat.stuck, true)) {
      log::error(
          "worker stuck: its event loop has not answered a heartbeat; no more watchdog "
          "pings, so systemd restarts the service",
          {{"worker", std::to_string(i)}, {"waited_ms", std::to_string(waitedUs / 1000)}});
    }
  }
  if (allAnswer) ping_();
}

void Watchdog::answered(std::size_t index) {
  Heartbeat& heartbeat = heartbeats_[index];
  heartbeat.outstanding = false;
  if (std::exchange(heartbeat.stuck, false)) {
    log::warn("worker answers its heartbeat again; watchdog pings resume",
              {{"worker", std::to_string(index)},
               {"waited_ms", std::to_string((nowUs_() - heartbeat.sentUs) / 1000)}});
  }
}

std::vector<std::size_t> Watchdog::stuck() const {
  std::vector<std::size_t> indices;
  for (std::size_t i = 0; i < heartbeats_.size(); ++i) {
    if (heartbeats_[i].stuck) indices.push_back(i);
  }
  return indices;
}

}  // namespace gw::runtime
