#pragma once
// Whether gatewayd may tell systemd it is alive (WatchdogSec=): only while every worker's event
// loop answers a heartbeat in time. The main loop alone answering is not enough: a worker stuck
// in one callback (a busy loop, a blocking call) serves nobody on its connections, and the pings
// stopping is what gets the service restarted.
//
// The main loop calls tick() every half interval. Each tick posts a heartbeat to every running
// worker that has none outstanding, and pings unless some worker's heartbeat has waited for the
// whole interval: that worker is logged as stuck (once), and pings resume if it answers after all.
// Main thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace gw::runtime {

class Watchdog {
 public:
  // The workers as the watchdog reaches them (runtime::Server; a fake in tests).
  class Workers {
   public:
    virtual std::size_t count() const = 0;
    // False once a worker's loop has ended on purpose (drained): it owes no answer.
    virtual bool running(std::size_t index) const = 0;
    // Posts a heartbeat to worker `index`; its loop answers by having `answered` run on the main
    // thread.
    virtual void sendHeartbeat(std::size_t index, std::function<void()> answered) = 0;

   protected:
    ~Workers() = default;
  };

  // `nowUs` is a monotonic clock; `ping` tells the service manager all is well.
  Watchdog(Workers& workers, std::chrono::microseconds interval, std::function<int64_t()> nowUs,
           std::function<void()> ping);

  std::chrono::microseconds tickInterval() const { return interval_ / 2; }
  void tick();
  // The workers whose heartbeat has waited for longer than the interval, as of the last tick.
  std::vector<std::size_t> stuck() const;

 private:
  struct Heartbeat {
    bool outstanding = false;
    int64_t sentUs = 0;
    bool stuck = false;  // logged as stuck, not answered since
  };
  void answered(std::size_t index);

  Workers& workers_;
  const std::chrono::microseconds interval_;
  std::function<int64_t()> nowUs_;
  std::function<void()> ping_;
  std::vector<Heartbeat> heartbeats_;
};

}  // namespace gw::runtime
