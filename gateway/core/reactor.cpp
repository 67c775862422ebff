#include "gateway/core/reactor.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

namespace gw::core {

Reactor::Reactor() {
  event_config* cfg = event_config_new();
  // Each loop is owned by one thread: libevent's own locking would only cost.
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  base_.reset(event_base_new_with_config(cfg));
  event_config_free(cfg);
  if (!base_) throw std::runtime_error("event_base_new failed");
  wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) throw std::runtime_error("eventfd failed");
  wakeEvent_.reset(event_new(base_.get(), wakeFd_, EV_READ | EV_PERSIST, &Reactor::onWakeup, this));
  event_add(wakeEvent_.get(), nullptr);
}

Reactor::~Reactor() {
  join();
  wakeEvent_.reset();
  if (wakeFd_ >= 0) ::close(wakeFd_);
}

void Reactor::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wakeFd_, &one, sizeof one);
}

void Reactor::run() { event_base_loop(base_.get(), 0); }

void Reactor::start() {
  thread_ = std::thread([this] { run(); });
}

void Reactor::stop() { event_base_loopbreak(base_.get()); }

void Reactor::join() {
  if (thread_.joinable()) thread_.join();
}

void Reactor::onWakeup(evutil_socket_t fd, short, void* arg) {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(fd, &count, sizeof count);
  static_cast<Reactor*>(arg)->drainPosted();
}

void Reactor::drainPosted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

}  // namespace gw::core
