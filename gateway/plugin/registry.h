#pragma once
// The plugin types gatewayd knows, by name: the catalogue the loader resolves plugin entries in.
// Filled once by builtin() (generated from the list in plugins/meson.build: static libraries drop
// self-registering objects), read-only afterwards.

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::plugin {

class Registry final : public config::PluginCatalogue {
 public:
  // The registry of built-in plugins (defined in the generated plugins/builtin.cpp).
  static const Registry& builtin();

  void add(std::unique_ptr<Factory> factory);
  const Factory* find(std::string_view name) const override;
  std::vector<std::string_view> names() const override;
  std::span<const std::unique_ptr<Factory>> factories() const { return factories_; }
  // Every type's counter families and log fields, in the order of their slots.
  std::span<const observability::CounterFamily> counterFamilies() const { return counters_; }
  std::span<const std::string_view> logFields() const { return logFields_; }

 private:
  std::vector<std::unique_ptr<Factory>> factories_;
  std::vector<observability::CounterFamily> counters_;
  std::vector<std::string_view> logFields_;
  uint32_t counterSlots_ = 0;
};

}  // namespace gw::plugin
