#pragma once
// The client side of TLS toward backends (an upstream's `tls:`), built once per loaded
// configuration and shared by every worker and the prober (an SSL_CTX is safe to use from many
// threads): the backend's chain verified against ca_file or the system's store, its name checked
// (a DNS name, or an IP literal against the certificate's IP addresses), TLS 1.2 or newer,
// optionally a client certificate. Each connection is a net::TlsStream in client mode; the
// sessions it is given land in a TlsSession slot so the next connection to that backend resumes.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/net/tls_options.h"

struct ssl_ctx_st;
struct ssl_session_st;

namespace gw::net {

// A problem with one file of TlsClientOptions, for the caller to locate (FILE:LINE:COL).
struct TlsClientProblem {
  enum class Part : uint8_t { CaFile, Certificate, Key };
  Part part;
  std::string message;
};

// The last session a backend gave, kept for the next connection to it. Used by one thread only
// (a worker's cluster, the prober's loop).
class TlsSession {
 public:
  TlsSession() = default;
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  bool empty() const { return session_ == nullptr; }
  ssl_session_st* get() const { return session_; }
  // Takes ownership of `session` (one reference), dropping the one held before.
  void reset(ssl_session_st* session);

 private:
  ssl_session_st* session_ = nullptr;
};

class TlsClientContext {
 public:
  // Reads the CA bundle (or the system's store) and the client certificate and key. Null after
  // adding at least one problem.
  static std::shared_ptr<const TlsClientContext> create(const TlsClientOptions& options,
                                                        std::vector<TlsClientProblem>& problems);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  ssl_ctx_st* context() const { return context_; }
  // The name a connection to a backend at `backendHost` sends as SNI and verifies.
  std::string_view peerName(std::string_view backendHost) const {
    return serverName_.empty() ? backendHost : std::string_view(serverName_);
  }

 private:
  TlsClientContext() = default;

  ssl_ctx_st* context_ = nullptr;  // owned
  std::string serverName_;
};

}  // namespace gw::net
