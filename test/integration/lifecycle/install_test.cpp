// scripts/install.sh: what it puts on a host. It runs here under DESTDIR, with dpkg-query, apt-get,
// meson and ninja replaced by scripts that record what they were asked, so the test sees which
// packages it wants without touching this machine's packages. The installed units (the service
// and its socket) pass `systemd-analyze verify`, and the service grants the log directory the
// documented access log needs.
#include <doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

const std::string kSourceRoot = GW_SOURCE_ROOT;

std::set<std::string> linesOf(const std::string& text) {
  std::set<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.insert(line);
  return lines;
}

// A directory of stand-ins for the commands install.sh and setup.sh call, each recording its
// arguments in <dir>/<command>.log. dpkg-query reports every package installed (so setup.sh asks
// for each of its packages and then stops); apt-get fails.
struct FakeTools {
  TempDir dir;
  std::string bin = dir.path() + "/bin";
  FakeTools() {
    std::filesystem::create_directory(bin);
    tool("dpkg-query", "printf '%s\\n' \"${@: -1}\" >>\"$LOG/dpkg-query.log\"; printf 'ii '");
    tool("apt-get", "echo \"$*\" >>\"$LOG/apt-get.log\"; exit 1");
    // gw_build: `meson setup DIR ...` then `ninja -C DIR`, which "builds" the real binary.
    tool("meson", "echo \"$*\" >>\"$LOG/meson.log\"; mkdir -p \"$2\"");
    tool("ninja", "cp \"$GW_BUILT\" \"$2/gatewayd\"");
  }
  void tool(const std::string& name, const std::string& body) const {
    const std::string path = bin + "/" + name;
    dir.write("bin/" + name, "#!/usr/bin/env bash\nLOG='" + dir.path() + "'\n" + body + "\n");
    ::chmod(path.c_str(), 0755);
  }
  std::string log(const std::string& name) const {
    const std::string path = dir.path() + "/" + name + ".log";
    return std::filesystem::exists(path) ? readFile(path) : "";
  }
};

struct Install {
  int exit_code = -1;
  std::string out;
};

Install runInstall(const FakeTools& tools, const std::string& destdir,
                   std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/env",
                                   "PATH=" + tools.bin + ":" + ::getenv("PATH"),
                                   "DESTDIR=" + destdir,
                                   "BUILD_DIR=" + destdir + "-build",
                                   "GW_BUILT=" + gatewaydPath(),
                                   "bash",
                                   kSourceRoot + "/scripts/install.sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  TempDir logs;
  const std::string errPath = logs.path() + "/stderr";
  Process p(argv, errPath);
  Install run;
  while (auto line = p.readLine(10000ms)) run.out += *line + "\n";
  const auto code = p.waitExit(10000ms);
  REQUIRE_MESSAGE(code.has_value(), "install.sh did not finish");
  run.exit_code = *code;
  run.out += readFile(errPath);
  return run;
}

const std::set<std::string> kBinaryPackages = {"libevent-core-2.1-7", "libyaml-cpp0.7",
                                               "libprometheus-cpp-core1.0", "libsystemd0",
                                               "libssl3", "libhiredis0.14"};

void checkInstalledTree(const std::string& root) {
  for (const char* file : {"/usr/local/bin/gatewayd", "/etc/systemd/system/gatewayd.service",
                           "/etc/systemd/system/gatewayd.socket", "/etc/gatewayd/gateway.yaml", "/usr/local/share/doc/gatewayd/README.md",
                           "/usr/local/share/doc/gatewayd/operations.md"}) {
    CHECK_MESSAGE(std::filesystem::exists(root + file), file);
  }
}

}  // namespace

TEST_CASE("install: with a prebuilt binary, only the libraries it links are wanted") {
  FakeTools tools;
  TempDir target;
  const std::string root = target.path() + "/root";
  const Install run = runInstall(tools, root, {"--binary", gatewaydPath()});
  INFO(run.out);
  REQUIRE(run.exit_code == 0);
  checkInstalledTree(root);
  CHECK(linesOf(tools.log("dpkg-query")) == kBinaryPackages);
  CHECK(tools.log("apt-get").empty());
  CHECK(tools.log("meson").empty());  // nothing built
}

TEST_CASE("install: --uninstall removes what install put there, keeps the config") {
  FakeTools tools;
  TempDir target;
  const std::string root = target.path() + "/root";
  REQUIRE(runInstall(tools, root, {"--binary", gatewaydPath()}).exit_code == 0);
  checkInstalledTree(root);
  const Install run = runInstall(tools, root, {"--uninstall"});
  INFO(run.out);
  REQUIRE(run.exit_code == 0);
  for (const char* gone : {"/usr/local/bin/gatewayd", "/etc/systemd/system/gatewayd.service",
                           "/etc/systemd/system/gatewayd.socket", "/usr/local/share/doc/gatewayd"}) {
    CHECK_MESSAGE(!std::filesystem::exists(root + gone), gone);
  }
  CHECK(std::filesystem::exists(root + "/etc/gatewayd/gateway.yaml"));
  CHECK(run.out.find("kept " + root + "/etc/gatewayd (config)") != std::string::npos);
  // Again, on a host without it: nothing to do, and no error.
  CHECK(runInstall(tools, root, {"--uninstall"}).exit_code == 0);
}

TEST_CASE("install: building on the host wants the build packages, never test or bench ones") {
  FakeTools tools;
  TempDir target;
  const std::string root = target.path() + "/root";
  const Install run = runInstall(tools, root, {});
  INFO(run.out);
  REQUIRE(run.exit_code == 0);
  checkInstalledTree(root);
  const std::set<std::string> wanted = linesOf(tools.log("dpkg-query"));
  for (const char* build : {"g++", "meson", "ninja-build", "libevent-dev", "libyaml-cpp-dev"}) {
    CHECK_MESSAGE(wanted.count(build) == 1, build);
  }
  for (const std::string& library : kBinaryPackages) CHECK(wanted.count(library) == 1);
  for (const char* neverOnAHost : {"prometheus", "nginx-light", "haproxy", "wrk", "apache2-utils",
                                   "valgrind", "strace", "h2o", "clang-format", "curl"}) {
    CHECK_MESSAGE(wanted.count(neverOnAHost) == 0, neverOnAHost);
  }
  CHECK(tools.log("apt-get").empty());
}

TEST_CASE("install: the units verify and the service grants the access log's directory") {
  FakeTools tools;
  TempDir target;
  const std::string root = target.path() + "/root";
  REQUIRE(runInstall(tools, root, {"--binary", gatewaydPath()}).exit_code == 0);
  std::string unit = readFile(root + "/etc/systemd/system/gatewayd.service");
  // ProtectSystem=strict makes every path read-only but this one: operations.md's access log
  // lives in it.
  CHECK(unit.find("\nProtectSystem=strict\n") != std::string::npos);
  CHECK(unit.find("\nLogsDirectory=gatewayd\n") != std::string::npos);
  CHECK(readFile(kSourceRoot + "/docs/operations.md").find("/var/log/gatewayd/access.log") !=
        std::string::npos);
  if (!std::filesystem::exists("/usr/bin/systemd-analyze")) {
    MESSAGE("SKIPPED: systemd-analyze verify (no /usr/bin/systemd-analyze on this machine)");
    return;
  }
  // verify checks that ExecStart's binary exists: point it at the installed one.
  for (std::size_t at; (at = unit.find("=/usr/local/bin/gatewayd")) != std::string::npos;) {
    unit.replace(at + 1, 0, root);
  }
  const std::string copy = target.write("gatewayd.service", unit);
  // The socket unit beside it, which names the service (Service=).
  const std::string socket =
      target.write("gatewayd.socket", readFile(root + "/etc/systemd/system/gatewayd.socket"));
  TempDir logs;
  Process verify({"/usr/bin/systemd-analyze", "verify", socket, copy}, logs.path() + "/stderr");
  std::string out;
  while (auto line = verify.readLine(10000ms)) out += *line + "\n";
  const auto code = verify.waitExit(10000ms);
  out += readFile(logs.path() + "/stderr");
  CHECK_MESSAGE(code == 0, out);
  CHECK_MESSAGE(out.empty(), out);  // unknown keys are only warnings: none allowed
}
