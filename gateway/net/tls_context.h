#pragma once
// A TLS listener's server side, built once per loaded configuration and shared by every worker
// (an SSL_CTX is safe to use from many threads): one OpenSSL context per certificate, the client's
// SNI choosing among them, TLS 1.2/1.3 only, ALPN http/1.1 only, and session tickets whose keys
// the process rotates (net/tls_ticket_keys.h). OpenSSL stays behind this header and
// net/tls_stream.h.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/net/tls_options.h"
#include "gateway/net/tls_ticket_keys.h"

struct ssl_ctx_st;

namespace gw::net {

// A problem with one part of TlsOptions, for the caller to locate (FILE:LINE:COL).
struct TlsProblem {
  enum class Part : uint8_t { Chain, Key, Ciphers, Ciphersuites };
  Part part;
  std::size_t certificate = 0;  // for Chain and Key
  std::string message;
};

class TlsContext {
 public:
  // Reads and checks every certificate and key (PEM files, each key matching its certificate)
  // and the cipher lists. Null after adding at least one problem. `ticketKeys`: the process's
  // (a context built on a reload takes the same, so its clients' tickets still resume); null:
  // keys of its own, for a context nothing replaces.
  static std::shared_ptr<const TlsContext> create(const TlsOptions& options,
                                                  std::vector<TlsProblem>& problems,
                                                  std::shared_ptr<TicketKeys> ticketKeys = nullptr);
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
  std::shared_ptr<TicketKeys> ticketKeys_;
};

}  // namespace gw::net
