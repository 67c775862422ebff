#pragma once
// The keys that seal TLS session tickets (RFC 5077 layout: a 16-byte name, an AES-256-CBC key, an
// HMAC-SHA256 key), made at random by the process and never written anywhere. One TicketKeys
// lives as long as the process and is given to every net::TlsContext it builds, so a ticket
// issued before a configuration reload still resumes after it.

#include <chrono>
#include <mutex>
#include <optional>

namespace gw::net {

// A new current key every kLifetime; the one before it still opens tickets (which are then
// renewed), so a ticket is good for at most twice kLifetime and a stolen key opens at most that
// much past traffic. Shared by every worker's handshakes: a mutex (one short lock per sealed or
// opened ticket).
class TicketKeys {
 public:
  static constexpr std::chrono::seconds kLifetime{3600};
  struct Key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
  };
  using Clock = std::chrono::steady_clock;

  explicit TicketKeys(Clock::time_point now = Clock::now());
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  // The key new tickets are sealed with.
  Key current(Clock::time_point now);
  // The key named `name` if it still opens tickets; `renew`: it is the previous key, so the
  // client should get a new ticket.
  std::optional<Key> find(const unsigned char (&name)[16], Clock::time_point now, bool& renew);

 private:
  void rotateIfDue(Clock::time_point now);

  std::mutex mutex_;
  Key current_;
  std::optional<Key> previous_;
  Clock::time_point rotatedAt_;
};

}  // namespace gw::net
