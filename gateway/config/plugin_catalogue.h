#pragma once
// What the loader knows of plugins: their types, by name, each able to parse its own settings.
// Defined here, below the plugin seam, so that configuration depends on no plugin code:
// plugin::Registry is the catalogue gatewayd passes in, plugin::Factory a PluginType and
// plugin::RouteConfig a PluginSettings.

#include <memory>
#include <string_view>
#include <vector>

#include "gateway/config/model.h"

namespace YAML {
class Node;
}

namespace gw::config {

// A plugin's parsed settings: validated once at load, immutable, shared by every worker.
struct PluginSettings {
  virtual ~PluginSettings() = default;
  // Whether these settings need the `redis:` block (e.g. rate_limit's `store: redis`): the loader
  // reports such an entry, at its position, when the configuration has none.
  virtual bool usesRedis() const { return false; }
};

// What the rest of the configuration offers a plugin's settings while they are parsed.
struct SettingsContext {
  const RedisConfig* redis = nullptr;  // the `redis:` block (key prefix and secret); null: none
};

class PluginType {
 public:
  virtual ~PluginType() = default;
  virtual std::string_view name() const = 0;
  // What the plugin does, for the loader's order checks ("auth", "request_id", "logging",
  // "rate_limit", ...); empty means the plugin's name.
  virtual std::string_view kind() const { return ""; }
  // Whether one route may list the plugin more than once (e.g. two rate_limit tiers).
  virtual bool allowsRepeats() const { return false; }
  // Load time only (the loader's thread); YAML stops here. Returns null after adding at least
  // one error. `settings` is the value under the plugin's name (null node: no settings).
  virtual std::shared_ptr<const PluginSettings> parseSettings(
      const YAML::Node& settings, const SettingsContext& context,
      std::vector<ConfigError>& errors) const = 0;
};

class PluginCatalogue {
 public:
  virtual ~PluginCatalogue() = default;
  virtual const PluginType* find(std::string_view name) const = 0;
  // In the order they were added, for "known plugins: ..." messages.
  virtual std::vector<std::string_view> names() const = 0;
};

}  // namespace gw::config
