#include "gateway/core/graveyard.h"

namespace gw::core {

Graveyard::Graveyard(event_base* base)
    : reaper_(event_new(base, -1, 0, &Graveyard::onReap, this)) {}

void Graveyard::bury(std::unique_ptr<Retirable> object) {
  dead_.push_back(std::move(object));
  if (!scheduled_) {
    scheduled_ = true;
    event_active(reaper_.get(), EV_TIMEOUT, 0);
  }
}

void Graveyard::reap() {
  scheduled_ = false;
  // Destructors may bury more objects; keep going until none are left.
  while (!dead_.empty()) {
    std::vector<std::unique_ptr<Retirable>> batch;
    batch.swap(dead_);
  }
}

void Graveyard::onReap(evutil_socket_t, short, void* arg) { static_cast<Graveyard*>(arg)->reap(); }

}  // namespace gw::core
