#pragma once
// The plugin types gatewayd knows, by name: the catalogue the loader resolves plugin entries in.
// Filled once from plugins/builtin.cpp (one explicit line per plugin: static libraries drop
// self-registering objects), read-only afterwards.

#include <memory>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::plugin {

class Registry final : public config::PluginCatalogue {
 public:
  // The registry of built-in plugins (defined in plugins/builtin.cpp).
  static const Registry& builtin();

  void add(std::unique_ptr<Factory> factory);
  const Factory* find(std::string_view name) const override;
  std::vector<std::string_view> names() const override;

 private:
  std::vector<std::unique_ptr<Factory>> factories_;
};

}  // namespace gw::plugin
