#pragma once
// What gatewayd tells its service manager, in systemd's Type=notify protocol (sent by libsystemd's
// sd_notify to $NOTIFY_SOCKET; nothing is sent when the variable is unset): READY=1 once it serves,
// RELOADING=1 while a reload builds the next configuration, STOPPING=1 when the drain starts,
// WATCHDOG=1 while every event loop answers, and a STATUS= line for `systemctl status` with each.
// Main thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace gw::runtime {

class ServiceNotifier {
 public:
  // Where each message goes, one datagram per call.
  using Send = std::function<void(const std::string& message)>;

  // To $NOTIFY_SOCKET, through sd_notify.
  ServiceNotifier();
  // To `send`, with `monotonicUs` read for MONOTONIC_USEC (tests).
  ServiceNotifier(Send send, std::function<int64_t()> monotonicUs);

  // Serving: once every listener accepts after start-up, and again after each reload (applied
  // or refused), which ends the "reloading" state systemd entered at reloading().
  void ready(std::string_view status);
  // A reload begins. MONOTONIC_USEC (CLOCK_MONOTONIC) lets systemd 252 tell this reload's
  // RELOADING=1 from an earlier one.
  void reloading(std::string_view status);
  // The drain begins: systemd shows the unit as deactivating while it lasts.
  void stopping(std::string_view status);
  void status(std::string_view status);
  // An upgrade: process `pid` (our child) serves from now on and is the service's main process;
  // with NotifyAccess=main systemd takes its messages, no longer ours, from here on.
  void handOver(int pid, std::string_view status);
  // Alive: resets systemd's WatchdogSec= timer.
  void watchdog();

 private:
  Send send_;
  std::function<int64_t()> monotonicUs_;
};

// The STATUS= line of `status`: one line (a line break would end the field and start a bogus
// one), at most kMaxStatusBytes.
inline constexpr std::size_t kMaxStatusBytes = 512;
std::string statusField(std::string_view status);

// The interval systemd expects WATCHDOG=1 within (WatchdogSec=, passed as $WATCHDOG_USEC for
// this process's $WATCHDOG_PID), or nullopt when no watchdog is asked for.
std::optional<std::chrono::microseconds> serviceWatchdogInterval();

}  // namespace gw::runtime
