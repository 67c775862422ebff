#include "gateway/net/tls_context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "gateway/net/tls_openssl.h"

namespace gw::net {

namespace {

// A certificate chain or key file is a few kB; anything this large is not one.
constexpr std::size_t kMaxPemBytes = 1 << 20;
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

using Problem = TlsProblem::Part;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* x509) const { X509_free(x509); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// The file's bytes as a memory BIO, or null with `why` set.
BioPtr readPem(const std::string& path, std::string_view what, std::string& why) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    why = "cannot read " + std::string(what) + " " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  std::string bytes(kMaxPemBytes + 1, '\0');
  const std::size_t size = std::fread(bytes.data(), 1, bytes.size(), file.get());
  if (std::ferror(file.get())) {
    why = "cannot read " + std::string(what) + " " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  if (size > kMaxPemBytes) {
    why = std::string(what) + " " + path + " is larger than 1 MiB: not a PEM file";
    return nullptr;
  }
  bytes.resize(size);
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || BIO_write(bio.get(), bytes.data(), static_cast<int>(bytes.size())) !=
                  static_cast<int>(size)) {
    throw std::bad_alloc();
  }
  return bio;
}

bool loadChain(SSL_CTX* ctx, const std::string& path, std::string& why) {
  BioPtr bio = readPem(path, "certificate chain", why);
  if (!bio) return false;
  std::unique_ptr<X509, X509Free> leaf(
      PEM_read_bio_X509_AUX(bio.get(), nullptr, noPassPhrase, nullptr));
  if (!leaf) {
    why = "certificate chain " + path + " holds no PEM certificate (" + opensslReason() + ")";
    return false;
  }
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    why = "certificate in " + path + " is not usable (" + opensslReason() + ")";
    return false;
  }
  while (X509* next = PEM_read_bio_X509(bio.get(), nullptr, noPassPhrase, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, next) != 1) {
      X509_free(next);
      why = "intermediate certificate in " + path + " is not usable (" + opensslReason() + ")";
      return false;
    }
  }
  // The end of the file ends the loop with "no start line"; anything else is a broken entry.
  const unsigned long last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
    return true;
  }
  if (last == 0) return true;
  why = "certificate chain " + path + " has a broken PEM certificate after the first (" +
        opensslReason() + ")";
  return false;
}

bool loadKey(SSL_CTX* ctx, const TlsOptions::Certificate& files, std::string& why) {
  BioPtr bio = readPem(files.keyPath, "private key", why);
  if (!bio) return false;
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassPhrase, nullptr));
  if (!key) {
    // OpenSSL's decoders say only "unsupported" here, whatever the file holds.
    ERR_clear_error();
    why = "private key " + files.keyPath +
          " holds no PEM private key, or an encrypted one (gatewayd reads unencrypted keys only)";
    return false;
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    why = "private key " + files.keyPath + " does not match the certificate in " + files.chainPath;
    return false;
  }
  return true;
}

int protocolVersion(TlsVersion version) {
  return version == TlsVersion::Tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
}

const TlsContext& contextOf(SSL* ssl) {
  return *static_cast<const TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
}

int onServerName(SSL* ssl, int*, void*) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;
  // No certificate names it: the default one answers (the client decides what that means).
  if (SSL_CTX* chosen = contextOf(ssl).forServerName(name);
      chosen && chosen != SSL_get_SSL_CTX(ssl)) {
    SSL_set_SSL_CTX(ssl, chosen);
  }
  return SSL_TLSEXT_ERR_OK;
}

// http/1.1 is all we speak: a client that offers ALPN without it gets the fatal
// no_application_protocol alert (RFC 7301 §3.2); one without ALPN is served HTTP/1.1 anyway.
int onAlpn(SSL*, const unsigned char** out, unsigned char* outLength, const unsigned char* offered,
           unsigned int offeredLength, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outLength, kAlpnHttp11, sizeof kAlpnHttp11, offered,
                            offeredLength) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

bool setTicketKey(const TicketKeys::Key& key, const unsigned char* iv, EVP_CIPHER_CTX* cipher,
                  EVP_MAC_CTX* mac, bool encrypt) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key.hmac),
                                        sizeof key.hmac),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  const int ok = encrypt ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv)
                         : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv);
  return ok == 1 && EVP_MAC_CTX_set_params(mac, params) == 1;
}

// OpenSSL's ticket-key callback: 1 sealed/opened, 2 opened and a new ticket is due, 0 not ours
// (a full handshake), -1 failure. A TLS 1.3 resumption always gets a new ticket, as with
// OpenSSL's own keys: a client such as wrk keeps only the latest session, and when OpenSSL is not
// told to renew it sends none, so every second connection of that client was a full handshake.
int onTicketKey(SSL* ssl, unsigned char name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                EVP_MAC_CTX* mac, int encrypt) {
  TicketKeys& keys = contextOf(ssl).ticketKeys();
  const auto now = TicketKeys::Clock::now();
  if (encrypt) {
    const TicketKeys::Key key = keys.current(now);
    std::memcpy(name, key.name, sizeof key.name);
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) return -1;
    return setTicketKey(key, iv, cipher, mac, true) ? 1 : -1;
  }
  bool renew = false;
  const auto key = keys.find(*reinterpret_cast<const unsigned char(*)[16]>(name), now, renew);
  if (!key) return 0;
  if (!setTicketKey(*key, iv, cipher, mac, false)) return -1;
  return renew || SSL_version(ssl) == TLS1_3_VERSION ? 2 : 1;
}

// One context with every setting but the certificate. Cipher problems are reported by the
// first certificate's context only (they are the same for all).
SSL_CTX* newServerContext(const TlsOptions& options, const TlsContext& owner, bool report,
                          std::vector<TlsProblem>& problems) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) throw std::bad_alloc();
  SSL_CTX_set_app_data(ctx, const_cast<TlsContext*>(&owner));
  SSL_CTX_set_min_proto_version(ctx, protocolVersion(options.minVersion));
  SSL_CTX_set_max_proto_version(ctx, protocolVersion(options.maxVersion));
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               (options.sessionTickets ? 0 : SSL_OP_NO_TICKET));
  // Partial writes with a moving buffer: net/tls_stream writes straight from the output queue,
  // whose front may be copied elsewhere between a blocked write and its retry. Idle
  // connections give their record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // One read(2) takes what the socket holds (the client's Finished with its first request, say)
  // instead of two per record, header then body; net/tls_stream sees what waits inside.
  SSL_CTX_set_read_ahead(ctx, 1);
  // Resumption is stateless (tickets): no session cache shared by the workers under a lock.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (options.sessionTickets) {
    SSL_CTX_set_timeout(ctx, TicketKeys::kLifetime.count());
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, onTicketKey);
  } else {
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  if (SSL_CTX_set_cipher_list(ctx, options.ciphers.c_str()) != 1 && report) {
    problems.push_back(
        {Problem::Ciphers, 0,
         "no usable TLS 1.2 cipher in " + options.ciphers + " (" + opensslReason() + ")"});
  }
  if (SSL_CTX_set_ciphersuites(ctx, options.ciphersuites.c_str()) != 1 && report) {
    problems.push_back({Problem::Ciphersuites, 0,
                        "no usable TLS 1.3 cipher suite in " + options.ciphersuites + " (" +
                            opensslReason() + ")"});
  }
  ERR_clear_error();
  SSL_CTX_set_tlsext_servername_callback(ctx, onServerName);
  SSL_CTX_set_alpn_select_cb(ctx, onAlpn, nullptr);
  return ctx;
}

}  // namespace

std::shared_ptr<const TlsContext> TlsContext::create(const TlsOptions& options,
                                                     std::vector<TlsProblem>& problems,
                                                     std::shared_ptr<TicketKeys> ticketKeys) {
  const std::size_t problemsBefore = problems.size();
  if (options.certificates.empty()) {
    problems.push_back({Problem::Chain, 0, "a TLS listener needs at least one certificate"});
    return nullptr;
  }
  std::shared_ptr<TlsContext> context(new TlsContext());
  context->handshakeTimeout_ = options.handshakeTimeout;
  context->ticketKeys_ = ticketKeys ? std::move(ticketKeys) : std::make_shared<TicketKeys>();
  for (std::size_t i = 0; i < options.certificates.size(); ++i) {
    SSL_CTX* ctx = newServerContext(options, *context, i == 0, problems);
    context->contexts_.push_back(ctx);
    std::string why;
    if (!loadChain(ctx, options.certificates[i].chainPath, why)) {
      problems.push_back({Problem::Chain, i, why});
    } else if (!loadKey(ctx, options.certificates[i], why)) {
      problems.push_back({Problem::Key, i, why});
    }
  }
  if (problems.size() != problemsBefore) return nullptr;
  return context;
}

TlsContext::~TlsContext() {
  for (SSL_CTX* ctx : contexts_) SSL_CTX_free(ctx);
}

ssl_ctx_st* TlsContext::forServerName(std::string_view serverName) const {
  for (SSL_CTX* ctx : contexts_) {
    if (X509_check_host(SSL_CTX_get0_certificate(ctx), serverName.data(), serverName.size(), 0,
                        nullptr) == 1) {
      return ctx;
    }
  }
  return nullptr;
}

}  // namespace gw::net
