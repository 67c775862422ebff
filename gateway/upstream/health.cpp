#include "gateway/upstream/health.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

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

std::string_view reasonName(EjectionReason reason) {
  switch (reason) {
    case EjectionReason::ConsecutiveFailures:
      return "consecutive_failures";
    case EjectionReason::Consecutive5xx:
      return "consecutive_5xx";
    case EjectionReason::ConsecutiveGatewayFailure:
      return "consecutive_gateway_failure";
    case EjectionReason::SuccessRate:
      return "success_rate";
  }
  return "unknown";
}

namespace {

// Clears a streak counter, leaving the cache line shared when there is nothing to clear.
void endStreak(std::atomic<uint32_t>& streak) {
  if (streak.load(std::memory_order_relaxed) != 0) streak.store(0, std::memory_order_relaxed);
}

// One more failure on a streak that ejects at `threshold` (0: never). Exactly one reporter sees
// the count reach the threshold, however many race.
bool completesStreak(std::atomic<uint32_t>& streak, uint32_t threshold) {
  if (threshold == 0) return false;
  return streak.fetch_add(1, std::memory_order_relaxed) + 1 == threshold;
}

std::string percent(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", value);
  return text;
}

}  // namespace

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
      slot.consecutive5xx.store(old.consecutive5xx.load(std::memory_order_relaxed));
      slot.consecutiveGatewayFailures.store(
          old.consecutiveGatewayFailures.load(std::memory_order_relaxed));
      slot.ejectionLevel = old.ejectionLevel;
      slot.lastEjectionEndMs = old.lastEjectionEndMs;
      slot.reason = old.reason;
      slot.successRate = old.successRate;
      slot.successRateThreshold = old.successRateThreshold;
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
  Upstream& u = upstreams_[upstream];
  Slot& slot = u.slots[backend];
  // Successes are the common case: leave the cache line shared unless there is a streak to end.
  endStreak(slot.consecutiveFailures);
  endStreak(slot.consecutive5xx);
  endStreak(slot.consecutiveGatewayFailures);
  countForSuccessRate(u, slot, false);
}

std::optional<EjectionReason> HealthBoard::reportFailure(std::size_t upstream, std::size_t backend,
                                                         int64_t nowMs) {
  return reportFailureKind(upstream, backend, Failure::Local, nowMs);
}

std::optional<EjectionReason> HealthBoard::reportResponse(std::size_t upstream, std::size_t backend,
                                                          int status, int64_t nowMs) {
  if (status < 500) {
    reportSuccess(upstream, backend);
    return std::nullopt;
  }
  const bool gateway = status == 502 || status == 503 || status == 504;
  return reportFailureKind(upstream, backend, gateway ? Failure::Gateway5xx : Failure::Other5xx,
                           nowMs);
}

void HealthBoard::countForSuccessRate(const Upstream& upstream, Slot& slot, bool failed) {
  if (!upstream.spec.passive.successRate) return;
  // Failures first: the evaluator takes the requests first, so it never sees more failures
  // than requests from one report (it clamps what a race leaves over).
  if (failed) slot.intervalFailures.fetch_add(1, std::memory_order_relaxed);
  slot.intervalRequests.fetch_add(1, std::memory_order_relaxed);
}

std::optional<EjectionReason> HealthBoard::reportFailureKind(std::size_t upstream,
                                                             std::size_t backend, Failure failure,
                                                             int64_t nowMs) {
  Upstream& u = upstreams_[upstream];
  const PassiveCheck& passive = u.spec.passive;
  Slot& slot = u.slots[backend];
  if (slot.ejectedUntilMs.load(std::memory_order_relaxed) > nowMs) return std::nullopt;
  countForSuccessRate(u, slot, true);
  // Every streak the failure belongs to moves (a 5xx only counts as a plain failure with
  // count_5xx, and a 500 ends the gateway streak, as in Envoy); the first completed one ejects.
  std::optional<EjectionReason> completed;
  if (failure == Failure::Local || passive.count5xx) {
    if (completesStreak(slot.consecutiveFailures, passive.consecutiveFailures)) {
      completed = EjectionReason::ConsecutiveFailures;
    }
  } else {
    endStreak(slot.consecutiveFailures);
  }
  if (completesStreak(slot.consecutive5xx, passive.consecutive5xx) && !completed) {
    completed = EjectionReason::Consecutive5xx;
  }
  if (failure == Failure::Other5xx) {
    endStreak(slot.consecutiveGatewayFailures);
  } else if (completesStreak(slot.consecutiveGatewayFailures, passive.consecutiveGatewayFailure) &&
             !completed) {
    completed = EjectionReason::ConsecutiveGatewayFailure;
  }
  if (!completed) return std::nullopt;
  std::lock_guard lock(mutex_);
  if (!tryEject(u, backend, *completed, nowMs)) return std::nullopt;
  return completed;
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

bool HealthBoard::tryEject(Upstream& upstream, std::size_t backend, EjectionReason reason,
                           int64_t nowMs) {
  const PassiveCheck& passive = upstream.spec.passive;
  Slot& slot = upstream.slots[backend];
  const auto why = static_cast<std::size_t>(reason);
  slot.consecutiveFailures.store(0, std::memory_order_relaxed);
  slot.consecutive5xx.store(0, std::memory_order_relaxed);
  slot.consecutiveGatewayFailures.store(0, std::memory_order_relaxed);
  // Ejections and active verdicts change only under the mutex, so the count holds until the
  // store below; an ejection ending meanwhile only puts one more backend back in rotation.
  if (!ejectionAllowed(upstream, backend, nowMs)) {
    ++slot.ejectionsRefused[why];
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
  slot.reason = reason;
  ++slot.ejections[why];
  slot.ejectedUntilMs.store(nowMs + duration, std::memory_order_relaxed);
  return true;
}

int64_t HealthBoard::successRateIntervalMs() const {
  int64_t shortest = 0;
  for (const Upstream& u : upstreams_) {
    if (!u.spec.passive.successRate) continue;
    const int64_t interval = u.spec.passive.successRate->intervalMs;
    if (shortest == 0 || interval < shortest) shortest = interval;
  }
  return shortest;
}

std::vector<SuccessRateEjection> HealthBoard::evaluateSuccessRates(int64_t nowMs) {
  std::vector<SuccessRateEjection> out;
  std::lock_guard lock(mutex_);
  for (Upstream& u : upstreams_) {
    if (!u.spec.passive.successRate || u.nextEvaluationMs > nowMs) continue;
    u.nextEvaluationMs = nowMs + u.spec.passive.successRate->intervalMs;
    evaluateSuccessRate(u, nowMs, out);
  }
  return out;
}

void HealthBoard::evaluateSuccessRate(Upstream& upstream, int64_t nowMs,
                                      std::vector<SuccessRateEjection>& out) {
  const SuccessRate& rule = *upstream.spec.passive.successRate;
  // Percent of successes per backend that saw enough requests in the interval; -1: not counted.
  std::vector<double> rates(upstream.slots.size(), -1);
  double sum = 0;
  std::size_t counted = 0;
  for (std::size_t b = 0; b < upstream.slots.size(); ++b) {
    Slot& slot = upstream.slots[b];
    const uint64_t requests = slot.intervalRequests.exchange(0, std::memory_order_relaxed);
    const uint64_t failures =
        std::min(requests, slot.intervalFailures.exchange(0, std::memory_order_relaxed));
    // An ejected backend's few in-flight answers say nothing about it now (as Envoy).
    if (requests < rule.requestVolume ||
        slot.ejectedUntilMs.load(std::memory_order_relaxed) > nowMs) {
      continue;
    }
    rates[b] = 100.0 * static_cast<double>(requests - failures) / static_cast<double>(requests);
    sum += rates[b];
    ++counted;
  }
  if (counted == 0 || counted < rule.minimumHosts) return;
  const double mean = sum / static_cast<double>(counted);
  double squares = 0;
  for (double rate : rates) {
    if (rate >= 0) squares += (rate - mean) * (rate - mean);
  }
  const double threshold =
      mean - rule.stdevFactor * std::sqrt(squares / static_cast<double>(counted));
  for (std::size_t b = 0; b < rates.size(); ++b) {
    if (rates[b] < 0 || rates[b] >= threshold) continue;
    Slot& slot = upstream.slots[b];
    if (!tryEject(upstream, b, EjectionReason::SuccessRate, nowMs)) continue;
    slot.successRate = rates[b];
    slot.successRateThreshold = threshold;
    out.push_back(
        {static_cast<std::size_t>(&upstream - upstreams_.data()), b, rates[b], threshold});
  }
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
      slot.consecutive5xx.store(0, std::memory_order_relaxed);
      slot.consecutiveGatewayFailures.store(0, std::memory_order_relaxed);
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

std::string HealthBoard::ejectionText(const PassiveCheck& passive, const Slot& slot) {
  switch (slot.reason) {
    case EjectionReason::ConsecutiveFailures:
      return std::to_string(passive.consecutiveFailures) + " consecutive failed exchanges";
    case EjectionReason::Consecutive5xx:
      return std::to_string(passive.consecutive5xx) + " consecutive 5xx responses or failures";
    case EjectionReason::ConsecutiveGatewayFailure:
      return std::to_string(passive.consecutiveGatewayFailure) +
             " consecutive gateway errors (502, 503, 504 or no answer)";
    case EjectionReason::SuccessRate:
      return "success rate " + percent(slot.successRate) + " below the upstream's threshold " +
             percent(slot.successRateThreshold);
  }
  return {};
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
      for (std::size_t r = 0; r < kEjectionReasonCount; ++r) {
        s.ejections += slot.ejections[r];
        s.ejectionsRefused += slot.ejectionsRefused[r];
        status.ejections[r] += slot.ejections[r];
        status.ejectionsRefused[r] += slot.ejectionsRefused[r];
      }
      int64_t until = slot.ejectedUntilMs.load(std::memory_order_relaxed);
      if (until > nowMs) {
        s.state = BackendState::Ejected;
        s.ejectedUntilMs = until;
        s.ejectionReason = slot.reason;
        s.reason = ejectionText(u.spec.passive, slot);
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
