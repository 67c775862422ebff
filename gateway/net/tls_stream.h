#pragma once
// One TLS connection, server side (a listener's) or client side (toward a backend), straight on
// its non-blocking socket (OpenSSL reads and
// writes the fd itself; no memory BIOs, no second copy of the bytes). The handshake and every
// read and write return at once: "wants read" / "wants write" tell the caller which socket event
// to wait for. Writes come from a core::OutQueue as its Sink.

#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/core/out_queue.h"
#include "gateway/net/tls_client.h"
#include "gateway/net/tls_context.h"
#include "gateway/net/tls_handshake_failure.h"

struct ssl_st;

namespace gw::net {

class TlsStream final : public core::OutQueue::Sink {
 public:
  enum class Progress : uint8_t { Done, WantRead, WantWrite, Failed };

  // Takes the accepted socket's fd (it stays owned by the caller).
  TlsStream(std::shared_ptr<const TlsContext> context, int fd);
  // The client side on a connected socket's fd (owned by the caller), toward a backend at
  // `backendHost`: SNI and the verified name are context.peerName(backendHost). Resumes the
  // session in `session` if it holds one, and puts each new one the backend gives there; the
  // slot must outlive the stream.
  TlsStream(std::shared_ptr<const TlsClientContext> context, int fd, std::string_view backendHost,
            TlsSession& session);
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  Progress handshake();
  // After handshake() gave Failed: why (never Timeout; the caller keeps the time). None when
  // the client closed before sending a byte: a TCP probe, not a handshake.
  std::optional<HandshakeFailure> failure() const { return failure_; }
  // After handshake() gave Done: the session was resumed (a ticket, or the client side's saved
  // session) instead of a full handshake.
  bool resumed() const;
  // Server side only: how long a client may take to finish the handshake.
  std::chrono::milliseconds handshakeTimeout() const { return context_->handshakeTimeout(); }
  // After handshake() Failed: why, for a log or an error message ("certificate verify failed:
  // hostname mismatch").
  std::string failureMessage() const;
  // As recv(2): the bytes read, 0 when the peer closed, or -1 with errno (EAGAIN: nothing to
  // read now; see readWantsWrite()).
  ssize_t read(char* data, std::size_t size);
  // After read() gave EAGAIN: OpenSSL must write before it can read on (it answers a TLS 1.3
  // KeyUpdate), so the caller retries the read when the socket is writable.
  bool readWantsWrite() const { return readWantsWrite_; }
  // Bytes wait inside OpenSSL (decrypted, or whole records read ahead of what was asked): the
  // socket will not say so, the caller reads again.
  bool hasBufferedInput() const;
  // Sends close_notify once, without waiting for the peer's (the socket closes next).
  void shutdown();

  // core::OutQueue::Sink: at most one record per SSL_write, small pieces gathered into one.
  ssize_t writev(const iovec* iov, int count) override;
  std::size_t committed() const override { return pendingWrite_; }

  // The largest plaintext of one TLS record (RFC 8446 §5.1).
  static constexpr std::size_t kMaxRecord = 16 * 1024;

 private:
  std::shared_ptr<const TlsContext> context_;  // server side: its callbacks run in our handshake
  std::shared_ptr<const TlsClientContext> clientContext_;  // client side
  ssl_st* ssl_;
  long verifyResult_ = 0;          // X509_V_OK
  unsigned long failureCode_ = 0;  // OpenSSL's error code when the handshake failed
  // Bytes of a record OpenSSL has sealed but not yet sent: the next write offers exactly these.
  std::size_t pendingWrite_ = 0;
  bool readWantsWrite_ = false;
  bool shutdownSent_ = false;
  std::optional<HandshakeFailure> failure_;
};

}  // namespace gw::net
