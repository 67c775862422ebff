#include "gateway/plugin/config_reader.h"

#include <algorithm>
#include <charconv>

#include "gateway/config/units.h"
#include "gateway/config/yaml_words.h"

namespace gw::plugin {

ConfigReader::ConfigReader(const YAML::Node& settings, std::string_view what,
                           std::vector<ConfigError>& errors)
    : what_(what), errors_(errors) {
  if (settings.IsMap()) {
    map_ = settings;
  } else if (settings.IsDefined() && !settings.IsNull()) {
    error(settings, "the settings of " + what_ + " must be a mapping, got " + describe(settings));
  }
}

std::string ConfigReader::quote(std::string_view text) { return config::quote(text); }

std::string ConfigReader::describe(const YAML::Node& node) { return config::describe(node); }

void ConfigReader::error(const YAML::Node& at, std::string message) {
  const YAML::Mark mark = at.IsDefined() ? at.Mark() : YAML::Mark::null_mark();
  // A null mark (-1) becomes 0: "no position", which the loader replaces by the plugin entry's.
  errors_.push_back({std::max(mark.line + 1, 0), std::max(mark.column + 1, 0), std::move(message)});
}

std::optional<ConfigReader::Field> ConfigReader::find(std::string_view key) const {
  if (!map_.IsMap()) return std::nullopt;
  for (auto it = map_.begin(); it != map_.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return Field{it->first, it->second};
  }
  return std::nullopt;
}

std::optional<YAML::Node> ConfigReader::value(std::string_view key) const {
  const auto field = find(key);
  if (!field) return std::nullopt;
  return field->value;
}

void ConfigReader::allowKeys(std::initializer_list<std::string_view> allowed) {
  if (!map_.IsMap()) return;
  config::checkMapKeys(
      map_, what_, allowed,
      [&](const YAML::Node& key, std::string message) { error(key, std::move(message)); },
      [](const YAML::Mark& mark) {
        return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
      },
      "(it takes no settings)");
}

std::optional<std::pair<ConfigReader::Field, std::string>> ConfigReader::scalar(
    std::string_view key, std::string_view expected) {
  const auto field = find(key);
  if (!field) return std::nullopt;
  if (!field->value.IsScalar()) {
    error(field->anchor(),
          quote(key) + " must be " + std::string(expected) + ", got " + describe(field->value));
    return std::nullopt;
  }
  return std::pair(*field, field->value.Scalar());
}

bool ConfigReader::readString(std::string_view key, std::string& out) {
  const auto text = scalar(key, "a string");
  if (!text) return false;
  out = text->second;
  return true;
}

bool ConfigReader::readBool(std::string_view key, bool& out) {
  const auto text = scalar(key, "true or false");
  if (!text) return false;
  if (text->second != "true" && text->second != "false") {
    error(text->first.anchor(),
          quote(key) + ": expected true or false, got " + quote(text->second));
    return false;
  }
  out = text->second == "true";
  return true;
}

bool ConfigReader::readInt(std::string_view key, int64_t& out, int64_t min, int64_t max) {
  const std::string expected =
      "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  const auto text = scalar(key, expected);
  if (!text) return false;
  const std::string& s = text->second;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || value < min || value > max) {
    error(text->first.anchor(), quote(key) + ": expected " + expected + ", got " + quote(s));
    return false;
  }
  out = value;
  return true;
}

bool ConfigReader::readDuration(std::string_view key, config::Duration& out, config::Duration min) {
  const auto text = scalar(key, "a duration such as 5s");
  if (!text) return false;
  std::string why;
  auto value = config::parseDuration(text->second, why);
  if (value && *value < min) {
    why = "expected at least " + std::to_string(min.count()) + "ms, got " + quote(text->second);
    value.reset();
  }
  if (!value) {
    error(text->first.anchor(), quote(key) + ": " + why);
    return false;
  }
  out = *value;
  return true;
}

bool ConfigReader::readSize(std::string_view key, std::size_t& out, std::size_t min) {
  const auto text = scalar(key, "a size such as 64KiB");
  if (!text) return false;
  std::string why;
  auto value = config::parseSize(text->second, why);
  if (value && *value < min) {
    why = "expected at least " + std::to_string(min) + "B, got " + quote(text->second);
    value.reset();
  }
  if (!value) {
    error(text->first.anchor(), quote(key) + ": " + why);
    return false;
  }
  out = *value;
  return true;
}

bool ConfigReader::readStrings(std::string_view key, std::vector<std::string>& out) {
  const auto field = find(key);
  if (!field) return false;
  if (!field->value.IsSequence()) {
    error(field->anchor(),
          quote(key) + " must be a list of strings, got " + describe(field->value));
    return false;
  }
  std::vector<std::string> values;
  bool ok = true;
  for (const YAML::Node& entry : field->value) {
    if (entry.IsScalar()) {
      values.push_back(entry.Scalar());
    } else {
      error(entry, "each entry of " + quote(key) + " must be a string, got " + describe(entry));
      ok = false;
    }
  }
  if (ok) out = std::move(values);
  return ok;
}

std::optional<std::size_t> ConfigReader::readChoice(std::string_view key,
                                                    const std::vector<std::string_view>& names) {
  const std::string expected = config::alternatives(names);
  const auto text = scalar(key, expected);
  if (!text) return std::nullopt;
  const auto found = std::find(names.begin(), names.end(), text->second);
  if (found == names.end()) {
    error(text->first.anchor(),
          quote(key) + ": expected " + expected + ", got " + quote(text->second));
    return std::nullopt;
  }
  return static_cast<std::size_t>(found - names.begin());
}

std::optional<YAML::Node> ConfigReader::readMap(std::string_view key) {
  const auto field = find(key);
  if (!field || field->value.IsNull()) return std::nullopt;
  if (!field->value.IsMap()) {
    error(field->anchor(), quote(key) + " must be a mapping, got " + describe(field->value));
    return std::nullopt;
  }
  return field->value;
}

}  // namespace gw::plugin
