// Plugin lists (the global one and each route's): every entry is resolved in the environment's
// catalogue and its settings parsed by the plugin's own type; then the orders that defeat a
// plugin are warned about.

#include <algorithm>

#include "gateway/config/loader_sections.h"
#include "gateway/config/yaml_identity.h"

namespace gw::config {
namespace {

// What a plugin does, for the order checks; a type without a kind is its own kind.
std::string_view kindOf(const PluginBinding& binding) {
  const std::string_view kind = binding.type->kind();
  return kind.empty() ? binding.type->name() : kind;
}

// Kinds that should run before every other plugin, and what goes wrong when one does not.
struct FirstKind {
  std::string_view kind;
  std::string_view consequence;
};
constexpr FirstKind kFirstKinds[] = {
    {"request_id", "its errors and logs will have no request id"},
    {"logging", "requests it answers or rejects will be missing from that log"},
};

}  // namespace

// The bindings are appended to `out`, which already holds the global list when a route's own
// list is read, so a repeat of a global plugin is caught too.
void Loader::parsePlugins(const NodeReader::Field& field, std::vector<PluginBinding>& out) {
  if (field.value.IsNull()) return;
  if (!field.value.IsSequence()) {
    error(field.anchor(), "'plugins' must be a list, got " + describe(field.value));
    return;
  }
  for (const YAML::Node& entry : field.value) {
    YAML::Node name;
    YAML::Node settings;  // null: no settings
    if (entry.IsScalar()) {
      name = entry;
    } else if (entry.IsMap() && entry.size() == 1 && entry.begin()->first.IsScalar()) {
      name = entry.begin()->first;
      settings = entry.begin()->second;
    } else {
      error(entry,
            "a plugin entry must be a plugin name or a mapping with one key, the plugin name, "
            "got " +
                describe(entry));
      continue;
    }
    if (auto binding = parsePlugin(name, settings, out)) out.push_back(std::move(*binding));
  }
}

std::optional<PluginBinding> Loader::parsePlugin(const YAML::Node& name, const YAML::Node& settings,
                                                 const std::vector<PluginBinding>& earlier) {
  const PluginCatalogue& catalogue = environment_.plugins;
  PluginBinding binding;
  binding.name = name.Scalar();
  binding.where = locate(name);
  binding.type = catalogue.find(binding.name);
  if (binding.type == nullptr) {
    std::string known;
    for (std::string_view n : catalogue.names()) known += (known.empty() ? "" : ", ") + quote(n);
    error(name, "unknown plugin " + quote(binding.name) +
                    " (known plugins: " + (known.empty() ? "none" : known) + ")");
    return std::nullopt;
  }
  const auto first = std::find_if(earlier.begin(), earlier.end(),
                                  [&](const PluginBinding& b) { return b.name == binding.name; });
  if (first != earlier.end() && !binding.type->allowsRepeats()) {
    error(name, "plugin " + quote(binding.name) + " is listed twice (first at " +
                    toString(first->where) + ")");
    return std::nullopt;
  }
  std::vector<ConfigError> problems;
  try {
    const SettingsContext context{config_.redis ? &*config_.redis : nullptr};
    binding.settings = binding.type->parseSettings(settings, context, problems);
    binding.identity = identityOf(settings);
  } catch (const YAML::Exception& e) {
    problems.push_back({e.mark.line + 1, e.mark.column + 1,
                        "cannot read the settings of " + quote(binding.name) + ": " + e.msg});
  }
  for (ConfigError& problem : problems) {
    // A problem without a position (settings absent altogether) is the entry's.
    if (problem.line <= 0) {
      problem.line = binding.where.line;
      problem.column = binding.where.column;
    }
    errors_.push_back(std::move(problem));
  }
  if (!binding.settings) {
    if (problems.empty()) error(name, "plugin " + quote(binding.name) + " refused its settings");
    return std::nullopt;
  }
  if (binding.settings->usesRedis() && !config_.redis) {
    error(name, "plugin " + quote(binding.name) +
                    " uses Redis: add a top-level 'redis:' block (docs/configuration.md)");
    return std::nullopt;
  }
  return binding;
}

// The orders the plugin guide calls wrong. A global plugin is checked on every route, so the
// same warning is given once.
void Loader::warnPluginOrder(const std::vector<PluginBinding>& plugins) {
  const auto warnOnce = [&](const PluginBinding& at, std::string message) {
    if (pluginWarnings_.emplace(toString(at.where), message).second) {
      warn(at.where, std::move(message));
    }
  };
  for (std::size_t i = 0; i < plugins.size(); ++i) {
    const std::string_view kind = kindOf(plugins[i]);
    const bool isFirstKind = std::any_of(std::begin(kFirstKinds), std::end(kFirstKinds),
                                         [&](const FirstKind& f) { return f.kind == kind; });
    for (const FirstKind& first : kFirstKinds) {
      if (isFirstKind) break;
      const auto later =
          std::find_if(plugins.begin() + i + 1, plugins.end(),
                       [&](const PluginBinding& b) { return kindOf(b) == first.kind; });
      if (later != plugins.end()) {
        warnOnce(plugins[i], "plugin " + quote(plugins[i].name) + " runs before " +
                                 quote(later->name) + ": " + std::string(first.consequence));
      }
    }
    // Authentication is the expensive check a flood aims at: a per-client limit goes before it
    // (a per-key limit may follow it, the second tier).
    if (kind != "auth") continue;
    const auto isLimit = [](const PluginBinding& b) { return kindOf(b) == "rate_limit"; };
    const auto later = std::find_if(plugins.begin() + i + 1, plugins.end(), isLimit);
    if (later != plugins.end() && std::none_of(plugins.begin(), plugins.begin() + i, isLimit)) {
      warnOnce(plugins[i], "plugin " + quote(plugins[i].name) + " (authentication) runs before " +
                               quote(later->name) +
                               ": requests that fail authentication are never limited; put a "
                               "per-client rate_limit first");
    }
  }
}

}  // namespace gw::config
