#include "gateway/net/tls_client.h"

#include <doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gateway/net/tls_stream.h"
#include "test/support/files.h"
#include "test/support/tls_certificates.h"

namespace gw::net {
namespace {

// A CA and a server certificate for "backend.test" (and 127.0.0.1), a listener's TlsContext
// serving it, and one certificate from a CA the client does not know.
struct Certificates {
  test::TempDir dir;
  test::TestCa ca{dir.path};
  test::CertificateFiles backend = ca.issue("backend", {"backend.test"});
  std::shared_ptr<const TlsContext> server = serving(backend);

  static std::shared_ptr<const TlsContext> serving(const test::CertificateFiles& files) {
    TlsOptions options;
    options.certificates.push_back({files.chainPath, files.keyPath});
    std::vector<TlsProblem> problems;
    auto context = TlsContext::create(options, problems);
    REQUIRE(context);
    return context;
  }
  TlsClientOptions trusting() const {
    TlsClientOptions options;
    options.caFile = ca.certificatePath();
    return options;
  }
};

std::shared_ptr<const TlsClientContext> clientContext(const TlsClientOptions& options) {
  std::vector<TlsClientProblem> problems;
  auto context = TlsClientContext::create(options, problems);
  REQUIRE(problems.empty());
  REQUIRE(context);
  return context;
}

// Our client stream and a listener's server stream on the two ends of a socket pair.
struct Connection {
  int fds[2] = {-1, -1};
  std::unique_ptr<TlsStream> client;
  std::unique_ptr<TlsStream> server;

  Connection(std::shared_ptr<const TlsClientContext> clientSide,
             std::shared_ptr<const TlsContext> serverSide, std::string_view host,
             TlsSession& session) {
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    client = std::make_unique<TlsStream>(std::move(clientSide), fds[0], host, session);
    server = std::make_unique<TlsStream>(std::move(serverSide), fds[1]);
  }
  ~Connection() {
    // As upstream::Connection closes: a session whose connection ended without close_notify
    // is one OpenSSL will not resume.
    client->shutdown();
    client.reset();
    server.reset();
    ::close(fds[0]);
    ::close(fds[1]);
  }

  // Runs both sides until the client is done or fails; the client's last progress.
  TlsStream::Progress handshake() {
    TlsStream::Progress progress = TlsStream::Progress::WantWrite;
    for (int round = 0; round < 100; ++round) {
      progress = client->handshake();
      if (progress == TlsStream::Progress::Done || progress == TlsStream::Progress::Failed) break;
      server->handshake();
    }
    return progress;
  }
  // One byte from the server, read by the client: TLS 1.3 session tickets, which the server
  // sends after the handshake, are taken in on the way.
  void exchangeByte() {
    server->handshake();  // the server's last flight (its tickets) goes out
    const char byte = 'x';
    const iovec piece{const_cast<char*>(&byte), 1};
    REQUIRE(server->writev(&piece, 1) == 1);
    char in = 0;
    REQUIRE(client->read(&in, 1) == 1);
    CHECK(in == 'x');
  }
};

// The client's handshake toward certificates.server as `host`: empty when it succeeds, else why
// it failed.
std::string handshakeFailure(const TlsClientOptions& options, const Certificates& certificates,
                             std::string_view host) {
  TlsSession session;
  Connection connection(clientContext(options), certificates.server, host, session);
  const TlsStream::Progress progress = connection.handshake();
  REQUIRE((progress == TlsStream::Progress::Done || progress == TlsStream::Progress::Failed));
  if (progress == TlsStream::Progress::Done) CHECK_FALSE(connection.client->resumed());
  return progress == TlsStream::Progress::Done ? std::string() : connection.client->failureMessage();
}

TEST_CASE("TlsClientContext: a trusted certificate for the backend's name is accepted") {
  Certificates certificates;
  CHECK(handshakeFailure(certificates.trusting(), certificates, "backend.test") == "");
}

TEST_CASE("TlsClientContext: an IP literal is verified against the certificate's IP addresses") {
  Certificates certificates;
  CHECK(handshakeFailure(certificates.trusting(), certificates, "127.0.0.1") == "");
  CHECK(handshakeFailure(certificates.trusting(), certificates, "127.0.0.2") ==
        "certificate verify failed: IP address mismatch");
}

TEST_CASE("TlsClientContext: a wrong name or an unknown CA fails, saying why") {
  Certificates certificates;
  CHECK(handshakeFailure(certificates.trusting(), certificates, "other.test") ==
        "certificate verify failed: hostname mismatch");
  test::TempDir otherDir;
  test::TestCa otherCa(otherDir.path);
  TlsClientOptions strangers;
  strangers.caFile = otherCa.certificatePath();
  CHECK(handshakeFailure(strangers, certificates, "backend.test") ==
        "certificate verify failed: unable to get local issuer certificate");
}

TEST_CASE(
    "TlsClientContext: verify false accepts any certificate; server_name overrides the host") {
  Certificates certificates;
  TlsClientOptions anything;
  anything.verify = false;
  CHECK(handshakeFailure(anything, certificates, "other.test") == "");

  TlsClientOptions named = certificates.trusting();
  named.serverName = "backend.test";
  CHECK(clientContext(named)->peerName("10.0.0.1") == "backend.test");
  CHECK(clientContext(certificates.trusting())->peerName("10.0.0.1") == "10.0.0.1");
  CHECK(handshakeFailure(named, certificates, "10.0.0.1") == "");
}

TEST_CASE("TlsClientContext: a server that is not TLS fails the handshake") {
  Certificates certificates;
  TlsSession session;
  Connection connection(clientContext(certificates.trusting()), certificates.server, "backend.test",
                        session);
  const std::string plain = "HTTP/1.1 400 Bad Request\r\n\r\n";
  REQUIRE(::send(connection.fds[1], plain.data(), plain.size(), 0) ==
          static_cast<ssize_t>(plain.size()));
  CHECK(connection.client->handshake() == TlsStream::Progress::Failed);
  CHECK(connection.client->failureMessage() == "TLS handshake failed: wrong version number");
}

TEST_CASE("TlsClientContext: the next connection to a backend resumes the last session") {
  Certificates certificates;
  auto context = clientContext(certificates.trusting());
  for (TlsVersion version : {TlsVersion::Tls12, TlsVersion::Tls13}) {
    CAPTURE(static_cast<int>(version));
    TlsOptions serverOptions;
    serverOptions.certificates.push_back(
        {certificates.backend.chainPath, certificates.backend.keyPath});
    serverOptions.maxVersion = version;
    std::vector<TlsProblem> problems;
    auto server = TlsContext::create(serverOptions, problems);
    REQUIRE(server);
    TlsSession session;
    {
      Connection first(context, server, "backend.test", session);
      REQUIRE(first.handshake() == TlsStream::Progress::Done);
      first.exchangeByte();
      CHECK_FALSE(first.client->resumed());
    }
    REQUIRE_FALSE(session.empty());
    Connection second(context, server, "backend.test", session);
    REQUIRE(second.handshake() == TlsStream::Progress::Done);
    CHECK(second.client->resumed());
  }
}

TEST_CASE("TlsClientContext: unreadable or broken files are problems of their part") {
  Certificates certificates;
  const auto problemsOf = [](const TlsClientOptions& options) {
    std::vector<TlsClientProblem> problems;
    CHECK_FALSE(TlsClientContext::create(options, problems));
    REQUIRE(problems.size() == 1);
    return problems.front();
  };
  TlsClientOptions missing;
  missing.caFile = certificates.dir.path + "/missing.pem";
  const TlsClientProblem notThere = problemsOf(missing);
  CHECK(notThere.part == TlsClientProblem::Part::CaFile);
  CHECK(notThere.message ==
        "cannot read ca_file " + missing.caFile + ": No such file or directory");

  TlsClientOptions broken;
  broken.caFile = certificates.dir.path + "/broken.pem";
  std::ofstream(broken.caFile) << "not a certificate\n";
  const TlsClientProblem notPem = problemsOf(broken);
  CHECK(notPem.part == TlsClientProblem::Part::CaFile);
  CHECK(
      notPem.message.starts_with("ca_file " + broken.caFile + " holds no usable PEM certificate"));

  test::CertificateFiles other = certificates.ca.issue("other", {"other.test"});
  TlsClientOptions mismatched = certificates.trusting();
  mismatched.certificatePath = certificates.backend.chainPath;
  mismatched.keyPath = other.keyPath;
  const TlsClientProblem wrongKey = problemsOf(mismatched);
  CHECK(wrongKey.part == TlsClientProblem::Part::Key);
  CHECK(wrongKey.message == "key " + other.keyPath + " does not match the certificate in " +
                                certificates.backend.chainPath);

  TlsClientOptions withClientCertificate = certificates.trusting();
  withClientCertificate.certificatePath = other.chainPath;
  withClientCertificate.keyPath = other.keyPath;
  std::vector<TlsClientProblem> none;
  CHECK(TlsClientContext::create(withClientCertificate, none));
  CHECK(none.empty());
}

}  // namespace
}  // namespace gw::net
