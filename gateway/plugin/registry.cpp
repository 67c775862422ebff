#include "gateway/plugin/registry.h"

#include <stdexcept>

namespace gw::plugin {

void Registry::add(std::unique_ptr<Factory> factory) {
  factory->slots_ = {counterSlots_, static_cast<uint32_t>(logFields_.size())};
  for (const observability::CounterFamily& family : factory->counters()) {
    counters_.push_back(family);
    counterSlots_ += static_cast<uint32_t>(family.series());
  }
  for (std::string_view name : factory->logFields()) logFields_.push_back(name);
  // A programming error in a plugin's declaration, found when the registry is built.
  if (logFields_.size() > ExchangeNotes::kMaxFields) {
    throw std::logic_error("plugins declare more access-log fields than ExchangeNotes holds");
  }
  factories_.push_back(std::move(factory));
}

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
