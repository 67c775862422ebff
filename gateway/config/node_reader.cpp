#include "gateway/config/node_reader.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "gateway/config/units.h"

namespace gw::config {

void addError(std::vector<ConfigError>& errors, const YAML::Node& at, std::string message) {
  const YAML::Mark mark = at.IsDefined() ? at.Mark() : YAML::Mark::null_mark();
  // A null mark (-1) becomes 0: "no position", which the loader replaces by the plugin entry's.
  errors.push_back({std::max(mark.line + 1, 0), std::max(mark.column + 1, 0), std::move(message)});
}

NodeReader::NodeReader(const YAML::Node& map, std::string_view what,
                       std::vector<ConfigError>& errors, std::string_view source)
    : what_(what), errors_(errors), source_(source) {
  if (map.IsMap()) map_ = map;
}

NodeReader NodeReader::settings(const YAML::Node& settings, std::string_view what,
                                std::vector<ConfigError>& errors) {
  NodeReader reader(settings, what, errors);
  if (settings.IsDefined() && !settings.IsNull() && !settings.IsMap()) {
    reader.error(settings, "the settings of " + reader.what_ + " must be a mapping, got " +
                               describe(settings));
  }
  return reader;
}

std::string NodeReader::position(const YAML::Mark& mark) const {
  const std::string line = std::to_string(mark.line + 1);
  const std::string column = std::to_string(mark.column + 1);
  if (source_.empty()) return "line " + line + ", column " + column;
  return std::string(source_) + ":" + line + ":" + column;
}

std::optional<NodeReader::Field> NodeReader::field(std::string_view key) const {
  if (!map_.IsMap()) return std::nullopt;
  for (auto it = map_.begin(); it != map_.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return Field{it->first, it->second};
  }
  return std::nullopt;
}

std::optional<YAML::Node> NodeReader::value(std::string_view key) const {
  const auto found = field(key);
  if (!found) return std::nullopt;
  return found->value;
}

void NodeReader::allowKeys(std::initializer_list<std::string_view> allowed) {
  if (!map_.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (auto it = map_.begin(); it != map_.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      error(key, "keys must be plain names, got " + describe(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string expected;
      for (std::string_view k : allowed)
        expected += (expected.empty() ? "" : ", ") + std::string(k);
      const std::string tail =
          allowed.size() == 0 ? " (it takes no settings)" : "; expected one of: " + expected;
      error(key, "unknown key " + quote(name) + " in " + what_ + tail);
    } else if (const auto [first, inserted] = seen.emplace(name, key.Mark()); !inserted) {
      error(key, "duplicate key " + quote(name) + " (first at " + position(first->second) + ")");
    }
  }
}

bool NodeReader::require(std::string_view key) {
  if (has(key)) return true;
  error(map_, what_ + " is missing required key " + quote(key));
  return false;
}

std::optional<YAML::Node> NodeReader::requireList(std::string_view key) {
  if (!require(key)) return std::nullopt;
  const Field list = *field(key);
  if (!list.value.IsSequence()) {
    error(list.anchor(), quote(key) + " must be a list, got " + describe(list.value));
  } else if (list.value.size() == 0) {
    error(list.anchor(), quote(key) + " must have at least one entry");
  } else {
    return list.value;
  }
  return std::nullopt;
}

std::optional<std::pair<NodeReader::Field, std::string>> NodeReader::scalar(
    std::string_view key, std::string_view expected) {
  const auto found = field(key);
  if (!found) return std::nullopt;
  if (!found->value.IsScalar()) {
    error(found->anchor(),
          quote(key) + " must be " + std::string(expected) + ", got " + describe(found->value));
    return std::nullopt;
  }
  return std::pair(*found, found->value.Scalar());
}

bool NodeReader::readString(std::string_view key, std::string& out) {
  return read(key, "a string", out,
              [](const std::string& text, std::string&) { return std::optional(text); });
}

bool NodeReader::readBool(std::string_view key, bool& out) {
  return read(key, "true or false", out, [](const std::string& text, std::string& why) {
    if (text == "true" || text == "false") return std::optional(text == "true");
    why = "expected true or false, got " + quote(text);
    return std::optional<bool>();
  });
}

bool NodeReader::readInt(std::string_view key, int64_t& out, int64_t min, int64_t max) {
  const std::string expected =
      "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  return read(key, expected, out, [&](const std::string& text, std::string& why) {
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
        value > max) {
      why = "expected " + expected + ", got " + quote(text);
      return std::optional<int64_t>();
    }
    return std::optional(value);
  });
}

namespace {

// A duration or size through `parse` (parseDuration, parseSize), refusing values below `min`.
template <typename T>
auto atLeast(T min, const std::string& minText,
             std::optional<T> (*parse)(std::string_view, std::string&)) {
  return [=](const std::string& text, std::string& why) {
    auto value = parse(text, why);
    if (value && *value < min) {
      why = "expected at least " + minText + ", got " + quote(text);
      value.reset();
    }
    return value;
  };
}

}  // namespace

bool NodeReader::readDuration(std::string_view key, Duration& out, Duration min) {
  return read(key, "a duration such as 5s", out,
              atLeast(min, std::to_string(min.count()) + "ms", parseDuration));
}

bool NodeReader::readSize(std::string_view key, std::size_t& out, std::size_t min) {
  return read(key, "a size such as 64KiB", out, atLeast(min, std::to_string(min) + "B", parseSize));
}

bool NodeReader::readStrings(std::string_view key, std::vector<std::string>& out) {
  const auto found = field(key);
  if (!found) return false;
  if (!found->value.IsSequence()) {
    error(found->anchor(),
          quote(key) + " must be a list of strings, got " + describe(found->value));
    return false;
  }
  std::vector<std::string> values;
  bool ok = true;
  for (const YAML::Node& entry : found->value) {
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

std::optional<YAML::Node> NodeReader::readMap(std::string_view key) {
  const auto found = field(key);
  if (!found || found->value.IsNull()) return std::nullopt;
  if (!found->value.IsMap()) {
    error(found->anchor(), quote(key) + " must be a mapping, got " + describe(found->value));
    return std::nullopt;
  }
  return found->value;
}

}  // namespace gw::config
