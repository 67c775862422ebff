#pragma once
// Aliases let a few bytes name a node many times (a list of ten `*a`, each a list of ten `*b`,
// ...) or name a node inside itself, and everything that reads the configuration walks the tree
// as it sees it, every alias expanded. This measures that tree without walking it: each distinct
// node is visited once and its expanded size remembered. (Config code only: includes yaml-cpp.)

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>

namespace gw::config {

struct ExpansionProblem {
  YAML::Node at;  // an alias inside the node it names, or the smallest node too large
  std::string message;
};

// Nothing when `root` holds at most `maxNodes` nodes with every alias expanded.
std::optional<ExpansionProblem> checkExpandedSize(const YAML::Node& root, std::size_t maxNodes);

}  // namespace gw::config
