#pragma once
// What the process knows about each backend's health, shared by every worker, the prober and the
// admin listener. Workers ask usable() on every pick and report each exchange's outcome; both are
// lock-free (relaxed atomics). Only the rare events take the board's mutex: an ejection, a probe
// result (once per interval per backend) and a /status snapshot.
//
// Two independent verdicts make a backend unusable:
//  - active: the prober's HTTP check failed `unhealthyThreshold` times in a row (until it passes
//    `healthyThreshold` times in a row);
//  - passive: `consecutiveFailures` exchanges in a row failed, so it is ejected for a while.
// The verdicts differ in what they may take out. A probe speaks to the backend itself, so a failing
// one takes it out even when it is the last. Passive failures can be induced by clients (a slow or
// resetting path), so a passive ejection never leaves an upstream without a backend in rotation and
// never puts more than `maxEjectionPercent` of its backends out at once (Envoy's
// max_ejection_percent; nginx never marks a lone server down): with one backend, never.
// Time is wall-clock milliseconds, the clock the workers' loops cache
// (event_base_gettimeofday_cached); callers pass it in so the hot path makes no syscall.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw::upstream {

// An HTTP probe of every backend of one upstream.
struct ActiveCheck {
  std::string path = "/health";
  std::string host;           // Host header; empty = the backend's "host:port"
  int64_t intervalMs = 5000;  // from the end of one probe to the start of the next
  int64_t timeoutMs = 2000;   // connect + write + status line
  int healthyThreshold = 2;
  int unhealthyThreshold = 3;
  std::vector<std::pair<int, int>> expectedStatuses = {{200, 399}};  // inclusive ranges
};

// Outlier detection from real traffic (Envoy's consecutive_5xx, nginx's max_fails).
struct PassiveCheck {
  uint32_t consecutiveFailures = 5;  // 0 = never eject
  int64_t baseEjectionMs = 10'000;
  int64_t maxEjectionMs = 300'000;
  uint32_t maxEjectionPercent = 50;  // of the upstream's backends, rounded down
};

struct UpstreamHealthSpec {
  std::string name;
  std::vector<std::string> backends;  // "host:port" ("[v6]:port"), in config order
  PassiveCheck passive;
  std::optional<ActiveCheck> active;
};

enum class BackendState : uint8_t { Healthy, Unhealthy, Ejected };
std::string_view stateName(BackendState state);  // "healthy", "unhealthy", "ejected"

// One backend as /status shows it.
struct BackendStatus {
  std::string address;
  BackendState state = BackendState::Healthy;
  std::string reason;                // why it is not healthy; empty when healthy
  uint32_t consecutiveFailures = 0;  // passive: failed exchanges in a row
  int probeSuccesses = 0;            // active: consecutive passes / fails of the probe
  int probeFailures = 0;
  int lastProbeStatus = 0;     // 0 = no status line (or no probe yet)
  std::string lastProbeError;  // empty when the last probe passed (or none ran)
  int64_t ejectedUntilMs = 0;  // 0 = not ejected
  uint64_t ejections = 0;      // since start
  uint64_t ejectionsRefused = 0;  // streaks that reached the threshold while the cap was full
};

struct UpstreamStatus {
  std::string name;
  bool activeCheck = false;
  bool anyUsable = true;
  std::vector<BackendStatus> backends;
};

// One probe's verdict, as the prober hands it to the board.
struct ProbeOutcome {
  bool passed = false;
  int status = 0;     // the status line's code, 0 when none was read
  std::string error;  // "timeout", "connect: ...", "status 500", ...; empty when passed
};

class HealthBoard {
 public:
  explicit HealthBoard(std::vector<UpstreamHealthSpec> upstreams);
  // After a reload: each backend that `previous` knew (same upstream name, same host:port) keeps
  // its probe results, streaks and ejections; its active verdict only while it is still probed.
  HealthBoard(std::vector<UpstreamHealthSpec> upstreams, const HealthBoard& previous);
  HealthBoard(const HealthBoard&) = delete;
  HealthBoard& operator=(const HealthBoard&) = delete;

  std::size_t upstreamCount() const { return upstreams_.size(); }
  const UpstreamHealthSpec& spec(std::size_t upstream) const { return upstreams_[upstream].spec; }

  // Hot path: two relaxed loads.
  bool usable(std::size_t upstream, std::size_t backend, int64_t nowMs) const;
  // False when every backend is down, so the request can get its 503 at once.
  bool anyUsable(std::size_t upstream, int64_t nowMs) const;

  // After each upstream exchange (one report per backend per exchange, however many attempts it
  // took). A success is a relaxed load (a store only if a streak was running). A failure is one
  // fetch_add; the one that completes the streak ejects the backend (under the mutex) and returns
  // true so the caller can log it, unless the ejection cap forbids it: then the streak starts over
  // and the refusal is counted. Failures reported while the backend is already ejected are
  // exchanges that were in flight: they do not count.
  void reportSuccess(std::size_t upstream, std::size_t backend);
  bool reportFailure(std::size_t upstream, std::size_t backend, int64_t nowMs);

  // The prober's result for one backend. Returns the new active verdict when it changed. A passed
  // probe also ends a passive ejection: the backend answers again, so it need not sit out a
  // back-off that may have grown to minutes while it was down.
  std::optional<bool> recordProbe(std::size_t upstream, std::size_t backend,
                                  const ProbeOutcome& outcome);

  std::vector<UpstreamStatus> snapshot(int64_t nowMs) const;

 private:
  // One backend; a cache line of its own so workers failing on one backend do not slow the
  // loads of its neighbours.
  struct alignas(64) Slot {
    std::atomic<bool> activeHealthy{true};
    std::atomic<int64_t> ejectedUntilMs{0};
    std::atomic<uint32_t> consecutiveFailures{0};
    // Guarded by mutex_.
    int ejectionLevel = 0;  // the next ejection lasts base << level
    int64_t lastEjectionEndMs = 0;
    uint64_t ejections = 0;
    uint64_t ejectionsRefused = 0;
    int probeSuccesses = 0;
    int probeFailures = 0;
    int lastProbeStatus = 0;
    std::string lastProbeError;
  };
  struct Upstream {
    UpstreamHealthSpec spec;
    std::vector<Slot> slots;
  };

  // Ejects `backend` unless that would break the cap; returns whether it did.
  bool tryEject(Upstream& upstream, std::size_t backend, int64_t nowMs);
  // Under mutex_: whether one more passive ejection keeps the upstream within its cap.
  bool ejectionAllowed(const Upstream& upstream, std::size_t backend, int64_t nowMs) const;

  std::vector<Upstream> upstreams_;
  mutable std::mutex mutex_;
};

}  // namespace gw::upstream
