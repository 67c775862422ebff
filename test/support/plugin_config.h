#pragma once
// Plugin settings that must be refused: what a plugin unit test compares against, one string per
// error as "LINE:COL: message", the position 1-based as gatewayd reports it.

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::test {

inline std::vector<std::string> configErrors(const plugin::Factory& factory,
                                             const std::string& yaml) {
  std::vector<plugin::ConfigError> errors;
  const bool refused = factory.parse(YAML::Load(yaml), errors) == nullptr;
  std::vector<std::string> lines;
  if (!refused) lines.push_back("settings were accepted");
  for (const auto& e : errors) {
    lines.push_back(std::to_string(e.line) + ":" + std::to_string(e.column) + ": " + e.message);
  }
  return lines;
}

}  // namespace gw::test
