#pragma once
// Certificates made at test time with the openssl command, as an operator would make them:
// a CA, and leaf certificates it signs (ECDSA P-256), each with its DNS names and 127.0.0.1.

#include <string>
#include <vector>

namespace gw::test {

struct CertificateFiles {
  std::string chainPath;  // the leaf certificate (PEM)
  std::string keyPath;    // its private key (PEM, unencrypted)
};

class TestCa {
 public:
  // Writes the CA's certificate and key into `dir` (which must exist and outlive this).
  explicit TestCa(std::string dir);
  const std::string& certificatePath() const { return certificatePath_; }
  // A leaf for `names` (the first is also its CN), files named after `stem`.
  CertificateFiles issue(const std::string& stem, const std::vector<std::string>& names) const;

 private:
  std::string dir_;
  std::string certificatePath_;
  std::string keyPath_;
};

// Runs a shell command, failing the test (with the command) when it does not exit 0.
void runCommand(const std::string& command);

}  // namespace gw::test
