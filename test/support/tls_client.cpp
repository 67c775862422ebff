#include "test/support/tls_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace gw::it {

namespace {
std::string lastReason() {
  const unsigned long code = ERR_peek_last_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  ERR_clear_error();
  return reason ? reason : "no OpenSSL reason (the peer closed?)";
}
}  // namespace

TlsClient::TlsClient(uint16_t port, const TlsClientOptions& options)
    : ctx_(SSL_CTX_new(TLS_client_method())) {
  // Security level 0, so that a TLS 1.1 offer is the server's to refuse, not ours.
  SSL_CTX_set_security_level(ctx_, 0);
  SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0");
  if (options.minVersion) SSL_CTX_set_min_proto_version(ctx_, options.minVersion);
  if (options.maxVersion) SSL_CTX_set_max_proto_version(ctx_, options.maxVersion);
  if (!options.caFile.empty()) {
    SSL_CTX_load_verify_locations(ctx_, options.caFile.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  if (!options.alpn.empty()) {
    std::string wire;
    for (const std::string& protocol : options.alpn) {
      wire += static_cast<char>(protocol.size());
      wire += protocol;
    }
    SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
  }
  ssl_ = SSL_new(ctx_);
  if (!options.serverName.empty()) {
    SSL_set_tlsext_host_name(ssl_, options.serverName.c_str());
    SSL_set1_host(ssl_, options.serverName.c_str());
  } else if (!options.caFile.empty()) {
    SSL_set1_host(ssl_, "127.0.0.1");
  }
  if (options.resume) SSL_set_session(ssl_, options.resume);
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  ::fcntl(fd_, F_SETFL, O_NONBLOCK);
  SSL_set_fd(ssl_, fd_);
  SSL_set_connect_state(ssl_);
}

TlsClient::~TlsClient() {
  SSL_free(ssl_);
  SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

bool TlsClient::wait(int sslError, std::chrono::steady_clock::time_point deadline) {
  if (sslError != SSL_ERROR_WANT_READ && sslError != SSL_ERROR_WANT_WRITE) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, static_cast<short>(sslError == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
}

bool TlsClient::handshake(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const int result = SSL_do_handshake(ssl_);
    if (result == 1) return true;
    const int sslError = SSL_get_error(ssl_, result);
    if (!wait(sslError, deadline)) {
      error_ = sslError == SSL_ERROR_WANT_READ || sslError == SSL_ERROR_WANT_WRITE ? "timeout"
                                                                                   : lastReason();
      return false;
    }
  }
}

std::string TlsClient::peerCommonName() const {
  X509* certificate = SSL_get1_peer_certificate(ssl_);
  if (!certificate) return {};
  char name[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name, sizeof name);
  X509_free(certificate);
  return name;
}

std::string TlsClient::alpnSelected() const {
  const unsigned char* data = nullptr;
  unsigned length = 0;
  SSL_get0_alpn_selected(ssl_, &data, &length);
  return std::string(reinterpret_cast<const char*>(data), length);
}

bool TlsClient::send(std::string_view bytes) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!bytes.empty()) {
    std::size_t written = 0;
    const int result = SSL_write_ex(ssl_, bytes.data(), bytes.size(), &written);
    if (result == 1) {
      bytes.remove_prefix(written);
      continue;
    }
    if (!wait(SSL_get_error(ssl_, result), deadline)) return false;
  }
  return true;
}

std::string TlsClient::readAll(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out;
  char buffer[64 * 1024];
  for (;;) {
    std::size_t read = 0;
    const int result = SSL_read_ex(ssl_, buffer, sizeof buffer, &read);
    if (result == 1) {
      out.append(buffer, read);
      continue;
    }
    if (!wait(SSL_get_error(ssl_, result), deadline)) break;  // closed (or out of time)
  }
  ERR_clear_error();
  return out;
}

PlainResponse splitResponse(const std::string& raw) {
  PlainResponse response;
  const std::size_t end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || end == std::string::npos) return response;
  response.status = std::stoi(raw.substr(9, 3));
  response.head = raw.substr(0, end + 2);
  response.body = raw.substr(end + 4);
  return response;
}

}  // namespace gw::it
