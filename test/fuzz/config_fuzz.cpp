// The configuration loader on any text, as `gatewayd -t` and the start of `gatewayd -c` take a
// file: YAML parsing, every section's checks, every plugin's settings (inline `schema:` JSON
// Schemas written in YAML included), the route overlap checks, then — for a file that loads
// and names only IP literals, so nothing is resolved over the network — the snapshot (routes
// compiled) and a worker built on it, which compiles each plugin's per-worker state (a schema
// RapidJSON cannot compile crashes here, not at load).
//
// Nothing is caught: the loader promises a FILE:LINE:COL error for every bad file, so an
// escaping exception, a crash, a leak or a run past -timeout / -rss_limit_mb is a finding.
//
// Invariants (any break aborts):
//   - a configuration is returned exactly when there is no error;
//   - every diagnostic names the file, has a message, and points inside the text (line 0 and
//     column 0 together only, for the whole file).

#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/loader.h"
#include "gateway/runtime/load_environment.h"
#include "gateway/runtime/snapshot.h"
#include "gateway/runtime/worker.h"
#include "gateway/upstream/health.h"
#include "test/fuzz/fuzz_check.h"

namespace gw::fuzz {
namespace {

constexpr std::string_view kSource = "fuzz.yaml";

bool ipLiteral(const std::string& host) {
  unsigned char address[16];
  return ::inet_pton(AF_INET, host.c_str(), address) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), address) == 1;
}

bool resolvesLocally(const config::Config& config) {
  for (const auto& listener : config.listeners) {
    if (!ipLiteral(listener.address)) return false;
  }
  for (const auto& upstream : config.upstreams) {
    for (const auto& backend : upstream.backends) {
      if (!ipLiteral(backend.host)) return false;
    }
  }
  return !config.admin.enabled || ipLiteral(config.admin.address);
}

void checkDiagnostic(const config::Diagnostic& diagnostic, std::size_t lines) {
  FUZZ_REQUIRE(diagnostic.where.file == kSource, "a diagnostic names another file");
  FUZZ_REQUIRE(!diagnostic.message.empty(), "a diagnostic without a message");
  const auto line = diagnostic.where.line;
  const auto column = diagnostic.where.column;
  FUZZ_REQUIRE(line >= 0 && column >= 0 && (line == 0) == (column == 0),
               "a diagnostic with a negative or half-missing position");
  FUZZ_REQUIRE(static_cast<std::size_t>(line) <= lines + 1, "a diagnostic past the last line");
}

// A worker over the snapshot: what `-c` builds before serving (the listening sockets are the
// process's, not the worker's).
void buildWorker(std::shared_ptr<const runtime::Snapshot> snapshot) {
  std::vector<upstream::UpstreamHealthSpec> specs;
  for (std::size_t u = 0; u < snapshot->config.upstreams.size(); ++u) {
    upstream::UpstreamHealthSpec& spec = specs.emplace_back();
    spec.name = snapshot->config.upstreams[u].name;
    spec.backends = snapshot->metricsLayout->upstreams[u].backends;
  }
  auto health = std::make_shared<upstream::HealthBoard>(std::move(specs));
  runtime::Worker worker(0, std::move(snapshot), health, proxy::SharedServices{});
}

}  // namespace
}  // namespace gw::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace gw::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const gw::plugin::Registry& plugins = gw::plugin::Registry::builtin();
  gw::config::LoadResult loaded =
      gw::config::loadString(text, std::string(kSource), gw::runtime::loadEnvironment(plugins));
  FUZZ_REQUIRE(loaded.config.has_value() == loaded.errors.empty(),
               "a configuration returned with errors, or none without");
  // YAML breaks lines at LF, CR and CRLF: counting both bytes bounds the line numbers.
  const auto breaks =
      std::count_if(text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; });
  const auto lines = static_cast<std::size_t>(breaks);
  for (const auto& error : loaded.errors) checkDiagnostic(error, lines);
  for (const auto& warning : loaded.warnings) checkDiagnostic(warning, lines);
  if (!loaded.config || !resolvesLocally(*loaded.config)) return 0;
  std::vector<gw::config::Diagnostic> errors;
  auto snapshot = gw::runtime::buildSnapshot(std::move(*loaded.config), plugins, errors);
  if (snapshot) buildWorker(std::move(snapshot));
  return 0;
}
