// HTTPS upstreams through the real gatewayd: test_backend serving TLS with certificates made by
// the openssl command at test time (test/support/tls_certificates.h).
#include <arpa/inet.h>
#include <doctest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "test/support/harness.h"
#include "test/support/tls_certificates.h"

namespace gw::it {
namespace {

// A CA, a certificate for "backend.test" (and 127.0.0.1) and a test_backend serving it.
struct HttpsBackend {
  TempDir dir;
  test::TestCa ca{dir.path()};
  test::CertificateFiles files = ca.issue("backend", {"backend.test"});
  Process process{{testBackendPath(), "--id", "tls1", "--tls-cert", files.chainPath, "--tls-key",
                   files.keyPath}};
  uint16_t port = readPort();

  uint16_t readPort() {
    const auto line = process.readLine(5000ms);
    REQUIRE_MESSAGE(line.has_value(), "test_backend did not print its port");
    REQUIRE(line->rfind("PORT ", 0) == 0);
    return static_cast<uint16_t>(std::atoi(line->c_str() + 5));
  }
  // A gateway config with one upstream on this backend with `tls` (its lines indented by 6).
  std::string config(const std::string& tls, const std::string& extra = {}) const {
    return "workers: 1\n"
           "listeners: [{address: 127.0.0.1, port: ${PORT}}]\n"
           "upstreams:\n"
           "  - name: secure\n"
           "    backends: ['127.0.0.1:" +
           std::to_string(port) + "']\n" + extra + "    tls:\n" + tls +
           "routes: [{upstream: secure}]\n";
  }
  std::string trusting(const std::string& more = {}) const {
    return "      ca_file: " + ca.certificatePath() + "\n" + more;
  }
};

// The backend's /__stats, fetched through the gateway (the backend speaks TLS only).
struct TlsStats {
  uint64_t connections = 0, requests = 0, handshakes = 0, resumed = 0;
};
TlsStats statsThrough(uint16_t gatewayPort) {
  Client client(gatewayPort);
  const Response r = client.roundTrip(get("/__stats"));
  REQUIRE_MESSAGE(r.complete, r.error);
  REQUIRE(r.status == 200);
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return {d["connections"].GetUint64(), d["requests"].GetUint64(), d["tls_handshakes"].GetUint64(),
          d["tls_resumed"].GetUint64()};
}

std::string errorMessage(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  if (d.HasParseError() || !d.HasMember("error")) return {};
  return d["error"]["message"].GetString();
}

TEST_CASE("https upstream: verified by ca_file, keep-alive requests share one TLS connection") {
  HttpsBackend backend;
  Gateway gw(backend.config(backend.trusting("      server_name: backend.test\n")));
  Client client(gw.port());
  constexpr int kRequests = 5;
  for (int i = 0; i < kRequests; ++i) {
    const Response r = client.roundTrip(get("/echo?n=" + std::to_string(i)));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    CHECK(r.header("X-Backend-Id") == "tls1");
    const Echo echo = parseEcho(r.body);
    REQUIRE(echo.valid);
    CHECK(echo.target == "/echo?n=" + std::to_string(i));
    // What the client's side was, not the backend's: a plain listener says http.
    CHECK(echo.header("X-Forwarded-Proto") == "http");
    CHECK(echo.header("Host") == "gw.test");
  }
  const TlsStats stats = statsThrough(gw.port());
  CHECK(stats.connections == 1);
  CHECK(stats.handshakes == 1);
  CHECK(stats.requests == kRequests);
}

TEST_CASE("https upstream: the next connection to a backend resumes the last session") {
  HttpsBackend backend;
  Gateway gw(backend.config(backend.trusting()));
  Client client(gw.port());
  // A close-delimited body: the backend closes that connection, the next request needs another.
  const Response first = client.roundTrip(get("/close-delimited/100"));
  REQUIRE_MESSAGE(first.complete, first.error);
  CHECK(first.status == 200);
  CHECK(first.body == patternBody(100));
  const Response second = client.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(second.complete, second.error);
  CHECK(second.status == 200);
  const TlsStats stats = statsThrough(gw.port());
  CHECK(stats.connections == 2);
  CHECK(stats.handshakes == 2);
  CHECK(stats.resumed == 1);
}

TEST_CASE("https upstream: a wrong name or an unknown CA is 502 UPSTREAM_TLS_ERROR, saying why") {
  HttpsBackend backend;
  TempDir otherDir;
  test::TestCa otherCa(otherDir.path());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {backend.trusting("      server_name: other.test\n"),
       "certificate verify failed: hostname mismatch"},
      {"      ca_file: " + otherCa.certificatePath() + "\n",
       "certificate verify failed: unable to get local issuer certificate"},
  };
  for (const auto& [tls, reason] : cases) {
    const std::string& why = reason;  // CAPTURE takes a variable, not a binding
    CAPTURE(why);
    Gateway gw(backend.config(tls));
    Client client(gw.port());
    const Response r = client.roundTrip(get("/echo"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 502);
    CHECK(errorCode(r.body) == "UPSTREAM_TLS_ERROR");
    CHECK(errorMessage(r.body) == why);
    // Counted as a connect failure of the backend.
    Client admin(gw.adminPort());
    const Response metrics = admin.roundTrip(get("/metrics"));
    CHECK(metrics.body.find(
              "gatewayd_upstream_errors_total{upstream=\"secure\",kind=\"connect\"} 1") !=
          std::string::npos);
  }
}

TEST_CASE("https upstream: verify false accepts a certificate for another name, with a warning") {
  HttpsBackend backend;
  Gateway gw(backend.config("      verify: false\n      server_name: other.test\n"));
  Client client(gw.port());
  const Response r = client.roundTrip(get("/echo"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 200);
  CHECK(r.header("X-Backend-Id") == "tls1");
  CHECK(gw.log().find("tls verify is false") != std::string::npos);
}

TEST_CASE("https upstream: a backend that stalls in the handshake is a connect timeout") {
  // Accepted by the kernel (the listen backlog), never answered: the ClientHello goes unread.
  uint16_t stallingPort = 0;
  const int listener = listenOnLoopback(8, stallingPort);
  HttpsBackend backend;
  std::string config = backend.config(backend.trusting(), "    timeouts: {connect: 300ms}\n");
  const std::string real = "127.0.0.1:" + std::to_string(backend.port);
  config.replace(config.find(real), real.size(), "127.0.0.1:" + std::to_string(stallingPort));
  Gateway gw(config);
  Client client(gw.port());
  const auto started = std::chrono::steady_clock::now();
  const Response r = client.roundTrip(get("/echo"));
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 504);
  CHECK(errorCode(r.body) == "UPSTREAM_CONNECT_TIMEOUT");
  CHECK(took >= 250ms);
  CHECK(took < 3000ms);
  ::close(listener);
}

TEST_CASE("https upstream: active health checks speak TLS") {
  HttpsBackend backend;
  const std::string checks =
      "    health_checks:\n"
      "      active: {path: /echo, interval: 50ms, timeout: 1s, unhealthy_threshold: 1}\n";
  SUBCASE("a verified backend stays healthy") {
    Gateway gw(backend.config(backend.trusting(), checks));
    CHECK(waitFor([&] { return statsThrough(gw.port()).handshakes >= 3; }, 5000ms));
    Client client(gw.port());
    CHECK(client.roundTrip(get("/echo")).status == 200);
    CHECK(gw.log().find("backend failed its health check") == std::string::npos);
  }
  SUBCASE("a certificate for another name fails the check") {
    Gateway gw(backend.config(backend.trusting("      server_name: other.test\n"), checks));
    CHECK(waitFor(
        [&] { return gw.log().find("backend failed its health check") != std::string::npos; },
        5000ms));
    Client client(gw.port());
    const Response r = client.roundTrip(get("/echo"));
    CHECK(r.status == 503);
    CHECK(errorCode(r.body) == "UPSTREAM_UNAVAILABLE");
  }
}

TEST_CASE("https upstream: unreadable or broken files are FILE:LINE:COL errors") {
  HttpsBackend backend;
  const std::string broken = backend.dir.write("broken.pem", "not a certificate\n");
  const std::string config =
      subst(backend.config("      ca_file: " + backend.dir.path() + "/missing.pem\n" +
                           "      certificate: " + broken +
                           "\n      key: " + backend.files.keyPath + "\n"),
            {{"PORT", "1"}});
  const std::string path = backend.dir.write("gateway.yaml", config);
  const CommandResult run = runGatewaydCommand({"-t", "-c", path});
  CHECK(run.exit_code == 1);
  const std::string out = run.out + run.err;
  CHECK(out.find(path + ":7:16: cannot read ca_file " + backend.dir.path() +
                 "/missing.pem: No such file or directory") != std::string::npos);
  CHECK(out.find(path + ":8:20: certificate " + broken + " holds no usable PEM certificate") !=
        std::string::npos);
}

}  // namespace
}  // namespace gw::it
