#pragma once
// A TLS listener's server side, built once per loaded configuration and shared by every worker
// (an SSL_CTX is safe to use from many threads): one OpenSSL context per certificate, the client's
// SNI choosing among them, TLS 1.2/1.3 only, ALPN http/1.1 only, and session tickets whose keys
// the process rotates. OpenSSL stays behind this header and net/tls_stream.h.

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/net/tls_options.h"

struct ssl_ctx_st;

namespace gw::net {

// A problem with one part of TlsOptions, for the caller to locate (FILE:LINE:COL).
struct TlsProblem {
  enum class Part : uint8_t { Chain, Key, Ciphers, Ciphersuites };
  Part part;
  std::size_t certificate = 0;  // for Chain and Key
  std::string message;
};

// The keys that seal session tickets (RFC 5077 layout: a 16-byte name, an AES-256-CBC key, an
// HMAC-SHA256 key), made at random by the process and never written anywhere. A new current key
// every kLifetime; the one before it still opens tickets (which are then renewed), so a ticket
// is good for at most twice kLifetime and a stolen key opens at most that much past traffic.
// Shared by the workers' handshakes: a mutex (one short lock per resumed or new session).
class TicketKeys {
 public:
  static constexpr std::chrono::seconds kLifetime{3600};
  struct Key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
  };
  using Clock = std::chrono::steady_clock;

  explicit TicketKeys(Clock::time_point now);
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

class TlsContext {
 public:
  // Reads and checks every certificate and key (PEM files, each key matching its certificate)
  // and the cipher lists. Null after adding at least one problem.
  static std::shared_ptr<const TlsContext> create(const TlsOptions& options,
                                                  std::vector<TlsProblem>& problems);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // What a new connection starts with: the first certificate's context, which owns the SNI
  // switch and the session tickets.
  ssl_ctx_st* initial() const { return contexts_.front(); }
  // The context whose certificate names `serverName` (wildcards included), or null.
  ssl_ctx_st* forServerName(std::string_view serverName) const;
  std::chrono::milliseconds handshakeTimeout() const { return handshakeTimeout_; }
  TicketKeys& ticketKeys() const { return *ticketKeys_; }

 private:
  TlsContext() = default;

  std::vector<ssl_ctx_st*> contexts_;  // owned, one per certificate, in configuration order
  std::chrono::milliseconds handshakeTimeout_{};
  std::unique_ptr<TicketKeys> ticketKeys_;
};

}  // namespace gw::net
