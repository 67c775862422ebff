// gatewayd command line: load and validate the configuration, then run the server.

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "gateway/config/loader.h"
#include "gateway/core/log.h"
#include "gateway/runtime/load_environment.h"
#include "gateway/runtime/server.h"
#include "gateway/runtime/snapshot.h"

namespace {

constexpr std::string_view kUsage =
    "usage: gatewayd -c FILE [-t]\n"
    "\n"
    "  -c, --config FILE   configuration file (YAML)\n"
    "  -t, --test          check the configuration and exit (0 = valid)\n"
    "  -v, --version       print the version and exit\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "Signals: SIGTERM/SIGINT drain in-flight requests (shutdown.drain_timeout) and exit 0.\n"
    "         SIGUSR2 starts this binary anew with the listening sockets (an upgrade); once\n"
    "         the new process serves, this one drains and exits.\n";

void printDiagnostics(const std::vector<gw::config::Diagnostic>& diagnostics, const char* prefix) {
  for (const auto& d : diagnostics) std::fprintf(stderr, "%s%s\n", prefix, d.format().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string configPath;
  bool testOnly = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gatewayd: %s needs a file name\n%s", argv[i], kUsage.data());
        return 2;
      }
      configPath = argv[++i];
    } else if (arg == "-t" || arg == "--test") {
      testOnly = true;
    } else if (arg == "-v" || arg == "--version") {
      std::printf("gatewayd %s\n", GATEWAYD_VERSION);
      return 0;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage.data(), stdout);
      return 0;
    } else {
      std::fprintf(stderr, "gatewayd: unknown argument '%s'\n%s", argv[i], kUsage.data());
      return 2;
    }
  }
  if (configPath.empty()) {
    std::fprintf(stderr, "gatewayd: no configuration file given (-c FILE)\n%s", kUsage.data());
    return 2;
  }

  const gw::plugin::Registry& plugins = gw::plugin::Registry::builtin();
  gw::config::LoadResult loaded =
      gw::config::loadFile(configPath, gw::runtime::loadEnvironment(plugins));
  printDiagnostics(loaded.warnings, "warning: ");
  if (!loaded.config) {
    printDiagnostics(loaded.errors, "");
    return 1;
  }
  std::vector<gw::config::Diagnostic> errors;
  auto snapshot = gw::runtime::buildSnapshot(std::move(*loaded.config), plugins, errors);
  if (!snapshot) {
    printDiagnostics(errors, "");
    return 1;
  }
  if (testOnly) {
    std::printf("%s: configuration ok\n", configPath.c_str());
    return 0;
  }
  gw::runtime::Server server(snapshot);
  server.setExecutable(gw::runtime::Executable::current(argc, argv));
  return server.run();
}
