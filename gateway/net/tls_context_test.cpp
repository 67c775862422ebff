#include "gateway/net/tls_context.h"

#include <doctest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>

#include "test/support/files.h"
#include "test/support/tls_certificates.h"

namespace gw::net {
namespace {

using test::CertificateFiles;

std::string commonName(SSL_CTX* ctx) {
  char name[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(SSL_CTX_get0_certificate(ctx)), NID_commonName,
                            name, sizeof name);
  return name;
}

TlsOptions optionsFor(std::initializer_list<CertificateFiles> certificates) {
  TlsOptions options;
  for (const CertificateFiles& files : certificates) {
    options.certificates.push_back({files.chainPath, files.keyPath});
  }
  return options;
}

// A TLS client that connects again and again with one SSL object, as wrk does: SSL_clear keeps
// the latest session, which the next handshake offers. With a client session cache (wrk's
// setting) OpenSSL uses a TLS 1.3 ticket once only.
class ReconnectingClient {
 public:
  explicit ReconnectingClient(int version = TLS1_3_VERSION) {
    SSL_CTX_set_min_proto_version(ctx_, version);
    SSL_CTX_set_max_proto_version(ctx_, version);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT);
    ssl_ = SSL_new(ctx_);
  }
  ~ReconnectingClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  ReconnectingClient(const ReconnectingClient&) = delete;
  ReconnectingClient& operator=(const ReconnectingClient&) = delete;

  // One handshake with a server connection of `context` over a non-blocking socket pair, each
  // side driven in turn; then the tickets the server sent after its Finished are read and the
  // connection is shut down. True when the handshake resumed the previous session.
  bool connect(const TlsContext& context) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    SSL_set_fd(ssl_, fds[0]);
    SSL_set_connect_state(ssl_);
    SSL* server = SSL_new(context.initial());
    SSL_set_fd(server, fds[1]);
    SSL_set_accept_state(server);
    bool clientDone = false;
    bool serverDone = false;
    for (int round = 0; round < 100 && !(clientDone && serverDone); ++round) {
      clientDone = clientDone || SSL_do_handshake(ssl_) == 1;
      serverDone = serverDone || SSL_do_handshake(server) == 1;
    }
    CHECK(clientDone);
    CHECK(serverDone);
    char byte;
    CHECK(SSL_read(ssl_, &byte, 1) <= 0);  // takes in the NewSessionTickets; no data comes
    const bool reused = SSL_session_reused(ssl_) == 1;
    SSL_shutdown(ssl_);
    SSL_clear(ssl_);
    SSL_free(server);
    ::close(fds[0]);
    ::close(fds[1]);
    return reused;
  }

 private:
  SSL_CTX* ctx_ = SSL_CTX_new(TLS_client_method());
  SSL* ssl_ = nullptr;
};

struct Problems {
  std::vector<TlsProblem> list;
  std::shared_ptr<const TlsContext> context;
  explicit Problems(const TlsOptions& options) : context(TlsContext::create(options, list)) {}
};

TEST_CASE("TlsContext: certificates chosen by the client's server name") {
  test::TempDir dir;
  test::TestCa ca(dir.path);
  const CertificateFiles api = ca.issue("api", {"api.test", "*.api.test"});
  const CertificateFiles web = ca.issue("web", {"web.test"});
  std::vector<TlsProblem> problems;
  const auto context = TlsContext::create(optionsFor({api, web}), problems);
  REQUIRE(problems.empty());
  REQUIRE(context);
  CHECK(commonName(context->initial()) == "api.test");
  REQUIRE(context->forServerName("web.test"));
  CHECK(commonName(context->forServerName("web.test")) == "web.test");
  CHECK(commonName(context->forServerName("WEB.test")) == "web.test");
  CHECK(commonName(context->forServerName("v2.api.test")) == "api.test");
  CHECK(context->forServerName("other.test") == nullptr);
  CHECK(context->forServerName("a.b.api.test") == nullptr);  // a wildcard is one label
  CHECK(context->handshakeTimeout() == std::chrono::seconds(10));
}

TEST_CASE("TlsContext: each problem names its part") {
  test::TempDir dir;
  test::TestCa ca(dir.path);
  const CertificateFiles good = ca.issue("good", {"good.test"});
  const CertificateFiles other = ca.issue("other", {"other.test"});
  const std::string garbage = dir.path + "/garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";

  SUBCASE("unreadable chain") {
    Problems p(optionsFor({good, {dir.path + "/missing.pem", good.keyPath}}));
    CHECK_FALSE(p.context);
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].part == TlsProblem::Part::Chain);
    CHECK(p.list[0].certificate == 1);
    CHECK(p.list[0].message ==
          "cannot read certificate chain " + dir.path + "/missing.pem: No such file or directory");
  }
  SUBCASE("not PEM") {
    Problems p(optionsFor({{garbage, good.keyPath}}));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].part == TlsProblem::Part::Chain);
    CHECK(p.list[0].message ==
          "certificate chain " + garbage + " holds no PEM certificate (no start line)");
  }
  SUBCASE("a key that is not one") {
    Problems p(optionsFor({{good.chainPath, garbage}}));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].part == TlsProblem::Part::Key);
    CHECK(p.list[0].message ==
          "private key " + garbage +
              " holds no PEM private key, or an encrypted one (gatewayd reads unencrypted keys "
              "only)");
  }
  SUBCASE("a key of another certificate") {
    Problems p(optionsFor({{good.chainPath, other.keyPath}}));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].part == TlsProblem::Part::Key);
    CHECK(p.list[0].message ==
          "private key " + other.keyPath + " does not match the certificate in " + good.chainPath);
  }
  SUBCASE("an encrypted key is refused, never prompted for") {
    const std::string encrypted = dir.path + "/encrypted.key";
    test::runCommand("openssl pkey -in " + good.keyPath + " -aes256 -passout pass:secret -out " +
                     encrypted);
    Problems p(optionsFor({{good.chainPath, encrypted}}));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].part == TlsProblem::Part::Key);
  }
  SUBCASE("cipher lists without one usable entry") {
    TlsOptions options = optionsFor({good, other});
    options.ciphers = "NO-SUCH-CIPHER";
    options.ciphersuites = "TLS_NO_SUCH_SUITE";
    Problems p(options);
    CHECK_FALSE(p.context);
    REQUIRE(p.list.size() == 2);  // once, not once per certificate
    CHECK(p.list[0].part == TlsProblem::Part::Ciphers);
    CHECK(p.list[0].message == "no usable TLS 1.2 cipher in NO-SUCH-CIPHER (no cipher match)");
    CHECK(p.list[1].part == TlsProblem::Part::Ciphersuites);
  }
  SUBCASE("no certificate at all") {
    Problems p(TlsOptions{});
    CHECK_FALSE(p.context);
    CHECK(p.list.size() == 1);
  }
}

TEST_CASE("TlsContext: each resumption gets a new ticket, so a client resumes again and again") {
  test::TempDir dir;
  test::TestCa ca(dir.path);
  std::vector<TlsProblem> problems;
  const auto context = TlsContext::create(optionsFor({ca.issue("leaf", {"leaf.test"})}), problems);
  REQUIRE(context);
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    CAPTURE(version);
    ReconnectingClient client(version);
    CHECK_FALSE(client.connect(*context));
    for (int i = 0; i < 3; ++i) CHECK(client.connect(*context));
  }
}

TEST_CASE("TlsContext: a context built with the same ticket keys resumes the other's sessions") {
  test::TempDir dir;
  test::TestCa ca(dir.path);
  const TlsOptions options = optionsFor({ca.issue("leaf", {"leaf.test"})});
  std::vector<TlsProblem> problems;
  const auto keys = std::make_shared<TicketKeys>();
  // As a reload builds it: the same options (certificates re-read), the process's keys.
  const auto before = TlsContext::create(options, problems, keys);
  const auto after = TlsContext::create(options, problems, keys);
  const auto otherKeys = TlsContext::create(options, problems, std::make_shared<TicketKeys>());
  const auto ownKeys = TlsContext::create(options, problems);
  REQUIRE(problems.empty());
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    CAPTURE(version);
    ReconnectingClient client(version);
    CHECK_FALSE(client.connect(*before));
    CHECK(client.connect(*after));
    CHECK(client.connect(*before));
    CHECK_FALSE(client.connect(*otherKeys));  // its ticket opens nowhere else: a full handshake
    CHECK(client.connect(*otherKeys));
    CHECK_FALSE(client.connect(*ownKeys));
  }
}

}  // namespace
}  // namespace gw::net
