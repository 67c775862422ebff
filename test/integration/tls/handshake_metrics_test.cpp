// The TLS handshake counters through the real gatewayd: each way a handshake ends moves its own
// series of gatewayd_tls_handshake_failures_total, completed and resumed handshakes theirs.

#include <doctest.h>

#include <string>
#include <string_view>

#include "test/support/harness.h"
#include "test/support/tls_certificates.h"
#include "test/support/tls_client.h"

namespace gw::it {
namespace {

double failures(const Gateway& gw, std::string_view reason) {
  return metricSample(
      adminRequest(gw, "/metrics").body,
      "gatewayd_tls_handshake_failures_total{reason=\"" + std::string(reason) + "\"}");
}

double counter(const Gateway& gw, const std::string& name) {
  return metricSample(adminRequest(gw, "/metrics").body, name);
}

// The first bytes of a ClientHello record, and nothing more.
constexpr std::string_view kRecordStart{"\x16\x03\x01\x02\x00", 5};

TEST_CASE("tls metrics: completed, resumed and failed handshakes, each failure by its reason") {
  TempDir dir;
  test::TestCa ca(dir.path());
  const test::CertificateFiles leaf = ca.issue("api", {"api.test"});
  TempDir otherDir;
  test::TestCa otherCa(otherDir.path());
  Backend backend;
  Gateway gw(
      "workers: 1\n"
      "listeners:\n"
      "  - address: 127.0.0.1\n"
      "    port: ${PORT}\n"
      "    tls:\n"
      "      handshake_timeout: 500ms\n"
      "      certificates: [{chain: " +
      leaf.chainPath + ", key: " + leaf.keyPath +
      "}]\n"
      "upstreams: [{name: main, backends: [" +
      backend.address() +
      "]}]\n"
      "routes: [{upstream: main}]\n");
  TlsClientOptions good;
  good.caFile = ca.certificatePath();
  good.serverName = "api.test";
  for (const char* reason :
       {"timeout", "protocol_version", "no_shared_cipher", "no_application_protocol",
        "certificate_rejected", "closed", "other"}) {
    CHECK(failures(gw, reason) == 0);
  }

  SUBCASE("a full handshake, then one that resumes its session") {
    SSL_SESSION* session = nullptr;
    {
      TlsClient first(gw.port(), good);
      REQUIRE_MESSAGE(first.handshake(), first.error());
      // TLS 1.3 tickets come after the handshake: the answer makes sure they arrived.
      REQUIRE(first.send(request("GET", "/echo", "Connection: close\r\n")));
      CHECK(splitResponse(first.readAll()).status == 200);
      session = SSL_SESSION_dup(first.session());
    }
    TlsClientOptions again = good;
    again.resume = session;
    TlsClient second(gw.port(), again);
    REQUIRE_MESSAGE(second.handshake(), second.error());
    CHECK(second.sessionReused());
    SSL_SESSION_free(session);
    REQUIRE(second.send(request("GET", "/echo", "Connection: close\r\n")));
    CHECK(splitResponse(second.readAll()).status == 200);
    CHECK(counter(gw, "gatewayd_tls_handshakes_total") == 2);
    CHECK(counter(gw, "gatewayd_tls_sessions_resumed_total") == 1);
  }
  SUBCASE("a TLS 1.1 client") {
    TlsClientOptions old = good;
    old.minVersion = old.maxVersion = TLS1_1_VERSION;
    TlsClient refused(gw.port(), old);
    CHECK_FALSE(refused.handshake());
    CHECK(waitFor([&] { return failures(gw, "protocol_version") == 1; }, 3000ms));
  }
  SUBCASE("a client that offers only h2") {
    TlsClientOptions h2 = good;
    h2.alpn = {"h2"};
    TlsClient refused(gw.port(), h2);
    CHECK_FALSE(refused.handshake());
    CHECK(waitFor([&] { return failures(gw, "no_application_protocol") == 1; }, 3000ms));
  }
  SUBCASE("a client that does not trust our certificate") {
    TlsClientOptions distrustful = good;
    distrustful.caFile = otherCa.certificatePath();
    TlsClient refusing(gw.port(), distrustful);
    CHECK_FALSE(refusing.handshake());
    CHECK(waitFor([&] { return failures(gw, "certificate_rejected") == 1; }, 3000ms));
  }
  SUBCASE("a stalled handshake, and one the client abandons") {
    Client stalled(gw.port());
    Client abandoned(gw.port());
    REQUIRE(stalled.send(kRecordStart));
    REQUIRE(abandoned.send(kRecordStart));
    abandoned.close();
    CHECK(waitFor([&] { return failures(gw, "closed") == 1; }, 3000ms));
    CHECK(stalled.waitClosed(3000ms));  // at handshake_timeout
    CHECK(waitFor([&] { return failures(gw, "timeout") == 1; }, 3000ms));
  }
  SUBCASE("plain HTTP on the TLS port") {
    Client plain(gw.port());
    REQUIRE(plain.send(request("GET", "/echo", "Connection: close\r\n")));
    CHECK(plain.waitClosed(3000ms));
    CHECK(waitFor([&] { return failures(gw, "other") == 1; }, 3000ms));
  }
  CHECK(counter(gw, "gatewayd_tls_handshake_failures_total{reason=\"no_shared_cipher\"}") == 0);
}

}  // namespace
}  // namespace gw::it
