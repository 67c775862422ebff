#include "plugins/cors/cors_config.h"

#include <algorithm>
#include <string>

#include "gateway/http/headers.h"
#include "gateway/config/node_reader.h"
#include "plugins/cors/cors.h"

namespace gw::plugins::cors {
namespace {

using config::NodeReader;

// An origin as browsers serialise it: scheme "://" host [":" port], nothing after.
bool isOrigin(std::string_view text) {
  const auto scheme = text.find("://");
  if (scheme == std::string_view::npos || scheme == 0) return false;
  const std::string_view rest = text.substr(scheme + 3);
  return !rest.empty() && rest.find_first_of("/?# \t") == std::string_view::npos &&
         http::isValidFieldValue(text);
}

// A list of strings under `key`, each checked by `valid` (reported with `expected`), joined with
// ", " into `out`. Returns the items, or nothing when the key is absent.
std::optional<std::vector<std::string>> readList(NodeReader& reader, std::string_view key,
                                                 bool (*valid)(std::string_view),
                                                 std::string_view expected) {
  const auto node = reader.value(key);
  if (!node) return std::nullopt;
  if (!node->IsSequence()) {
    reader.error(*node, std::string(key) + " must be a list, got " + config::describe(*node));
    return std::nullopt;
  }
  std::vector<std::string> items;
  for (const YAML::Node& item : *node) {
    if (!item.IsScalar() || !valid(item.Scalar())) {
      reader.error(item, std::string(key) + ": each entry must be " + std::string(expected) +
                             ", got " + config::describe(item));
      continue;
    }
    items.push_back(item.Scalar());
  }
  return items;
}

std::string join(const std::vector<std::string>& items) {
  std::string joined;
  for (const std::string& item : items) {
    if (!joined.empty()) joined += ", ";
    joined += item;
  }
  return joined;
}

bool isToken(std::string_view text) { return http::isToken(text); }
bool isOriginOrStar(std::string_view text) { return text == "*" || isOrigin(text); }

}  // namespace

std::shared_ptr<const plugin::RouteConfig> Factory::parse(
    const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const {
  const std::size_t errorsBefore = errors.size();
  auto reader = NodeReader::settings(settings, "cors", errors);
  reader.allowKeys({"allow_origins", "allow_methods", "allow_headers", "expose_headers",
                    "allow_credentials", "max_age"});
  auto config = std::make_shared<Config>();
  config->anyOrigin = true;  // as Kong: no allow_origins means any origin
  const auto originsNode = reader.value("allow_origins");
  const bool star = originsNode && originsNode->IsScalar() && originsNode->Scalar() == "*";
  const auto origins =
      star ? std::nullopt
           : readList(reader, "allow_origins", isOriginOrStar,
                      "an origin such as https://app.example.com, or \"*\"");
  if (origins) {
    config->anyOrigin = std::find(origins->begin(), origins->end(), "*") != origins->end();
    if (config->anyOrigin && origins->size() > 1) {
      reader.error(*originsNode, "allow_origins: \"*\" allows every origin and cannot be listed "
                                 "with others");
    }
    if (origins->empty()) reader.error(*originsNode, "allow_origins must not be empty");
    config->origins = *origins;
  }
  config->allowMethods = "GET, HEAD, PUT, PATCH, POST, DELETE";
  if (const auto methods = readList(reader, "allow_methods", isToken, "a method such as GET")) {
    config->allowMethods = join(*methods);
  }
  if (const auto headers = readList(reader, "allow_headers", isToken, "a header name")) {
    config->allowHeaders = join(*headers);
  }
  if (const auto headers = readList(reader, "expose_headers", isToken, "a header name")) {
    config->exposeHeaders = join(*headers);
  }
  reader.readBool("allow_credentials", config->allowCredentials);
  if (config->allowCredentials && config->anyOrigin) {
    // Browsers refuse a credentialed answer with "*"; echoing any origin would be worse.
    reader.error(*reader.value("allow_credentials"),
                 "allow_credentials: true needs allow_origins to list the origins; \"*\" with "
                 "credentials is refused by browsers");
  }
  config::Duration maxAge(0);
  if (reader.readDuration("max_age", maxAge)) {
    if (maxAge.count() % 1000 != 0) {
      reader.error(*reader.value("max_age"), "max_age must be whole seconds, got " +
                                                 config::describe(*reader.value("max_age")));
    } else if (maxAge.count() > 0) {
      config->maxAge = std::to_string(maxAge.count() / 1000);
    }
  }
  if (errors.size() != errorsBefore) return nullptr;
  return config;
}

std::unique_ptr<plugin::Plugin> Factory::create(const plugin::RouteConfig& config,
                                                plugin::WorkerState*) const {
  return std::make_unique<Cors>(static_cast<const Config&>(config));
}

}  // namespace gw::plugins::cors
