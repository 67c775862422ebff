#pragma once
// Header fields as the cache core sees them, independent of the engine's containers: a stored
// response owns a vector<Field>; request-side inputs arrive through FieldsView, which the plugin
// implements over its HeaderMap in a few lines, so a lookup copies nothing.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace gw::plugins::cache {

struct Field {
  std::string name;
  std::string value;
};

class FieldsView {
 public:
  virtual ~FieldsView() = default;
  virtual std::size_t size() const = 0;
  virtual std::pair<std::string_view, std::string_view> at(std::size_t i) const = 0;
};

class FieldSpan final : public FieldsView {
 public:
  explicit FieldSpan(std::span<const Field> fields) : fields_(fields) {}
  std::size_t size() const override { return fields_.size(); }
  std::pair<std::string_view, std::string_view> at(std::size_t i) const override {
    return {fields_[i].name, fields_[i].value};
  }

 private:
  std::span<const Field> fields_;
};

// The first field line of that name (case-insensitive); the RFCs' "first wins" for singletons.
std::optional<std::string_view> firstValue(const FieldsView& fields, std::string_view name);

// Every field line of that name combined with ", " (RFC 9110 §5.3), each line OWS-trimmed, into
// `out` (overwritten). False, with `out` empty, when the field is absent.
bool combinedValue(const FieldsView& fields, std::string_view name, std::string& out);

std::string_view trimOws(std::string_view s);

// Calls fn(element) for each non-empty, OWS-trimmed element of a comma-separated list value
// (RFC 9110 §5.6.1); commas inside quoted strings do not split. fn returns false to stop.
template <typename Fn>
void forEachListElement(std::string_view value, Fn&& fn) {
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size()) {
      char c = value[i];
      if (quoted && c == '\\') {
        ++i;
        continue;
      }
      if (c == '"') quoted = !quoted;
      if (c != ',' || quoted) continue;
    }
    std::string_view element = trimOws(value.substr(start, i - start));
    if (!element.empty() && !fn(element)) return;
    start = i + 1;
  }
}

}  // namespace gw::plugins::cache
