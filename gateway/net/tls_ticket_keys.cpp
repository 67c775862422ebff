#include "gateway/net/tls_ticket_keys.h"

#include <openssl/err.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace gw::net {

namespace {

TicketKeys::Key randomKey() {
  TicketKeys::Key key;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&key), sizeof key) != 1) {
    ERR_clear_error();
    throw std::runtime_error("no random bytes for a session ticket key");
  }
  return key;
}

}  // namespace

TicketKeys::TicketKeys(Clock::time_point now) : current_(randomKey()), rotatedAt_(now) {}

void TicketKeys::rotateIfDue(Clock::time_point now) {
  if (now - rotatedAt_ < kLifetime) return;
  // Unused for two lifetimes: both keys are stale.
  previous_.reset();
  if (now - rotatedAt_ < 2 * kLifetime) previous_ = current_;
  current_ = randomKey();
  rotatedAt_ = now;
}

TicketKeys::Key TicketKeys::current(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  rotateIfDue(now);
  return current_;
}

std::optional<TicketKeys::Key> TicketKeys::find(const unsigned char (&name)[16],
                                                Clock::time_point now, bool& renew) {
  std::lock_guard lock(mutex_);
  rotateIfDue(now);
  renew = false;
  if (std::memcmp(name, current_.name, sizeof name) == 0) return current_;
  if (previous_ && std::memcmp(name, previous_->name, sizeof name) == 0) {
    renew = true;
    return previous_;
  }
  return std::nullopt;
}

}  // namespace gw::net
