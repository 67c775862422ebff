#include "plugins/security_headers/security_headers_config.h"

#include <algorithm>

#include "gateway/config/node_reader.h"
#include "gateway/http/headers.h"
#include "plugins/security_headers/security_headers.h"

namespace gw::plugins::security_headers {
namespace {

using config::NodeReader;

// A plain (unquoted) scalar such as `false`; a quoted "false" is the text false.
bool isPlain(const YAML::Node& node, std::string_view text) {
  return node.IsScalar() && node.Tag() != "!" && node.Scalar() == text;
}

const Header* findDefault(std::string_view name) {
  const auto found = std::find_if(kDefaults.begin(), kDefaults.end(),
                                  [&](const Header& h) { return http::iequals(h.name, name); });
  return found == kDefaults.end() ? nullptr : &*found;
}

// Applies the `headers:` overrides to config.headers (which starts as the defaults).
void parseHeaders(const YAML::Node& map, NodeReader& reader, Config& config) {
  std::vector<std::pair<std::string, YAML::Mark>> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const YAML::Node& anchor = value.IsNull() ? key : value;
    if (!key.IsScalar() || !http::isToken(key.Scalar())) {
      reader.error(key, "a header name must be a token such as X-Frame-Options, got " +
                            config::describe(key));
      continue;
    }
    const std::string& name = key.Scalar();
    const auto first = std::find_if(seen.begin(), seen.end(),
                                    [&](const auto& s) { return http::iequals(s.first, name); });
    if (first != seen.end()) {
      reader.error(key, "header " + config::quote(name) + " is given twice (first at " +
                            reader.position(first->second) + ")");
      continue;
    }
    seen.emplace_back(name, key.Mark());
    if (http::isProxyOwned(name)) {
      reader.error(key, "header " + config::quote(name) +
                            " is the gateway's own (it frames the message, routes it or belongs "
                            "to the connection) and cannot be set by security_headers");
      continue;
    }
    const Header* standard = findDefault(name);
    auto current = std::find_if(config.headers.begin(), config.headers.end(),
                                [&](const auto& h) { return http::iequals(h.first, name); });
    if (isPlain(value, "false")) {
      if (standard == nullptr) {
        reader.error(anchor, "header " + config::quote(name) +
                                 ": false turns off one of the default headers, and this is not "
                                 "one of them");
      } else {
        config.headers.erase(current);
      }
      continue;
    }
    if (!value.IsScalar() || isPlain(value, "true")) {
      reader.error(anchor, "header " + config::quote(name) +
                               " must be a value (a string) or false, got " +
                               config::describe(value));
      continue;
    }
    const std::string& text = value.Scalar();
    if (text.empty() || !http::isValidFieldValue(text)) {
      reader.error(anchor, "header " + config::quote(name) +
                               " must have a non-empty value without control characters (CR, "
                               "LF, NUL, ...); use false to turn it off");
      continue;
    }
    if (standard != nullptr) {
      current->second = text;
    } else {
      config.headers.emplace_back(name, text);
    }
  }
}

}  // namespace

std::shared_ptr<const plugin::RouteConfig> Factory::parse(
    const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const {
  const std::size_t errorsBefore = errors.size();
  auto reader = NodeReader::settings(settings, "security_headers", errors);
  reader.allowKeys({"headers", "upstream_values", "hide_powered_by", "hide_server"});
  auto config = std::make_shared<Config>();
  for (const Header& h : kDefaults) config->headers.emplace_back(h.name, h.value);
  if (const auto headers = reader.readMap("headers")) parseHeaders(*headers, reader, *config);
  reader.readEnum("upstream_values", config->keepUpstreamValues,
                  {{"replace", false}, {"keep", true}});
  reader.readBool("hide_powered_by", config->hidePoweredBy);
  reader.readBool("hide_server", config->hideServer);
  if (errors.size() != errorsBefore) return nullptr;
  return config;
}

std::unique_ptr<plugin::Plugin> Factory::create(const plugin::RouteConfig& config,
                                                plugin::WorkerState*) const {
  return std::make_unique<SecurityHeaders>(static_cast<const Config&>(config));
}

}  // namespace gw::plugins::security_headers
