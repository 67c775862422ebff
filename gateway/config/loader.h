#pragma once
// Builds a validated config::Config from YAML. This is the only core file that sees yaml-cpp: its
// exceptions stop here, and every problem found becomes a Diagnostic carrying FILE:LINE:COL.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/plugin/registry.h"

namespace gw::config {

struct LoadResult {
  std::optional<Config> config;      // set exactly when `errors` is empty
  std::vector<Diagnostic> errors;    // every problem found (not just the first), in file order
  std::vector<Diagnostic> warnings;  // valid but probably not what was meant
};

// Reads and validates the file at `path`; an unreadable file is reported as "PATH:0:0: ...".
// Plugin names are resolved in `plugins` (tests pass their own registry).
LoadResult loadFile(const std::string& path,
                    const plugin::Registry& plugins = plugin::Registry::builtin());

// Same as loadFile for text already in memory; `sourceName` is used as FILE in diagnostics.
LoadResult loadString(std::string_view yaml, const std::string& sourceName,
                      const plugin::Registry& plugins = plugin::Registry::builtin());

}  // namespace gw::config
