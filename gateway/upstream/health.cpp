#include "gateway/upstream/health.h"

#include <algorithm>

namespace gw::upstream {

std::string_view stateName(BackendState state) {
  switch (state) {
    case BackendState::Healthy:
      return "healthy";
    case BackendState::Unhealthy:
      return "unhealthy";
    case BackendState::Ejected:
      return "ejected";
  }
  return "unknown";
}

HealthBoard::HealthBoard(std::vector<UpstreamHealthSpec> upstreams) {
  upstreams_.reserve(upstreams.size());
  for (auto& spec : upstreams) {
    std::size_t count = spec.backends.size();
    upstreams_.push_back(Upstream{std::move(spec), std::vector<Slot>(count)});
  }
}

HealthBoard::HealthBoard(std::vector<UpstreamHealthSpec> upstreams, const HealthBoard& previous)
    : HealthBoard(std::move(upstreams)) {
  std::lock_guard lock(previous.mutex_);
  for (Upstream& upstream : upstreams_) {
    const auto before =
        std::find_if(previous.upstreams_.begin(), previous.upstreams_.end(),
                     [&](const Upstream& old) { return old.spec.name == upstream.spec.name; });
    if (before == previous.upstreams_.end()) continue;
    for (std::size_t b = 0; b < upstream.slots.size(); ++b) {
      const auto& names = before->spec.backends;
      const auto found = std::find(names.begin(), names.end(), upstream.spec.backends[b]);
      if (found == names.end()) continue;
      const Slot& old = before->slots[static_cast<std::size_t>(found - names.begin())];
      Slot& slot = upstream.slots[b];
      if (upstream.spec.active) {
        slot.activeHealthy.store(old.activeHealthy.load(std::memory_order_relaxed));
        slot.probeSuccesses = old.probeSuccesses;
        slot.probeFailures = old.probeFailures;
        slot.lastProbeStatus = old.lastProbeStatus;
        slot.lastProbeError = old.lastProbeError;
      }
      slot.ejectedUntilMs.store(old.ejectedUntilMs.load(std::memory_order_relaxed));
      slot.consecutiveFailures.store(old.consecutiveFailures.load(std::memory_order_relaxed));
      slot.ejectionLevel = old.ejectionLevel;
      slot.lastEjectionEndMs = old.lastEjectionEndMs;
      slot.ejections = old.ejections;
      slot.ejectionsRefused = old.ejectionsRefused;
    }
  }
}

bool HealthBoard::usable(std::size_t upstream, std::size_t backend, int64_t nowMs) const {
  const Slot& slot = upstreams_[upstream].slots[backend];
  return slot.activeHealthy.load(std::memory_order_relaxed) &&
         slot.ejectedUntilMs.load(std::memory_order_relaxed) <= nowMs;
}

bool HealthBoard::anyUsable(std::size_t upstream, int64_t nowMs) const {
  std::size_t count = upstreams_[upstream].slots.size();
  for (std::size_t b = 0; b < count; ++b) {
    if (usable(upstream, b, nowMs)) return true;
  }
  return false;
}

void HealthBoard::reportSuccess(std::size_t upstream, std::size_t backend) {
  Slot& slot = upstreams_[upstream].slots[backend];
  // Successes are the common case: leave the cache line shared unless there is a streak to end.
  if (slot.consecutiveFailures.load(std::memory_order_relaxed) != 0) {
    slot.consecutiveFailures.store(0, std::memory_order_relaxed);
  }
}

bool HealthBoard::reportFailure(std::size_t upstream, std::size_t backend, int64_t nowMs) {
  Upstream& u = upstreams_[upstream];
  const PassiveCheck& passive = u.spec.passive;
  if (passive.consecutiveFailures == 0) return false;
  Slot& slot = u.slots[backend];
  if (slot.ejectedUntilMs.load(std::memory_order_relaxed) > nowMs) return false;
  // Exactly one reporter sees the count reach the threshold, however many race; it ejects.
  uint32_t count = slot.consecutiveFailures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (count != passive.consecutiveFailures) return false;
  return tryEject(u, backend, nowMs);
}

bool HealthBoard::ejectionAllowed(const Upstream& upstream, std::size_t backend,
                                  int64_t nowMs) const {
  std::size_t ejected = 0;
  bool anotherInRotation = false;
  for (std::size_t b = 0; b < upstream.slots.size(); ++b) {
    if (b == backend) continue;
    const Slot& other = upstream.slots[b];
    if (other.ejectedUntilMs.load(std::memory_order_relaxed) > nowMs) {
      ++ejected;
    } else if (other.activeHealthy.load(std::memory_order_relaxed)) {
      anotherInRotation = true;
    }
  }
  return anotherInRotation &&
         (ejected + 1) * 100 <=
             std::size_t{upstream.spec.passive.maxEjectionPercent} * upstream.slots.size();
}

bool HealthBoard::tryEject(Upstream& upstream, std::size_t backend, int64_t nowMs) {
  const PassiveCheck& passive = upstream.spec.passive;
  Slot& slot = upstream.slots[backend];
  std::lock_guard lock(mutex_);
  // Ejections and active verdicts change only under the mutex, so the count holds until the
  // store below; an ejection ending meanwhile only puts one more backend back in rotation.
  if (!ejectionAllowed(upstream, backend, nowMs)) {
    ++slot.ejectionsRefused;
    slot.consecutiveFailures.store(0, std::memory_order_relaxed);
    return false;
  }
  // As Envoy's multiplier: each base period spent back in rotation undoes one doubling, so a
  // backend that fails again right after its ejection sits out twice as long, and one that
  // recovered for a while starts over at the base.
  if (slot.lastEjectionEndMs != 0 && passive.baseEjectionMs > 0) {
    int64_t periods = std::max<int64_t>(0, nowMs - slot.lastEjectionEndMs) / passive.baseEjectionMs;
    slot.ejectionLevel = static_cast<int>(std::max<int64_t>(0, slot.ejectionLevel - periods));
  }
  int64_t duration = passive.baseEjectionMs;
  for (int i = 0; i < slot.ejectionLevel && duration < passive.maxEjectionMs; ++i) duration *= 2;
  // At the cap the level stops rising, so the time in rotation that undoes a doubling is
  // never spent undoing doublings that had no effect.
  if (duration < passive.maxEjectionMs) {
    ++slot.ejectionLevel;
  } else {
    duration = passive.maxEjectionMs;
  }
  slot.lastEjectionEndMs = nowMs + duration;
  ++slot.ejections;
  slot.ejectedUntilMs.store(nowMs + duration, std::memory_order_relaxed);
  slot.consecutiveFailures.store(0, std::memory_order_relaxed);
  return true;
}

std::optional<bool> HealthBoard::recordProbe(std::size_t upstream, std::size_t backend,
                                             const ProbeOutcome& outcome) {
  Upstream& u = upstreams_[upstream];
  // Only the prober reports, and only for upstreams with a check.
  if (!u.spec.active) return std::nullopt;
  const ActiveCheck& check = *u.spec.active;
  Slot& slot = u.slots[backend];
  std::lock_guard lock(mutex_);
  slot.lastProbeStatus = outcome.status;
  slot.lastProbeError = outcome.passed ? std::string() : outcome.error;
  bool healthy = slot.activeHealthy.load(std::memory_order_relaxed);
  if (outcome.passed) {
    slot.probeFailures = 0;
    ++slot.probeSuccesses;
    if (slot.ejectedUntilMs.load(std::memory_order_relaxed) != 0) {
      slot.ejectedUntilMs.store(0, std::memory_order_relaxed);
      slot.consecutiveFailures.store(0, std::memory_order_relaxed);
    }
    if (!healthy && slot.probeSuccesses >= check.healthyThreshold) {
      slot.activeHealthy.store(true, std::memory_order_relaxed);
      return true;
    }
  } else {
    slot.probeSuccesses = 0;
    ++slot.probeFailures;
    if (healthy && slot.probeFailures >= check.unhealthyThreshold) {
      slot.activeHealthy.store(false, std::memory_order_relaxed);
      return false;
    }
  }
  return std::nullopt;
}

std::vector<UpstreamStatus> HealthBoard::snapshot(int64_t nowMs) const {
  std::vector<UpstreamStatus> out;
  out.reserve(upstreams_.size());
  std::lock_guard lock(mutex_);
  for (const Upstream& u : upstreams_) {
    UpstreamStatus& status = out.emplace_back();
    status.name = u.spec.name;
    status.activeCheck = u.spec.active.has_value();
    status.anyUsable = false;
    for (std::size_t b = 0; b < u.slots.size(); ++b) {
      const Slot& slot = u.slots[b];
      BackendStatus& s = status.backends.emplace_back();
      s.address = u.spec.backends[b];
      s.consecutiveFailures = slot.consecutiveFailures.load(std::memory_order_relaxed);
      s.probeSuccesses = slot.probeSuccesses;
      s.probeFailures = slot.probeFailures;
      s.lastProbeStatus = slot.lastProbeStatus;
      s.lastProbeError = slot.lastProbeError;
      s.ejections = slot.ejections;
      s.ejectionsRefused = slot.ejectionsRefused;
      int64_t until = slot.ejectedUntilMs.load(std::memory_order_relaxed);
      if (until > nowMs) {
        s.state = BackendState::Ejected;
        s.ejectedUntilMs = until;
        s.reason =
            std::to_string(u.spec.passive.consecutiveFailures) + " consecutive failed exchanges";
      } else if (!slot.activeHealthy.load(std::memory_order_relaxed)) {
        s.state = BackendState::Unhealthy;
        s.reason = slot.lastProbeError.empty()
                       ? "health check recovering: " + std::to_string(slot.probeSuccesses) +
                             " of " + std::to_string(u.spec.active->healthyThreshold) + " passes"
                       : "health check failed: " + slot.lastProbeError;
      } else {
        status.anyUsable = true;
      }
    }
  }
  return out;
}

}  // namespace gw::upstream
