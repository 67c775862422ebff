#pragma once
// How configuration errors talk about YAML: the one quoting and describing routine of every
// configuration message (the loader's, NodeReader's and each plugin's). Config code only:
// includes yaml-cpp.

#include <yaml-cpp/yaml.h>

#include <span>
#include <string>
#include <string_view>

namespace gw::config {

std::string quote(std::string_view text);
// What a node holds, for "must be X, got Y" messages.
std::string describe(const YAML::Node& node);
// The names as alternatives: "a", "a or b", "a, b or c".
std::string alternatives(std::span<const std::string_view> names);

}  // namespace gw::config
