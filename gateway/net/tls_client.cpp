#include "gateway/net/tls_client.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "gateway/net/tls_openssl.h"

namespace gw::net {

namespace {

constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

using Part = TlsClientProblem::Part;

// The file can be opened for reading; otherwise `why` says why not.
bool readable(const std::string& path, std::string_view what, std::string& why) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (file) return true;
  why = "cannot read " + std::string(what) + " " + path + ": " + std::strerror(errno);
  return false;
}

// A session the backend handed over (after a full handshake, or a TLS 1.3 ticket later on):
// kept in the connection's slot for the backend's next connection.
int onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<TlsSession*>(SSL_get_app_data(ssl));
  if (slot == nullptr || SSL_SESSION_is_resumable(session) != 1) return 0;
  slot->reset(session);
  return 1;  // the slot holds the reference OpenSSL gave
}

bool loadTrust(SSL_CTX* ctx, const TlsClientOptions& options,
               std::vector<TlsClientProblem>& problems) {
  if (options.caFile.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) == 1) return true;
    problems.push_back(
        {Part::CaFile, "cannot load the system's CA store (" + opensslReason() + ")"});
    return false;
  }
  std::string why;
  if (!readable(options.caFile, "ca_file", why)) {
    problems.push_back({Part::CaFile, std::move(why)});
    return false;
  }
  if (SSL_CTX_load_verify_file(ctx, options.caFile.c_str()) == 1) return true;
  problems.push_back(
      {Part::CaFile,
       "ca_file " + options.caFile + " holds no usable PEM certificate (" + opensslReason() + ")"});
  return false;
}

bool loadClientCertificate(SSL_CTX* ctx, const TlsClientOptions& options,
                           std::vector<TlsClientProblem>& problems) {
  std::string why;
  if (!readable(options.certificatePath, "certificate", why)) {
    problems.push_back({Part::Certificate, std::move(why)});
    return false;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, options.certificatePath.c_str()) != 1) {
    problems.push_back({Part::Certificate, "certificate " + options.certificatePath +
                                               " holds no usable PEM certificate (" +
                                               opensslReason() + ")"});
    return false;
  }
  if (!readable(options.keyPath, "key", why)) {
    problems.push_back({Part::Key, std::move(why)});
    return false;
  }
  std::unique_ptr<BIO, int (*)(BIO*)> file(BIO_new_file(options.keyPath.c_str(), "rb"), &BIO_free);
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
      file ? PEM_read_bio_PrivateKey(file.get(), nullptr, noPassPhrase, nullptr) : nullptr,
      &EVP_PKEY_free);
  if (!key) {
    ERR_clear_error();
    problems.push_back({Part::Key, "key " + options.keyPath +
                                       " holds no PEM private key, or an encrypted one "
                                       "(gatewayd reads unencrypted keys only)"});
    return false;
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    problems.push_back({Part::Key, "key " + options.keyPath +
                                       " does not match the certificate in " +
                                       options.certificatePath});
    return false;
  }
  return true;
}

}  // namespace

TlsSession::~TlsSession() { SSL_SESSION_free(session_); }

void TlsSession::reset(SSL_SESSION* session) {
  SSL_SESSION_free(session_);
  session_ = session;
}

std::shared_ptr<const TlsClientContext> TlsClientContext::create(
    const TlsClientOptions& options, std::vector<TlsClientProblem>& problems) {
  std::shared_ptr<TlsClientContext> owner(new TlsClientContext());
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) throw std::bad_alloc();
  owner->context_ = ctx;
  owner->serverName_ = options.serverName;
  SSL_CTX_set_min_proto_version(
      ctx, options.minVersion == TlsVersion::Tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // As the server side: TlsStream offers a blocked record again from wherever the bytes now are.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(ctx, options.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (SSL_CTX_set_alpn_protos(ctx, kAlpnHttp11, sizeof kAlpnHttp11) != 0) throw std::bad_alloc();
  // Sessions go to the connection's TlsSession slot (per backend), never to OpenSSL's cache.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, onNewSession);
  const std::size_t before = problems.size();
  if (options.verify || !options.caFile.empty()) loadTrust(ctx, options, problems);
  if (!options.certificatePath.empty()) loadClientCertificate(ctx, options, problems);
  if (problems.size() != before) return nullptr;
  return owner;
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(context_); }

}  // namespace gw::net
