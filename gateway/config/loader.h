#pragma once
// Builds a validated config::Config from YAML. yaml-cpp's exceptions stop here, and every problem
// found becomes a Diagnostic carrying FILE:LINE:COL. The sections are read in loader_*.cpp.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/config/plugin_catalogue.h"

namespace gw::config {

struct LoadResult {
  std::optional<Config> config;      // set exactly when `errors` is empty
  std::vector<Diagnostic> errors;    // every problem found (not just the first), in file order
  std::vector<Diagnostic> warnings;  // valid but probably not what was meant
};

// What the loader leaves to the floors above it: the plugin types, and the values only
// observability can judge. runtime/load_environment.h gives gatewayd's.
struct LoadEnvironment {
  const PluginCatalogue& plugins;
  // Whether `name` is an access-log field (access_log.fields).
  std::function<bool(std::string_view name)> isAccessLogField;
  // Why `endpoint` is not an OTLP endpoint gatewayd can export to; nothing when it is one.
  std::function<std::optional<std::string>(std::string_view endpoint)> otlpEndpointProblem;
};

// The largest configuration file read; larger is an error before parsing. yaml-cpp needs about
// 500 bytes and 7 microseconds per node, so the densest file this allows costs ~1 GB and ~13 s.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{4} << 20;
// The most YAML nodes the configuration may hold with every alias expanded (each `*name` counts
// as a copy of its anchored node): bounds the work of everything that walks the tree. A file of
// 20,000 routes holds about 150,000.
inline constexpr std::size_t kMaxYamlNodes = 1'000'000;

// Reads and validates the file at `path`; an unreadable file (missing, a directory, larger than
// kMaxConfigBytes, a FIFO that does not deliver) is reported as "PATH:0:0: ...".
LoadResult loadFile(const std::string& path, const LoadEnvironment& environment);

// Same as loadFile for text already in memory; `sourceName` is used as FILE in diagnostics.
LoadResult loadString(std::string_view yaml, const std::string& sourceName,
                      const LoadEnvironment& environment);

}  // namespace gw::config
