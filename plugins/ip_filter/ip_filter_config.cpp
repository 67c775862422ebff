#include "plugins/ip_filter/ip_filter_config.h"

#include <string>

#include "gateway/config/node_reader.h"
#include "plugins/ip_filter/ip_filter.h"

namespace gw::plugins::ip_filter {
namespace {

using config::NodeReader;

// Reads the list under `key` into `out`, each bad entry reported at its own position.
void parseList(NodeReader& reader, std::string_view key, std::vector<net::IpNetwork>& out) {
  const std::optional<YAML::Node> list = reader.value(key);
  if (!list) return;
  const std::string what = "ip_filter " + std::string(key);
  if (!list->IsSequence() || list->size() == 0) {
    reader.error(*list, what + " must be a non-empty list of addresses or CIDR blocks such as "
                               "10.0.0.0/8 or 2001:db8::/32, got " +
                            config::describe(*list));
    return;
  }
  for (const YAML::Node& item : *list) {
    if (!item.IsScalar()) {
      reader.error(item, what + ": each entry must be an address or CIDR block, got " +
                             config::describe(item));
      continue;
    }
    std::string why;
    if (const auto network = net::parseIpNetwork(item.Scalar(), why)) {
      out.push_back(*network);
    } else {
      reader.error(item, what + ": " + config::quote(item.Scalar()) + ": " + why);
    }
  }
}

}  // namespace

std::shared_ptr<const plugin::RouteConfig> Factory::parse(
    const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const {
  const std::size_t errorsBefore = errors.size();
  auto reader = NodeReader::settings(settings, "ip_filter", errors);
  reader.allowKeys({"allow", "deny"});
  auto config = std::make_shared<Config>();
  parseList(reader, "allow", config->allow);
  parseList(reader, "deny", config->deny);
  if (errors.size() != errorsBefore) return nullptr;
  if (config->allow.empty() && config->deny.empty()) {
    // Without either list the plugin would do nothing, which is surely not what was meant.
    reader.error(settings, "ip_filter needs an allow list, a deny list, or both");
    return nullptr;
  }
  return config;
}

std::unique_ptr<plugin::Plugin> Factory::create(const plugin::RouteConfig& config,
                                                plugin::WorkerState*) const {
  return std::make_unique<IpFilter>(static_cast<const Config&>(config));
}

}  // namespace gw::plugins::ip_filter
