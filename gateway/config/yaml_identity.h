#pragma once
// What a part of the configuration says, independent of how it is written (block or flow style,
// quoting, comments, spacing): the key by which a reload tells an unchanged plugin entry or
// upstream from a changed one (runtime/reload_plan.h). Cheaper than re-emitting the YAML, which
// would cost a tenth of loading a configuration with a thousand routes.

#include <yaml-cpp/yaml.h>

#include <string>

namespace gw::config {

// Equal for nodes with the same structure, keys in the same order and the same scalars.
std::string identityOf(const YAML::Node& node);

}  // namespace gw::config
