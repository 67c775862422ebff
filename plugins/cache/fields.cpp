#include "plugins/cache/fields.h"

#include "gateway/http/headers.h"

namespace gw::plugins::cache {

std::optional<std::string_view> firstValue(const FieldsView& fields, std::string_view name) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    auto [n, v] = fields.at(i);
    if (http::iequals(n, name)) return v;
  }
  return std::nullopt;
}

bool combinedValue(const FieldsView& fields, std::string_view name, std::string& out) {
  out.clear();
  bool found = false;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    auto [n, v] = fields.at(i);
    if (!http::iequals(n, name)) continue;
    if (found) out += ", ";
    out += trimOws(v);
    found = true;
  }
  return found;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace gw::plugins::cache
