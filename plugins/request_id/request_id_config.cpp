#include "plugins/request_id/request_id_config.h"

#include "gateway/config/node_reader.h"
#include "gateway/http/headers.h"
#include "plugins/request_id/request_id.h"

namespace gw::plugins::request_id {

std::shared_ptr<const plugin::RouteConfig> Factory::parse(
    const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const {
  const std::size_t errorsBefore = errors.size();
  auto reader = config::NodeReader::settings(settings, "request_id", errors);
  reader.allowKeys({"header", "accept_incoming", "response_header"});
  auto config = std::make_shared<Config>();
  if (reader.readString("header", config->header)) {
    if (!http::isToken(config->header)) {
      reader.error(*reader.value("header"),
                   "'header' must be a header name (letters, digits and !#$%&'*+-.^_`|~), got " +
                       config::quote(config->header));
    } else if (http::isProxyOwned(config->header)) {
      reader.error(*reader.value("header"),
                   "'header' must not be " + config::quote(config->header) +
                       ", the gateway's own field (it frames the message, routes it or belongs "
                       "to the connection)");
    }
  }
  reader.readBool("accept_incoming", config->acceptIncoming);
  reader.readBool("response_header", config->responseHeader);
  if (errors.size() != errorsBefore) return nullptr;
  return config;
}

std::unique_ptr<plugin::Plugin> Factory::create(const plugin::RouteConfig& config,
                                                plugin::WorkerState*) const {
  return std::make_unique<RequestId>(static_cast<const Config&>(config));
}

}  // namespace gw::plugins::request_id
