#include "test/support/tls_certificates.h"

#include <doctest.h>

#include <cstdlib>
#include <fstream>

namespace gw::test {

namespace {
// Short-lived, P-256 keys, quiet.
constexpr const char* kNewKey =
    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 ";
}  // namespace

void runCommand(const std::string& command) {
  INFO(command);
  REQUIRE(std::system((command + " >/dev/null 2>&1").c_str()) == 0);
}

TestCa::TestCa(std::string dir)
    : dir_(std::move(dir)), certificatePath_(dir_ + "/ca.pem"), keyPath_(dir_ + "/ca.key") {
  runCommand(std::string(kNewKey) + "-x509 -subj /CN=gatewayd-test-ca -keyout " + keyPath_ +
             " -out " + certificatePath_ +
             " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign");
}

CertificateFiles TestCa::issue(const std::string& stem,
                               const std::vector<std::string>& names) const {
  REQUIRE_FALSE(names.empty());
  const std::string base = dir_ + "/" + stem;
  std::string altNames = "subjectAltName=IP:127.0.0.1";
  for (const std::string& name : names) altNames += ",DNS:" + name;
  std::ofstream(base + ".ext") << altNames << "\n";
  CertificateFiles files{base + ".pem", base + ".key"};
  runCommand(std::string(kNewKey) + "-subj /CN=" + names.front() + " -keyout " + files.keyPath +
             " -out " + base + ".csr");
  runCommand("openssl x509 -req -days 2 -in " + base + ".csr -CA " + certificatePath_ + " -CAkey " +
             keyPath_ + " -CAcreateserial -extfile " + base + ".ext -out " + files.chainPath);
  return files;
}

}  // namespace gw::test
