#pragma once
// A TLS client for the integration tests, on OpenSSL directly: the test chooses the versions,
// the server name, the ALPN offer and the CA, and sees what the server chose. Blocking I/O on a
// loopback socket with every wait bounded.

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gw::it {

struct TlsClientOptions {
  std::string caFile;      // verify the server's certificate against it ("" = no verification)
  std::string serverName;  // SNI ("" = none)
  int minVersion = 0;      // e.g. TLS1_1_VERSION; 0 = OpenSSL's default
  int maxVersion = 0;
  std::vector<std::string> alpn;  // offered protocols, in order
  SSL_SESSION* resume = nullptr;  // a session to resume (not owned)
};

class TlsClient {
 public:
  TlsClient(uint16_t port, const TlsClientOptions& options);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // True once the handshake completed; otherwise error() says why (OpenSSL's reason).
  bool handshake(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  const std::string& error() const { return error_; }
  // The CN of the certificate the server presented.
  std::string peerCommonName() const;
  std::string alpnSelected() const;
  bool sessionReused() const { return SSL_session_reused(ssl_) == 1; }
  SSL_SESSION* session() const { return SSL_get_session(ssl_); }
  const char* version() const { return SSL_get_version(ssl_); }

  bool send(std::string_view bytes);
  // Everything the server sends until it closes (send requests with Connection: close).
  std::string readAll(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

 private:
  // Waits until the socket is ready for what OpenSSL asked; false at the deadline.
  bool wait(int sslError, std::chrono::steady_clock::time_point deadline);

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  std::string error_;
};

// "HTTP/1.1 200 OK\r\n...\r\n\r\nbody" split: the status code, the head, the body.
struct PlainResponse {
  int status = 0;
  std::string head;
  std::string body;
};
PlainResponse splitResponse(const std::string& raw);

}  // namespace gw::it
