#include "gateway/core/accept_pause.h"

#include <cerrno>
#include <chrono>
#include <cstring>

#include "gateway/core/log.h"

namespace gw::core {

namespace {
constexpr int64_t kNewEpisodeAfterMs = 10 * AcceptPause::kRetryDelayMs;

int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

AcceptPause::AcceptPause(event_base* base, std::string listener)
    : listener_(std::move(listener)), retryTimer_(evtimer_new(base, &AcceptPause::onRetry, this)) {}

bool AcceptPause::pauseOn(int error, std::span<const EventPtr> events) {
  if (error != EMFILE && error != ENFILE && error != ENOBUFS && error != ENOMEM) return false;
  const int64_t now = steadyMs();
  // Failures at every retry are one episode; one after a quiet spell (the waiting clients gave
  // up, so no accept() told whether it had ended) starts another.
  if (pausedSinceMs_ < 0 || now - lastFailureMs_ > kNewEpisodeAfterMs) {
    pausedSinceMs_ = now;
    log::error("cannot accept connections: pausing the listener",
               {{"listener", listener_},
                {"error", std::strerror(error)},
                {"retry_every_ms", std::to_string(kRetryDelayMs)}});
  }
  lastFailureMs_ = now;
  paused_.clear();
  for (const EventPtr& event : events) {
    event_del(event.get());
    paused_.push_back(event.get());
  }
  constexpr timeval kRetryDelay{0, kRetryDelayMs * 1000};
  evtimer_add(retryTimer_.get(), &kRetryDelay);
  return true;
}

void AcceptPause::onRetry(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<AcceptPause*>(arg);
  // The events fire at once if connections are waiting; their accept() decides what comes next.
  for (event* event : self->paused_) event_add(event, nullptr);
  self->paused_.clear();
}

void AcceptPause::resumed() {
  log::info("accepting connections again",
            {{"listener", listener_}, {"paused_ms", std::to_string(steadyMs() - pausedSinceMs_)}});
  pausedSinceMs_ = -1;
}

void AcceptPause::cancel() {
  evtimer_del(retryTimer_.get());
  paused_.clear();
  pausedSinceMs_ = -1;
}

}  // namespace gw::core
