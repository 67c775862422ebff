#include "gateway/proxy/balance_key.h"

namespace gw::proxy {

std::optional<std::string_view> cookieValue(std::string_view field, std::string_view name) {
  while (!field.empty()) {
    const std::size_t end = field.find(';');
    std::string_view pair = field.substr(0, end);
    field = end == std::string_view::npos ? std::string_view() : field.substr(end + 1);
    while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
    const std::size_t equals = pair.find('=');
    if (equals == std::string_view::npos || pair.substr(0, equals) != name) continue;
    std::string_view value = pair.substr(equals + 1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    return value;
  }
  return std::nullopt;
}

}  // namespace gw::proxy
