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

#include <array>
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

// Envoy's success-rate outlier detection, evaluated off the request path (evaluateSuccessRates).
struct SuccessRate {
  int64_t intervalMs = 10'000;
  uint32_t minimumHosts = 5;
  uint32_t requestVolume = 100;
  double stdevFactor = 1.9;
};

// Outlier detection from real traffic (nginx's max_fails, Envoy's consecutive_5xx and
// consecutive_gateway_failure). Each trigger is a streak of its own; 0 turns it off.
struct PassiveCheck {
  uint32_t consecutiveFailures = 5;  // our connect failures and resets (and 5xx with count5xx)
  bool count5xx = false;
  uint32_t consecutive5xx = 0;             // any 5xx answered, and our own failures
  uint32_t consecutiveGatewayFailure = 0;  // 502/503/504 answered, and our own failures
  int64_t baseEjectionMs = 10'000;
  int64_t maxEjectionMs = 300'000;
  uint32_t maxEjectionPercent = 50;  // of the upstream's backends, rounded down
  std::optional<SuccessRate> successRate;
};

struct UpstreamHealthSpec {
  std::string name;
  std::vector<std::string> backends;  // "host:port" ("[v6]:port"), in config order
  PassiveCheck passive;
  std::optional<ActiveCheck> active;
};

// Why a passive ejection happened; the `reason` label of the ejection metrics.
enum class EjectionReason : uint8_t {
  ConsecutiveFailures,
  Consecutive5xx,
  ConsecutiveGatewayFailure,
  SuccessRate,
};
inline constexpr std::size_t kEjectionReasonCount = 4;
// "consecutive_failures", "consecutive_5xx", "consecutive_gateway_failure", "success_rate"
std::string_view reasonName(EjectionReason reason);
using EjectionCounts = std::array<uint64_t, kEjectionReasonCount>;  // indexed by EjectionReason

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
  int lastProbeStatus = 0;                       // 0 = no status line (or no probe yet)
  std::string lastProbeError;                    // empty when the last probe passed (or none ran)
  int64_t ejectedUntilMs = 0;                    // 0 = not ejected
  std::optional<EjectionReason> ejectionReason;  // of the current ejection
  uint64_t ejections = 0;                        // since start
  uint64_t ejectionsRefused = 0;  // streaks that reached the threshold while the cap was full
};

struct UpstreamStatus {
  std::string name;
  bool activeCheck = false;
  bool anyUsable = true;
  std::vector<BackendStatus> backends;
  EjectionCounts ejections{};         // since start, summed over the backends, by reason
  EjectionCounts ejectionsRefused{};  // by the cap
};

// A success-rate ejection, as evaluateSuccessRates() reports it for the log.
struct SuccessRateEjection {
  std::size_t upstream = 0;
  std::size_t backend = 0;
  double successRate = 0;  // percent, over the interval
  double threshold = 0;    // percent: mean - stdev_factor x stdev
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
  // took). A success is relaxed loads (a store only if a streak was running). A failure is one
  // fetch_add per streak it extends; the one that completes a streak ejects the backend (under
  // the mutex) and returns the reason so the caller can log it, unless the ejection cap forbids
  // it: then the streaks start over and the refusal is counted. Failures reported while the
  // backend is already ejected are exchanges that were in flight: they do not count. With
  // success-rate detection on, each report is also one or two relaxed fetch_adds.
  void reportSuccess(std::size_t upstream, std::size_t backend);
  // Our own failure: connect, reset, timeout (as the forwarder judges it).
  std::optional<EjectionReason> reportFailure(std::size_t upstream, std::size_t backend,
                                              int64_t nowMs);
  // A complete response with `status`: below 500 a success, else a 5xx for the triggers.
  std::optional<EjectionReason> reportResponse(std::size_t upstream, std::size_t backend,
                                               int status, int64_t nowMs);

  // Success-rate detection, for every upstream whose interval has passed: ejects the outliers
  // (within the cap) and starts the next interval. Off the request path: one timer calls it.
  std::vector<SuccessRateEjection> evaluateSuccessRates(int64_t nowMs);
  // The shortest success-rate interval of any upstream (how often to call the above); 0: none.
  int64_t successRateIntervalMs() const;

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
    std::atomic<uint32_t> consecutive5xx{0};
    std::atomic<uint32_t> consecutiveGatewayFailures{0};
    // Success-rate detection's current interval.
    std::atomic<uint64_t> intervalRequests{0};
    std::atomic<uint64_t> intervalFailures{0};
    // Guarded by mutex_.
    int ejectionLevel = 0;  // the next ejection lasts base << level
    int64_t lastEjectionEndMs = 0;
    EjectionReason reason = EjectionReason::ConsecutiveFailures;  // of the last ejection
    double successRate = 0;  // a success-rate ejection's figures, for /status
    double successRateThreshold = 0;
    EjectionCounts ejections{};
    EjectionCounts ejectionsRefused{};
    int probeSuccesses = 0;
    int probeFailures = 0;
    int lastProbeStatus = 0;
    std::string lastProbeError;
  };
  struct Upstream {
    UpstreamHealthSpec spec;
    std::vector<Slot> slots;
    int64_t nextEvaluationMs = 0;  // success rate; guarded by mutex_
  };
  enum class Failure : uint8_t { Local, Gateway5xx, Other5xx };

  std::optional<EjectionReason> reportFailureKind(std::size_t upstream, std::size_t backend,
                                                  Failure failure, int64_t nowMs);
  void countForSuccessRate(const Upstream& upstream, Slot& slot, bool failed);
  void evaluateSuccessRate(Upstream& upstream, int64_t nowMs,
                           std::vector<SuccessRateEjection>& out);
  // Why `slot` is ejected, worded for /status. Under mutex_.
  static std::string ejectionText(const PassiveCheck& passive, const Slot& slot);
  // Ejects `backend` unless that would break the cap; returns whether it did. Under mutex_.
  bool tryEject(Upstream& upstream, std::size_t backend, EjectionReason reason, int64_t nowMs);
  // Under mutex_: whether one more passive ejection keeps the upstream within its cap.
  bool ejectionAllowed(const Upstream& upstream, std::size_t backend, int64_t nowMs) const;

  std::vector<Upstream> upstreams_;
  mutable std::mutex mutex_;
};

}  // namespace gw::upstream
