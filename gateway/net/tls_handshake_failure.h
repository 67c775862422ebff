#pragma once
// Why a TLS handshake on a listener failed: a bounded set, the `reason` label of
// gatewayd_tls_handshake_failures_total. No OpenSSL here, so the metrics floor can name them.

#include <array>
#include <cstdint>
#include <string_view>

namespace gw::net {

enum class HandshakeFailure : uint8_t {
  Timeout,                // not finished within the listener's handshake_timeout
  ProtocolVersion,        // the client offers no version the listener accepts (TLS 1.1 and older)
  NoSharedCipher,         // no cipher suite or key-exchange group in common
  NoApplicationProtocol,  // the client's ALPN offer lacks http/1.1
  CertificateRejected,    // the client refused our certificate (a certificate alert)
  Closed,                 // the client closed or reset the connection in the middle
  Other,                  // anything else: not TLS at all, a malformed message, ...
};

inline constexpr std::array<std::string_view, 7> kHandshakeFailureNames = {
    "timeout",
    "protocol_version",
    "no_shared_cipher",
    "no_application_protocol",
    "certificate_rejected",
    "closed",
    "other"};

}  // namespace gw::net
