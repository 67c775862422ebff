#include "gateway/config/yaml_words.h"

#include <algorithm>
#include <map>

namespace gw::config {

std::string quote(std::string_view text) {
  std::string out;  // built by appending: "'" + std::string(text) trips GCC 12's -Wrestrict
  out.reserve(text.size() + 2);
  out.append(1, '\'').append(text).append(1, '\'');
  return out;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return quote(node.Scalar());
    default:
      return "nothing";
  }
}

void checkMapKeys(const YAML::Node& map, std::string_view what,
                  std::initializer_list<std::string_view> allowed,
                  const std::function<void(const YAML::Node&, std::string)>& error,
                  const std::function<std::string(const YAML::Mark&)>& firstAt,
                  std::string_view noKeysNote) {
  std::map<std::string, YAML::Mark> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      error(key, "keys must be plain names, got " + describe(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string expected;
      for (std::string_view k : allowed) expected += (expected.empty() ? "" : ", ") + std::string(k);
      std::string tail = allowed.size() == 0 && !noKeysNote.empty()
                             ? " " + std::string(noKeysNote)
                             : "; expected one of: " + expected;
      error(key, "unknown key " + quote(name) + " in " + std::string(what) + tail);
    } else if (const auto [first, inserted] = seen.emplace(name, key.Mark()); !inserted) {
      error(key, "duplicate key " + quote(name) + " (first at " + firstAt(first->second) + ")");
    }
  }
}

}  // namespace gw::config
