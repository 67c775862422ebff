// Listening: a second gatewayd on an address a running one listens on refuses to start (instead
// of SO_REUSEPORT splitting the traffic between two configurations), and every error about a
// listening socket names its address.
#include <doctest.h>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

// A config like simpleConfig's on `port`, with its admin listener on `admin`.
std::string configOn(const Backend& b, std::string_view address, uint16_t port,
                     std::string_view adminAddress, uint16_t admin) {
  std::string yaml = subst(simpleConfig({&b}, {}, {}, 2), {{"PORT", std::to_string(port)}});
  const std::string local = "address: 127.0.0.1\n    port: " + std::to_string(port);
  yaml.replace(yaml.find(local), local.size(),
               "address: " + std::string(address) + "\n    port: " + std::to_string(port));
  return yaml + "admin: {address: " + std::string(adminAddress) +
         ", port: " + std::to_string(admin) + "}\n";
}

}  // namespace

TEST_CASE("listeners: a second gatewayd on a listening address exits 1, naming the address") {
  Backend b;
  Gateway running(simpleConfig({&b}, {}, {}, 2));
  TempDir dir;
  const std::string second =
      dir.write("second.yaml", configOn(b, "127.0.0.1", running.port(), "127.0.0.1", freePort()));
  CommandResult run = runGatewaydCommand({"-c", second});
  INFO(run.err);
  CHECK(run.exit_code == 1);
  const std::string address = "127.0.0.1:" + std::to_string(running.port());
  CHECK(run.err.find(R"("msg":"cannot listen")") != std::string::npos);
  CHECK(run.err.find(address + ": Address already in use") != std::string::npos);
  // The running one still has every connection.
  b.reset();
  for (int i = 0; i < 10; ++i) {
    CHECK(Client(running.port()).roundTrip(get("/echo")).status == 200);
  }
  CHECK(b.stats().requests == 10);
}

TEST_CASE("listeners: errors name the address that cannot be used") {
  Backend b;
  TempDir dir;
  const uint16_t port = freePort();
  // 192.0.2.1 (TEST-NET-1) is not an address of this host.
  CommandResult proxy = runGatewaydCommand(
      {"-c", dir.write("proxy.yaml", configOn(b, "192.0.2.1", port, "127.0.0.1", freePort()))});
  CHECK(proxy.exit_code == 1);
  CHECK_MESSAGE(proxy.err.find("bind 192.0.2.1:" + std::to_string(port) +
                               ": Cannot assign requested address") != std::string::npos,
                proxy.err);
  const uint16_t admin = freePort();
  CommandResult adminRun = runGatewaydCommand(
      {"-c", dir.write("admin.yaml", configOn(b, "127.0.0.1", port, "192.0.2.1", admin))});
  CHECK(adminRun.exit_code == 1);
  CHECK_MESSAGE(adminRun.err.find("bind 192.0.2.1:" + std::to_string(admin) +
                                  ": Cannot assign requested address") != std::string::npos,
                adminRun.err);
}
