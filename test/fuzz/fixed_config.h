#pragma once
// The configuration a target runs its inputs against: fixed YAML (IP literals only, so nothing
// is resolved over the network), loaded once at start-up; an error in it is the harness's bug.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/loader.h"
#include "gateway/runtime/load_environment.h"
#include "gateway/runtime/snapshot.h"
#include "test/fuzz/fuzz_check.h"

namespace gw::fuzz {

// The snapshot of `yaml`, without listening addresses: a target's worker accepts nothing.
inline std::shared_ptr<const runtime::Snapshot> fixedSnapshot(std::string_view yaml) {
  config::LoadResult loaded =
      config::loadString(yaml, "fuzz-target.yaml", runtime::loadEnvironment());
  for (const auto& error : loaded.errors) std::fprintf(stderr, "%s\n", error.format().c_str());
  FUZZ_REQUIRE(loaded.config, "the target's own configuration does not load");
  std::vector<config::Diagnostic> errors;
  auto snapshot =
      runtime::buildSnapshot(std::move(*loaded.config), plugin::Registry::builtin(), errors);
  FUZZ_REQUIRE(snapshot, "the target's own configuration does not resolve");
  // buildSnapshot made it (make_shared, non-const): a worker built on it then opens no socket.
  const_cast<runtime::Snapshot&>(*snapshot).listenerAddresses.clear();
  return snapshot;
}

}  // namespace gw::fuzz
