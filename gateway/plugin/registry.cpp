#include "gateway/plugin/registry.h"

namespace gw::plugin {

void Registry::add(std::unique_ptr<Factory> factory) { factories_.push_back(std::move(factory)); }

const Factory* Registry::find(std::string_view name) const {
  for (const auto& factory : factories_) {
    if (factory->name() == name) return factory.get();
  }
  return nullptr;
}

std::vector<std::string_view> Registry::names() const {
  std::vector<std::string_view> out;
  for (const auto& factory : factories_) out.push_back(factory->name());
  return out;
}

}  // namespace gw::plugin
