// TLS termination through the real gatewayd: certificates made with the openssl command at test
// time (ECDSA P-256, a CA and two leaves for SNI), a client on OpenSSL.

#include <doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "test/support/harness.h"
#include "test/support/tls_certificates.h"
#include "test/support/tls_client.h"

namespace gw::it {
namespace {

// A CA, "api.test" (the default certificate) and "web.test", and the YAML of a TLS listener
// serving both, in front of one backend.
struct TlsSetup {
  TempDir dir;
  test::TestCa ca{dir.path()};
  test::CertificateFiles api = ca.issue("api", {"api.test"});
  test::CertificateFiles web = ca.issue("web", {"web.test"});
  Backend backend;

  std::string config(std::string_view tlsExtra = {}, std::string_view top = {}) const {
    return "workers: 1\n"
           "listeners:\n"
           "  - address: 127.0.0.1\n"
           "    port: ${PORT}\n"
           "    tls:\n"
           "      certificates:\n"
           "        - {chain: " +
           api.chainPath + ", key: " + api.keyPath +
           "}\n"
           "        - {chain: " +
           web.chainPath + ", key: " + web.keyPath + "}\n" + std::string(tlsExtra) +
           "upstreams: [{name: main, backends: [" + backend.address() +
           "]}]\n"
           "routes: [{upstream: main}]\n" +
           std::string(top);
  }
  TlsClientOptions client(std::string serverName = "api.test") const {
    TlsClientOptions options;
    options.caFile = ca.certificatePath();
    options.serverName = std::move(serverName);
    return options;
  }
};

std::string closingGet(std::string_view target) {
  return request("GET", target, "Connection: close\r\n");
}

TEST_CASE(
    "tls: a verified client gets its answer; X-Forwarded-Proto https upstream, HSTS downstream") {
  TlsSetup setup;
  Gateway gw(setup.config({}, "plugins: [security_headers]\n"));
  TlsClient client(gw.port(), setup.client());
  REQUIRE_MESSAGE(client.handshake(), client.error());
  CHECK(client.peerCommonName() == "api.test");
  REQUIRE(client.send(closingGet("/echo")));
  const PlainResponse response = splitResponse(client.readAll());
  CHECK(response.status == 200);
  const Echo echo = parseEcho(response.body);
  REQUIRE(echo.valid);
  CHECK(echo.header("X-Forwarded-Proto") == "https");
  CHECK(echo.headerCount("X-Forwarded-Proto") == 1);
  // security_headers' HSTS reaches the client over TLS, where browsers honour it.
  CHECK(response.head.find(
            "\r\nStrict-Transport-Security: max-age=31536000; includeSubDomains\r\n") !=
        std::string::npos);
}

TEST_CASE("tls: SNI picks the certificate; an unknown or missing name gets the first") {
  TlsSetup setup;
  Gateway gw(setup.config());
  for (const auto& [serverName, expected] :
       std::vector<std::pair<std::string, std::string>>{{"web.test", "web.test"},
                                                        {"api.test", "api.test"},
                                                        {"other.test", "api.test"},
                                                        {"", "api.test"}}) {
    const std::string& name = serverName;  // CAPTURE takes a variable, not a binding
    CAPTURE(name);
    TlsClientOptions options = setup.client(name);
    options.caFile.clear();  // the default certificate does not name other.test
    TlsClient client(gw.port(), options);
    REQUIRE_MESSAGE(client.handshake(), client.error());
    CHECK(client.peerCommonName() == expected);
  }
  // A verifying client accepts the certificate SNI chose.
  TlsClient web(gw.port(), setup.client("web.test"));
  CHECK_MESSAGE(web.handshake(), web.error());
}

TEST_CASE("tls: TLS 1.1 is refused, 1.2 and 1.3 are served; protocols narrows them") {
  TlsSetup setup;
  {
    Gateway gw(setup.config());
    TlsClientOptions old = setup.client();
    old.minVersion = TLS1_1_VERSION;
    old.maxVersion = TLS1_1_VERSION;
    TlsClient refused(gw.port(), old);
    CHECK_FALSE(refused.handshake());
    CHECK(refused.error() == "tlsv1 alert protocol version");  // the server's alert
    for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
      TlsClientOptions options = setup.client();
      options.minVersion = options.maxVersion = version;
      TlsClient client(gw.port(), options);
      CHECK_MESSAGE(client.handshake(), client.error());
    }
  }
  Gateway only13(setup.config("      protocols: [TLSv1.3]\n"));
  TlsClientOptions tls12 = setup.client();
  tls12.maxVersion = TLS1_2_VERSION;
  TlsClient refused(only13.port(), tls12);
  CHECK_FALSE(refused.handshake());
  CHECK(refused.error() == "tlsv1 alert protocol version");
}

TEST_CASE("tls: ALPN selects http/1.1 and refuses a client that offers only h2") {
  TlsSetup setup;
  Gateway gw(setup.config());
  TlsClientOptions both = setup.client();
  both.alpn = {"h2", "http/1.1"};
  TlsClient client(gw.port(), both);
  REQUIRE_MESSAGE(client.handshake(), client.error());
  CHECK(client.alpnSelected() == "http/1.1");
  TlsClientOptions h2 = setup.client();
  h2.alpn = {"h2"};
  TlsClient refused(gw.port(), h2);
  CHECK_FALSE(refused.handshake());
  CHECK(refused.error() == "tlsv1 alert no application protocol");
}

TEST_CASE("tls: a session resumes with its ticket, and not when tickets are off") {
  TlsSetup setup;
  for (const bool tickets : {true, false}) {
    CAPTURE(tickets);
    Gateway gw(setup.config(tickets ? "" : "      session_tickets: false\n"));
    for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
      CAPTURE(version);
      TlsClientOptions options = setup.client();
      options.minVersion = options.maxVersion = version;
      SSL_SESSION* session = nullptr;
      {
        TlsClient first(gw.port(), options);
        REQUIRE_MESSAGE(first.handshake(), first.error());
        // TLS 1.3 tickets come after the handshake: one request makes sure they arrived.
        REQUIRE(first.send(closingGet("/echo")));
        CHECK(splitResponse(first.readAll()).status == 200);
        session = SSL_SESSION_dup(first.session());
      }
      options.resume = session;
      TlsClient second(gw.port(), options);
      REQUIRE_MESSAGE(second.handshake(), second.error());
      CHECK(second.sessionReused() == tickets);
      SSL_SESSION_free(session);
    }
  }
}

TEST_CASE("tls: a large body streams both ways") {
  TlsSetup setup;
  Gateway gw(setup.config({}, "limits: {body_bytes: 16MiB}\n"));
  constexpr std::size_t kSize = 6 * 1024 * 1024;
  {
    TlsClient client(gw.port(), setup.client());
    REQUIRE_MESSAGE(client.handshake(), client.error());
    REQUIRE(client.send(closingGet("/bytes/" + std::to_string(kSize))));
    const PlainResponse response = splitResponse(client.readAll(std::chrono::seconds(30)));
    CHECK(response.status == 200);
    CHECK(response.body.size() == kSize);
    CHECK((response.body == patternBody(kSize)));
  }
  TlsClient client(gw.port(), setup.client());
  REQUIRE_MESSAGE(client.handshake(), client.error());
  const std::string body = patternBody(kSize);
  REQUIRE(client.send(request("POST", "/echo", "Connection: close\r\n", body)));
  const PlainResponse response = splitResponse(client.readAll(std::chrono::seconds(30)));
  CHECK(response.status == 200);
  const Echo echo = parseEcho(response.body);
  REQUIRE(echo.valid);
  CHECK(echo.body_bytes == kSize);
  // The backend echoes the first MiB of what it received.
  CHECK((echo.body == body.substr(0, 1024 * 1024)));
}

// A TCP connection that sends the start of a ClientHello, then `more` bytes one at a time.
int stallHandshake(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  const char recordStart[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};  // handshake record, 512 bytes
  REQUIRE(::send(fd, recordStart, sizeof recordStart, 0) == sizeof recordStart);
  return fd;
}

bool closedByPeer(int fd) {
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

TEST_CASE(
    "tls: a stalled or trickling handshake is closed at handshake_timeout, and pins no worker") {
  TlsSetup setup;
  Gateway gw(setup.config("      handshake_timeout: 1s\n"));
  const auto start = std::chrono::steady_clock::now();
  const int stalled = stallHandshake(gw.port());
  const int trickling = stallHandshake(gw.port());
  // Meanwhile the one worker serves everyone else.
  TlsClient client(gw.port(), setup.client());
  REQUIRE_MESSAGE(client.handshake(), client.error());
  REQUIRE(client.send(closingGet("/echo")));
  CHECK(splitResponse(client.readAll()).status == 200);
  // A byte every 200 ms keeps the socket busy, not the handshake alive: one deadline for all.
  bool trickleClosed = false;
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(4) && !trickleClosed) {
    const char byte = 0;
    trickleClosed = ::send(trickling, &byte, 1, MSG_NOSIGNAL) != 1 || closedByPeer(trickling);
    if (!trickleClosed) waitFor([&] { return closedByPeer(trickling); }, 200ms);
    trickleClosed = trickleClosed || closedByPeer(trickling);
  }
  CHECK(trickleClosed);
  CHECK(waitFor([&] { return closedByPeer(stalled); }, 4000ms));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed >= std::chrono::milliseconds(900));
  CHECK(elapsed < std::chrono::milliseconds(3500));
  ::close(stalled);
  ::close(trickling);
}

TEST_CASE("tls: the header timeout still applies after the handshake") {
  TlsSetup setup;
  Gateway gw(setup.config({}, "limits: {client_header_timeout: 500ms}\n"));
  TlsClient client(gw.port(), setup.client());
  REQUIRE_MESSAGE(client.handshake(), client.error());
  REQUIRE(client.send("GET /echo HTTP/1.1\r\nHost: a\r\n"));  // and never the end of the head
  const PlainResponse response = splitResponse(client.readAll(std::chrono::seconds(5)));
  CHECK(response.status == 408);
  CHECK(errorCode(response.body) == "REQUEST_TIMEOUT");
}

TEST_CASE("tls: unreadable, broken or mismatched certificate files are FILE:LINE:COL errors") {
  TlsSetup setup;
  TempDir dir;
  const std::string garbage = dir.write("garbage.pem", "not PEM\n");
  const auto check = [&](const std::string& chain, const std::string& key) {
    const std::string path =
        dir.write("gateway.yaml",
                  "listeners:\n"
                  "  - port: 8443\n"
                  "    tls:\n"
                  "      certificates: [{chain: " +
                      chain + ", key: " + key +
                      "}]\n"
                      "upstreams: [{name: u, backends: [127.0.0.1:9]}]\nroutes: [{upstream: u}]\n");
    const CommandResult run = runGatewaydCommand({"-t", "-c", path});
    CHECK(run.exit_code == 1);
    return run.err;
  };
  const std::string where = dir.path() + "/gateway.yaml:4:";
  const std::size_t keyColumn = std::string("      certificates: [{chain: ").size() +
                                setup.api.chainPath.size() + std::string(", key: ").size() + 1;
  CHECK(check(setup.api.chainPath, setup.web.keyPath) ==
        where + std::to_string(keyColumn) + ": private key " + setup.web.keyPath +
            " does not match the certificate in " + setup.api.chainPath + "\n");
  CHECK(check(setup.api.chainPath, garbage)
            .starts_with(where + std::to_string(keyColumn) + ": private key " + garbage +
                         " holds no PEM private key"));
  CHECK(check(garbage, setup.api.keyPath) ==
        where + "30: certificate chain " + garbage + " holds no PEM certificate (no start line)\n");
  CHECK(check(dir.path() + "/absent.pem", setup.api.keyPath) ==
        where + "30: cannot read certificate chain " + dir.path() +
            "/absent.pem: No such file or directory\n");
}

TEST_CASE("tls: a reload reads renewed certificates, and sessions resume across it") {
  TlsSetup setup;
  Gateway gw(setup.config());
  SSL_SESSION* session = nullptr;
  {
    TlsClient before(gw.port(), setup.client());
    REQUIRE_MESSAGE(before.handshake(), before.error());
    CHECK(before.peerCommonName() == "api.test");
    REQUIRE(before.send(closingGet("/echo")));
    CHECK(splitResponse(before.readAll()).status == 200);
    session = SSL_SESSION_dup(before.session());
  }
  // The renewal lands where the old files were, as certbot's deploy step or a secret mount does.
  const test::CertificateFiles renewed = setup.ca.issue("renewed", {"renewed.test", "api.test"});
  std::filesystem::rename(renewed.chainPath, setup.api.chainPath);
  std::filesystem::rename(renewed.keyPath, setup.api.keyPath);
  gw.process().signal(SIGHUP);
  REQUIRE(waitFor([&] { return gw.log().find("configuration reloaded") != std::string::npos; },
                  5000ms));

  TlsClient fresh(gw.port(), setup.client());
  REQUIRE_MESSAGE(fresh.handshake(), fresh.error());
  CHECK(fresh.peerCommonName() == "renewed.test");
  TlsClientOptions resuming = setup.client();
  resuming.resume = session;
  TlsClient resumed(gw.port(), resuming);
  REQUIRE_MESSAGE(resumed.handshake(), resumed.error());
  CHECK(resumed.sessionReused());  // the ticket keys outlive the configuration
  SSL_SESSION_free(session);
}

}  // namespace
}  // namespace gw::it
