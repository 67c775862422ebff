#pragma once
// How configuration errors talk about YAML, shared by the loader and plugins' settings readers so
// every message is worded the same way. (Config code only: includes yaml-cpp.)

#include <yaml-cpp/yaml.h>

#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace gw::config {

std::string quote(std::string_view text);
// What a node holds, for "must be X, got Y" messages.
std::string describe(const YAML::Node& node);
// The names as alternatives: "a", "a or b", "a, b or c".
std::string alternatives(std::span<const std::string_view> names);

// Reports, through `error(node, message)`, keys of `map` that are not plain names, not in
// `allowed`, or given twice; `firstAt(mark)` words where a repeated key first appeared.
// `noKeysNote` replaces the "expected one of" list when nothing is allowed.
void checkMapKeys(const YAML::Node& map, std::string_view what,
                  std::initializer_list<std::string_view> allowed,
                  const std::function<void(const YAML::Node&, std::string)>& error,
                  const std::function<std::string(const YAML::Mark&)>& firstAt,
                  std::string_view noKeysNote = "");

}  // namespace gw::config
