#pragma once
// Typed reads of a plugin's YAML settings, for the plugins' *_config.cpp, so that every plugin
// reports problems as the core loader does: same wording, 1-based line and column of the
// offending node. An absent key keeps the caller's default; a bad value keeps it too and adds a
// ConfigError. Load time only: this is the plugin side of the YAML boundary.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/plugin/plugin.h"

namespace gw::plugin {

class ConfigReader {
 public:
  // `settings` is the node handed to Factory::parse (a mapping, or null for "no settings");
  // `what` names it in messages, e.g. "rate_limit" or "rate_limit limit". Anything else than a
  // mapping or null is reported here, and the reader then acts as if it were empty.
  ConfigReader(const YAML::Node& settings, std::string_view what, std::vector<ConfigError>& errors);

  // Reports keys not in `allowed`, keys that are not plain names, and keys given twice.
  void allowKeys(std::initializer_list<std::string_view> allowed);

  bool has(std::string_view key) const { return find(key).has_value(); }
  // The raw value of `key` (null node when given as `key:`), for shapes the reads below don't
  // cover; report problems in it with error().
  std::optional<YAML::Node> value(std::string_view key) const;

  // Each read returns true when it set `out`.
  bool readString(std::string_view key, std::string& out);
  bool readBool(std::string_view key, bool& out);
  bool readInt(std::string_view key, int64_t& out, int64_t min, int64_t max);
  template <typename Int>
  bool readInt(std::string_view key, Int& out, std::type_identity_t<Int> min,
               std::type_identity_t<Int> max) {
    int64_t value = 0;
    if (!readInt(key, value, static_cast<int64_t>(min), static_cast<int64_t>(max))) return false;
    out = static_cast<Int>(value);
    return true;
  }
  bool readDuration(std::string_view key, config::Duration& out,
                    config::Duration min = config::Duration(0));
  bool readSize(std::string_view key, std::size_t& out, std::size_t min = 0);
  // A list of strings; `[]` is accepted and gives an empty list.
  bool readStrings(std::string_view key, std::vector<std::string>& out);
  // One of the given names, mapped to its value.
  template <typename E>
  bool readEnum(std::string_view key, E& out,
                std::initializer_list<std::pair<std::string_view, E>> choices) {
    std::vector<std::string_view> names;
    for (const auto& choice : choices) names.push_back(choice.first);
    const auto index = readChoice(key, names);
    if (!index) return false;
    out = std::data(choices)[*index].second;
    return true;
  }
  // A mapping under `key` (absent or `key:` gives nothing, silently).
  std::optional<YAML::Node> readMap(std::string_view key);

  // Adds an error located at `at` (at the key when the value is empty: `key:` has no position).
  void error(const YAML::Node& at, std::string message);
  // Errors added so far (through this reader or any other sharing the list).
  std::size_t errorCount() const { return errors_.size(); }

  // "a mapping", "a list", "'text'" or "nothing": what a node holds, for "got ..." messages.
  static std::string describe(const YAML::Node& node);
  static std::string quote(std::string_view text);

 private:
  struct Field {
    YAML::Node key;
    YAML::Node value;
    const YAML::Node& anchor() const { return value.IsNull() ? key : value; }
  };
  std::optional<Field> find(std::string_view key) const;
  // The scalar text of `key`, or nothing (absent, or reported as not `expected`).
  std::optional<std::pair<Field, std::string>> scalar(std::string_view key,
                                                      std::string_view expected);
  std::optional<std::size_t> readChoice(std::string_view key,
                                        const std::vector<std::string_view>& names);

  YAML::Node map_;
  std::string what_;
  std::vector<ConfigError>& errors_;
};

}  // namespace gw::plugin
