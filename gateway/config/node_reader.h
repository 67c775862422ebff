#pragma once
// The one YAML reader: typed reads of the keys of one mapping, used by the loader for every
// section and by every plugin's *_config.cpp, so that all configuration problems are worded the
// same way and located at the 1-based line and column of the offending node. An absent key
// keeps the caller's default; a bad value keeps it too and adds a ConfigError. Load time only.

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
#include "gateway/config/yaml_words.h"

namespace gw::config {

// Adds an error located at `at`; a node without a position (an absent one) gives line 0.
void addError(std::vector<ConfigError>& errors, const YAML::Node& at, std::string message);

class NodeReader {
 public:
  // A key/value pair of the mapping. An empty value (`key:`) has no useful position of its own,
  // so it is reported at its key.
  struct Field {
    YAML::Node key;
    YAML::Node value;
    const YAML::Node& anchor() const { return value.IsNull() ? key : value; }
  };

  // Reads `map` (anything but a mapping holds no keys), named `what` in messages ("unknown key
  // 'x' in WHAT", "WHAT is missing required key 'x'"). `source`, the file name, words where a
  // repeated key first appeared ("FILE:LINE:COL"; without it "line L, column C"); it must
  // outlive the reader.
  NodeReader(const YAML::Node& map, std::string_view what, std::vector<ConfigError>& errors,
             std::string_view source = {});
  // A plugin's settings: a mapping, or null for "no settings"; anything else is reported and
  // read as empty.
  static NodeReader settings(const YAML::Node& settings, std::string_view what,
                             std::vector<ConfigError>& errors);

  // Reports keys not in `allowed`, keys that are not plain names, and keys given twice.
  void allowKeys(std::initializer_list<std::string_view> allowed);

  bool has(std::string_view key) const { return field(key).has_value(); }
  std::optional<Field> field(std::string_view key) const;
  // The raw value of `key` (null node when given as `key:`), for shapes the reads below don't
  // cover; report problems in it with error().
  std::optional<YAML::Node> value(std::string_view key) const;

  // Reports a missing `key`, at the mapping; true when it is there.
  bool require(std::string_view key);
  // The entries of the required, non-empty list `key`, or nothing (reported).
  std::optional<YAML::Node> requireList(std::string_view key);

  // The scalar under `key` through `convert(text, why)`, which returns the value or nothing
  // with `why` set; `expected` words what a non-scalar should have been. Each read returns true
  // when it set `out`.
  template <typename T, typename Convert>
  bool read(std::string_view key, std::string_view expected, T& out, Convert convert) {
    const auto text = scalar(key, expected);
    if (!text) return false;
    std::string why;
    std::optional<T> value = convert(text->second, why);
    if (!value) {
      error(text->first.anchor(), quote(key) + ": " + why);
      return false;
    }
    out = std::move(*value);
    return true;
  }
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
  bool readDuration(std::string_view key, Duration& out, Duration min = Duration(0));
  bool readSize(std::string_view key, std::size_t& out, std::size_t min = 0);
  // A list of strings; `[]` is accepted and gives an empty list.
  bool readStrings(std::string_view key, std::vector<std::string>& out);
  // One of the given names, mapped to its value.
  template <typename E>
  bool readEnum(std::string_view key, E& out,
                std::initializer_list<std::pair<std::string_view, E>> choices) {
    std::vector<std::string_view> names;
    for (const auto& choice : choices) names.push_back(choice.first);
    const std::string expected = alternatives(names);
    return read(key, expected, out, [&](const std::string& text, std::string& why) {
      for (const auto& [name, value] : choices) {
        if (text == name) return std::optional(value);
      }
      why = "expected " + expected + ", got " + quote(text);
      return std::optional<E>();
    });
  }
  // A mapping under `key` (absent or `key:` gives nothing, silently).
  std::optional<YAML::Node> readMap(std::string_view key);

  // Adds an error located at `at` (see addError).
  void error(const YAML::Node& at, std::string message) {
    addError(errors_, at, std::move(message));
  }
  // Errors added so far (through this reader or any other sharing the list).
  std::size_t errorCount() const { return errors_.size(); }
  // Where `mark` is, worded for a message: "FILE:LINE:COL", or "line L, column C".
  std::string position(const YAML::Mark& mark) const;

 private:
  // The scalar text of `key`, or nothing (absent, or reported as not `expected`).
  std::optional<std::pair<Field, std::string>> scalar(std::string_view key,
                                                      std::string_view expected);

  YAML::Node map_;
  std::string what_;
  std::vector<ConfigError>& errors_;
  std::string_view source_;
};

}  // namespace gw::config
