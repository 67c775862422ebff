// `gatewayd -t` on plugin lists: a questionable order is a warning (exit 0), an unknown plugin an
// error located at FILE:LINE:COL (exit 1).
#include <doctest.h>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

constexpr const char* kHead = R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: 18999
upstreams:
  - name: main
    backends:
      - 127.0.0.1:9
routes:
  - match: {prefix: /}
    upstream: main
    plugins:
)";

}  // namespace

TEST_CASE("plugins order: rate_limit before request_id is a warning, not an error") {
  TempDir dir;
  // Line 13, column 9: the rate_limit entry's name.
  const std::string path = dir.write("order.yaml", std::string(kHead) +
                                                       "      - rate_limit: {limits: [{requests: "
                                                       "10, window: 1s}]}\n"
                                                       "      - request_id\n");
  CommandResult run = runGatewaydCommand({"-t", "-c", path});
  INFO("stdout: " << run.out << "stderr: " << run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.out == path + ": configuration ok\n");
  CHECK(run.err == "warning: " + path +
                       ":13:9: plugin 'rate_limit' runs before 'request_id': its errors and logs "
                       "will have no request id\n");
}

TEST_CASE("plugins order: the recommended order gives no warning") {
  TempDir dir;
  const std::string path =
      dir.write("good.yaml", std::string(kHead) +
                                 "      - request_id\n"
                                 "      - rate_limit: {limits: [{requests: 10, window: 1s}]}\n"
                                 "      - security_headers\n");
  CommandResult run = runGatewaydCommand({"-t", "-c", path});
  INFO("stdout: " << run.out << "stderr: " << run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.out == path + ": configuration ok\n");
  CHECK(run.err == "");
}

TEST_CASE("plugins order: an unknown plugin is a FILE:LINE:COL error, exit 1") {
  TempDir dir;
  const std::string path = dir.write("unknown.yaml", std::string(kHead) +
                                                         "      - request_id\n"
                                                         "      - no_such_plugin: {a: 1}\n");
  CommandResult run = runGatewaydCommand({"-t", "-c", path});
  INFO("stdout: " << run.out << "stderr: " << run.err);
  CHECK(run.exit_code == 1);
  CHECK(run.out.find("configuration ok") == std::string::npos);
  const std::string prefix = path + ":14:9: unknown plugin 'no_such_plugin' (known plugins: ";
  CHECK(run.err.substr(0, prefix.size()) == prefix);
  for (const char* known : {"rate_limit", "request_id", "schema_validation", "security_headers"}) {
    CHECK_MESSAGE(run.err.find(known) != std::string::npos, known);
  }
}
