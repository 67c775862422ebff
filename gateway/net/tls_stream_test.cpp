#include "gateway/net/tls_stream.h"

#include <doctest.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "test/support/files.h"
#include "test/support/tls_certificates.h"

namespace gw::net {
namespace {

// A TLS client on one end of a socket pair and our TlsStream on the other, both non-blocking,
// with small socket buffers so that writes block.
struct Pair {
  test::TempDir dir;
  std::shared_ptr<const TlsContext> context;
  int fds[2] = {-1, -1};
  SSL_CTX* clientCtx = SSL_CTX_new(TLS_client_method());
  SSL* client = nullptr;
  std::unique_ptr<TlsStream> server;

  Pair() {
    test::TestCa ca(dir.path);
    const test::CertificateFiles files = ca.issue("leaf", {"leaf.test"});
    TlsOptions options;
    options.certificates.push_back({files.chainPath, files.keyPath});
    std::vector<TlsProblem> problems;
    context = TlsContext::create(options, problems);
    REQUIRE(context);
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    for (int fd : fds) {
      int size = 4096;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    client = SSL_new(clientCtx);
    SSL_set_fd(client, fds[0]);
    SSL_set_connect_state(client);
    server = std::make_unique<TlsStream>(context, fds[1]);
  }
  ~Pair() {
    server.reset();
    SSL_free(client);
    SSL_CTX_free(clientCtx);
    ::close(fds[0]);
    ::close(fds[1]);
  }

  void handshake() {
    TlsStream::Progress progress = TlsStream::Progress::WantRead;
    for (int round = 0; round < 100 && progress != TlsStream::Progress::Done; ++round) {
      SSL_do_handshake(client);
      progress = server->handshake();
      REQUIRE(progress != TlsStream::Progress::Failed);
    }
    REQUIRE(progress == TlsStream::Progress::Done);
    REQUIRE(SSL_do_handshake(client) == 1);
  }

  // What the client can read now.
  std::string clientRead() {
    std::string out;
    char buffer[65536];
    std::size_t n = 0;
    while (SSL_read_ex(client, buffer, sizeof buffer, &n) == 1) out.append(buffer, n);
    return out;
  }
};

TEST_CASE("TlsStream: a queue larger than the socket goes out whole, blocked records resent") {
  Pair pair;
  pair.handshake();
  core::OutQueue out;
  std::string body;
  for (int i = 0; i < 200'000; ++i) body += static_cast<char>('a' + i % 26);
  out.append("HTTP/1.1 200 OK\r\n\r\n");
  out.borrow(body.data(), body.size());
  const uint64_t total = out.queuedTotal();

  std::string received;
  bool sawCommitted = false;
  for (int round = 0; round < 10'000 && received.size() < total; ++round) {
    const auto status = out.flush(*pair.server);
    REQUIRE(status != core::OutQueue::WriteStatus::Failed);
    if (status == core::OutQueue::WriteStatus::Blocked && pair.server->committed() > 0) {
      sawCommitted = true;
      // Bytes sealed in a blocked record count as sent: they can no longer be withdrawn.
      CHECK(out.sentTotal() == total - out.pending() + pair.server->committed());
      CHECK(pair.server->committed() <= TlsStream::kMaxRecord);
    }
    received += pair.clientRead();
  }
  CHECK(sawCommitted);
  CHECK(out.empty());
  CHECK(received == "HTTP/1.1 200 OK\r\n\r\n" + body);
}

TEST_CASE("TlsStream: small pieces share a record; reads see what OpenSSL buffered") {
  Pair pair;
  pair.handshake();
  core::OutQueue out;
  std::string pieces[10];
  std::string all;
  for (int i = 0; i < 10; ++i) {
    pieces[i] = std::string(10, static_cast<char>('a' + i));
    out.borrow(pieces[i].data(), pieces[i].size());
    all += pieces[i];
  }
  REQUIRE(out.flush(*pair.server) == core::OutQueue::WriteStatus::Drained);
  CHECK(pair.clientRead() == all);

  const std::string request = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  std::size_t written = 0;
  REQUIRE(SSL_write_ex(pair.client, request.data(), request.size(), &written) == 1);
  char first[5];
  REQUIRE(pair.server->read(first, sizeof first) == 5);
  CHECK(pair.server->hasBufferedInput());  // the rest of the record is inside OpenSSL already
  char rest[100];
  CHECK(pair.server->read(rest, sizeof rest) == static_cast<ssize_t>(request.size() - 5));
  CHECK_FALSE(pair.server->hasBufferedInput());
  CHECK(pair.server->read(rest, sizeof rest) == -1);
  CHECK(errno == EAGAIN);
  CHECK_FALSE(pair.server->readWantsWrite());

  SSL_shutdown(pair.client);  // close_notify: the end of the stream
  CHECK(pair.server->read(rest, sizeof rest) == 0);
}

TEST_CASE("TlsStream: records read ahead of the one asked for count as buffered input") {
  Pair pair;
  pair.handshake();
  std::size_t written = 0;
  REQUIRE(SSL_write_ex(pair.client, "first", 5, &written) == 1);
  REQUIRE(SSL_write_ex(pair.client, "second", 6, &written) == 1);  // a record of its own
  char buffer[100];
  REQUIRE(pair.server->read(buffer, sizeof buffer) == 5);
  // The second record came with the first read(2): only OpenSSL knows it is there.
  CHECK(pair.server->hasBufferedInput());
  REQUIRE(pair.server->read(buffer, sizeof buffer) == 6);
  CHECK(std::string(buffer, 6) == "second");
  CHECK_FALSE(pair.server->hasBufferedInput());
}

TEST_CASE("TlsStream: a client that speaks no TLS fails the handshake") {
  Pair pair;
  const std::string plain = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  REQUIRE(::send(pair.fds[0], plain.data(), plain.size(), 0) == static_cast<ssize_t>(plain.size()));
  CHECK(pair.server->handshake() == TlsStream::Progress::Failed);
  CHECK(pair.server->failure() == HandshakeFailure::Other);
}

// Both sides in turn until the server's handshake is over; how it ended.
TlsStream::Progress finishHandshake(Pair& pair) {
  auto progress = TlsStream::Progress::WantRead;
  for (int round = 0; round < 100 && (progress == TlsStream::Progress::WantRead ||
                                      progress == TlsStream::Progress::WantWrite);
       ++round) {
    SSL_do_handshake(pair.client);
    progress = pair.server->handshake();
  }
  return progress;
}

TEST_CASE("TlsStream: a failed handshake says why, from a bounded set of reasons") {
  Pair pair;
  SUBCASE("a full handshake succeeds, not resumed") {
    CHECK(finishHandshake(pair) == TlsStream::Progress::Done);
    CHECK_FALSE(pair.server->resumed());
  }
  SUBCASE("TLS 1.1") {
    SSL_set_security_level(pair.client, 0);
    SSL_set_cipher_list(pair.client, "DEFAULT:@SECLEVEL=0");
    SSL_set_min_proto_version(pair.client, TLS1_1_VERSION);
    SSL_set_max_proto_version(pair.client, TLS1_1_VERSION);
    REQUIRE(finishHandshake(pair) == TlsStream::Progress::Failed);
    CHECK(pair.server->failure() == HandshakeFailure::ProtocolVersion);
  }
  SUBCASE("no cipher in common") {
    SSL_set_max_proto_version(pair.client, TLS1_2_VERSION);
    SSL_set_cipher_list(pair.client, "AES128-SHA");  // RSA key exchange: not forward-secret
    REQUIRE(finishHandshake(pair) == TlsStream::Progress::Failed);
    CHECK(pair.server->failure() == HandshakeFailure::NoSharedCipher);
  }
  SUBCASE("ALPN without http/1.1") {
    const unsigned char h2[] = {2, 'h', '2'};
    SSL_set_alpn_protos(pair.client, h2, sizeof h2);
    REQUIRE(finishHandshake(pair) == TlsStream::Progress::Failed);
    CHECK(pair.server->failure() == HandshakeFailure::NoApplicationProtocol);
  }
  SUBCASE("the client does not trust our certificate") {
    SSL_set_verify(pair.client, SSL_VERIFY_PEER, nullptr);  // and it trusts no CA at all
    REQUIRE(finishHandshake(pair) == TlsStream::Progress::Failed);
    CHECK(pair.server->failure() == HandshakeFailure::CertificateRejected);
  }
  SUBCASE("the client goes away in the middle") {
    SSL_do_handshake(pair.client);  // its ClientHello
    ::shutdown(pair.fds[0], SHUT_WR);
    REQUIRE(finishHandshake(pair) == TlsStream::Progress::Failed);
    CHECK(pair.server->failure() == HandshakeFailure::Closed);
  }
  SUBCASE("a connection closed before its first byte is no handshake (a TCP probe)") {
    ::shutdown(pair.fds[0], SHUT_WR);
    REQUIRE(pair.server->handshake() == TlsStream::Progress::Failed);
    CHECK_FALSE(pair.server->failure());
  }
}

}  // namespace
}  // namespace gw::net
