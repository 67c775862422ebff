#pragma once
// What a TLS listener and an upstream's TLS client side are built from: plain values the
// configuration holds (config/model.h) and net/tls_context and net/tls_client turn into OpenSSL
// contexts. No OpenSSL here, so the config floor stays free of it.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gw::net {

enum class TlsVersion : uint8_t { Tls12, Tls13 };

// Mozilla's "intermediate" TLS 1.2 list without the finite-field DHE suites: forward-secret
// ECDHE key exchange and AEAD ciphers only.
inline constexpr std::string_view kDefaultTlsCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// Every TLS 1.3 suite OpenSSL enables by default, in its order.
inline constexpr std::string_view kDefaultTlsCiphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

struct TlsOptions {
  struct Certificate {
    std::string chainPath;  // PEM: the certificate, then its intermediates
    std::string keyPath;    // PEM: its private key (unencrypted)
  };
  // Chosen by the client's SNI among each certificate's DNS names; the first when none matches.
  std::vector<Certificate> certificates;
  TlsVersion minVersion = TlsVersion::Tls12;
  TlsVersion maxVersion = TlsVersion::Tls13;
  std::string ciphers{kDefaultTlsCiphers};            // TLS 1.2, OpenSSL cipher-list syntax
  std::string ciphersuites{kDefaultTlsCiphersuites};  // TLS 1.3
  std::chrono::milliseconds handshakeTimeout{10'000};
  bool sessionTickets = true;
};

// What an upstream's TLS client side is built from (an upstream's `tls:`).
struct TlsClientOptions {
  // Check the backend's certificate chain and name; false accepts any certificate.
  bool verify = true;
  std::string caFile;  // PEM bundle of trusted CAs; empty: the system's store
  // The name sent as SNI and checked against the certificate; empty: each backend's host. An IP
  // literal is checked against the certificate's IP addresses and is not sent as SNI.
  std::string serverName;
  // A client certificate for backends that ask for one (mTLS): both or neither.
  std::string certificatePath;  // PEM: the certificate, then its intermediates
  std::string keyPath;          // PEM: its private key (unencrypted)
  TlsVersion minVersion = TlsVersion::Tls12;
};

}  // namespace gw::net
