#include "gateway/net/tls_stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

namespace gw::net {

namespace {

// What a failed call means for the caller, with OpenSSL's error queue emptied (it is
// per thread: a leftover entry would be blamed on the next connection of this worker).
enum class Outcome : uint8_t { WantRead, WantWrite, Closed, Failed };

Outcome judge(SSL* ssl, int result) {
  const int error = SSL_get_error(ssl, result);
  ERR_clear_error();
  switch (error) {
    case SSL_ERROR_WANT_READ:
      return Outcome::WantRead;
    case SSL_ERROR_WANT_WRITE:
      return Outcome::WantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Outcome::Closed;
    default:
      return Outcome::Failed;
  }
}

// The first entry of OpenSSL's error queue after a failed handshake (0: the socket failed or
// hit its end), as a metric's reason.
HandshakeFailure failureOf(unsigned long error) {
  if (error == 0) return HandshakeFailure::Closed;
  if (ERR_GET_LIB(error) != ERR_LIB_SSL) return HandshakeFailure::Other;
  switch (ERR_GET_REASON(error)) {
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return HandshakeFailure::Closed;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
      return HandshakeFailure::ProtocolVersion;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
      return HandshakeFailure::NoSharedCipher;
    case SSL_R_NO_APPLICATION_PROTOCOL:
      return HandshakeFailure::NoApplicationProtocol;
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      return HandshakeFailure::CertificateRejected;
    default:
      return HandshakeFailure::Other;
  }
}

// Walks the bytes of an iovec array.
class IovCursor {
 public:
  IovCursor(const iovec* iov, int count) : iov_(iov), end_(iov + count) { skipEmpty(); }
  bool done() const { return iov_ == end_; }
  std::size_t contiguous() const { return iov_->iov_len - offset_; }
  const char* data() const { return static_cast<const char*>(iov_->iov_base) + offset_; }
  std::size_t remaining() const {
    std::size_t total = contiguous();
    for (const iovec* i = iov_ + 1; i != end_; ++i) total += i->iov_len;
    return total;
  }
  // Copies the next n bytes into out without moving.
  void peek(char* out, std::size_t n) const {
    const iovec* i = iov_;
    std::size_t offset = offset_;
    while (n > 0) {
      const std::size_t take = std::min(n, i->iov_len - offset);
      std::memcpy(out, static_cast<const char*>(i->iov_base) + offset, take);
      out += take;
      n -= take;
      ++i;
      offset = 0;
    }
  }
  void advance(std::size_t n) {
    while (n > 0) {
      const std::size_t take = std::min(n, contiguous());
      offset_ += take;
      n -= take;
      skipEmpty();
    }
  }

 private:
  void skipEmpty() {
    while (iov_ != end_ && offset_ == iov_->iov_len) {
      ++iov_;
      offset_ = 0;
    }
  }
  const iovec* iov_;
  const iovec* end_;
  std::size_t offset_ = 0;
};

SSL* newSsl(SSL_CTX* context, int fd) {
  SSL* ssl = SSL_new(context);
  if (!ssl || SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    ERR_clear_error();
    throw std::bad_alloc();
  }
  return ssl;
}

}  // namespace

TlsStream::TlsStream(std::shared_ptr<const TlsContext> context, int fd)
    : context_(std::move(context)), ssl_(newSsl(context_->initial(), fd)) {
  SSL_set_accept_state(ssl_);
}

TlsStream::TlsStream(std::shared_ptr<const TlsClientContext> context, int fd,
                     std::string_view backendHost, TlsSession& session)
    : clientContext_(std::move(context)), ssl_(newSsl(clientContext_->context(), fd)) {
  SSL_set_connect_state(ssl_);
  SSL_set_app_data(ssl_, &session);  // where tls_client.cpp's new-session callback puts sessions
  const std::string name(clientContext_->peerName(backendHost));
  // An IP literal is checked against the certificate's IP addresses and never sent as SNI
  // (RFC 6066 §3); anything else is a DNS name for both.
  if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str()) != 1) {
    ERR_clear_error();
    if (SSL_set_tlsext_host_name(ssl_, name.c_str()) != 1 ||
        SSL_set1_host(ssl_, name.c_str()) != 1) {
      SSL_free(ssl_);
      ERR_clear_error();
      throw std::bad_alloc();
    }
    SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  if (!session.empty()) SSL_set_session(ssl_, session.get());
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

TlsStream::Progress TlsStream::handshake() {
  const int result = SSL_do_handshake(ssl_);
  if (result == 1) return Progress::Done;
  // Read before judge() empties the queue: the first error classifies a client's failure, the
  // last one words a backend's.
  const unsigned long error = ERR_peek_error();
  const unsigned long code = ERR_peek_last_error();
  switch (judge(ssl_, result)) {
    case Outcome::WantRead:
      return Progress::WantRead;
    case Outcome::WantWrite:
      return Progress::WantWrite;
    default:
      if (BIO_number_read(SSL_get_rbio(ssl_)) != 0) failure_ = failureOf(error);
      failureCode_ = code;
      verifyResult_ = SSL_get_verify_result(ssl_);
      return Progress::Failed;
  }
}

std::string TlsStream::failureMessage() const {
  if (verifyResult_ != X509_V_OK) {
    return std::string("certificate verify failed: ") +
           X509_verify_cert_error_string(verifyResult_);
  }
  const char* reason = failureCode_ != 0 ? ERR_reason_error_string(failureCode_) : nullptr;
  if (reason == nullptr) return "connection closed during the TLS handshake";
  return std::string("TLS handshake failed: ") + reason;
}

bool TlsStream::resumed() const { return SSL_session_reused(ssl_) == 1; }

ssize_t TlsStream::read(char* data, std::size_t size) {
  readWantsWrite_ = false;
  std::size_t read = 0;
  const int result = SSL_read_ex(ssl_, data, size, &read);
  if (result == 1) return static_cast<ssize_t>(read);
  switch (judge(ssl_, result)) {
    case Outcome::WantWrite:
      readWantsWrite_ = true;
      [[fallthrough]];
    case Outcome::WantRead:
      errno = EAGAIN;
      return -1;
    case Outcome::Closed:
      return 0;
    case Outcome::Failed:
      break;
  }
  errno = ECONNRESET;
  return -1;
}

bool TlsStream::hasBufferedInput() const { return SSL_has_pending(ssl_) == 1; }

void TlsStream::shutdown() {
  if (shutdownSent_) return;
  shutdownSent_ = true;
  // Only after a completed handshake; the result does not matter (we close either way).
  if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ERR_clear_error();
}

ssize_t TlsStream::writev(const iovec* iov, int count) {
  IovCursor in(iov, count);
  std::size_t taken = 0;
  char gathered[kMaxRecord];
  while (!in.done()) {
    // A blocked record must be offered again with the same bytes: they are still at the front.
    const std::size_t length =
        pendingWrite_ != 0 ? pendingWrite_ : std::min(in.remaining(), kMaxRecord);
    if (length > in.remaining()) {
      errno = EPROTO;  // the queue lost bytes OpenSSL holds: the stream cannot go on
      return -1;
    }
    const char* bytes = in.data();
    if (in.contiguous() < length) {
      // Small pieces (a head, then a short body) go out in one record, as one write would.
      in.peek(gathered, length);
      bytes = gathered;
    }
    std::size_t written = 0;
    const int result = SSL_write_ex(ssl_, bytes, length, &written);
    if (result == 1) {
      pendingWrite_ = 0;
      in.advance(written);
      taken += written;
      continue;
    }
    const Outcome outcome = judge(ssl_, result);
    if (outcome == Outcome::WantWrite || outcome == Outcome::WantRead) {
      pendingWrite_ = length;
      if (taken > 0) return static_cast<ssize_t>(taken);
      errno = EAGAIN;
      return -1;
    }
    errno = EPIPE;
    return -1;
  }
  return static_cast<ssize_t>(taken);
}

}  // namespace gw::net
