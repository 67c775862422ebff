#include "gateway/runtime/service_notifier.h"

#include <systemd/sd-daemon.h>

#include <cstring>
#include <utility>

#include "gateway/core/clock.h"
#include "gateway/core/log.h"

namespace gw::runtime {

namespace {

void sendToServiceManager(const std::string& message) {
  // 0: $NOTIFY_SOCKET unset (not started by systemd), nothing to do. An error is logged and
  // otherwise ignored: the service manager is told, never obeyed.
  const int sent = sd_notify(0, message.c_str());
  if (sent < 0) {
    core::log::warn("cannot notify the service manager",
                    {{"message", message}, {"error", std::strerror(-sent)}});
  }
}

}  // namespace

ServiceNotifier::ServiceNotifier() : ServiceNotifier(&sendToServiceManager, &core::monotonicUs) {}

ServiceNotifier::ServiceNotifier(Send send, std::function<int64_t()> monotonicUs)
    : send_(std::move(send)), monotonicUs_(std::move(monotonicUs)) {}

void ServiceNotifier::ready(std::string_view status) { send_("READY=1\n" + statusField(status)); }

void ServiceNotifier::reloading(std::string_view status) {
  send_("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonicUs_()) + "\n" +
        statusField(status));
}

void ServiceNotifier::stopping(std::string_view status) {
  send_("STOPPING=1\n" + statusField(status));
}

void ServiceNotifier::status(std::string_view status) { send_(statusField(status)); }

void ServiceNotifier::handOver(int pid, std::string_view status) {
  send_("MAINPID=" + std::to_string(pid) + "\n" + statusField(status));
}

void ServiceNotifier::watchdog() { send_("WATCHDOG=1"); }

std::string statusField(std::string_view status) {
  std::string field = "STATUS=";
  for (char c : status.substr(0, kMaxStatusBytes)) field += (c == '\n' || c == '\r') ? ' ' : c;
  return field;
}

std::optional<std::chrono::microseconds> serviceWatchdogInterval() {
  uint64_t usec = 0;
  // > 0 only when $WATCHDOG_USEC is set and $WATCHDOG_PID (if set) names this process.
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

}  // namespace gw::runtime
