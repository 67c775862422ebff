#include "gateway/config/model.h"

#include <tuple>

namespace gw::config {

std::string Diagnostic::format() const {
  return where.file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": " +
         message;
}

std::string hostPort(std::string_view host, uint16_t port) {
  std::string out;
  const bool ipv6 = host.find(':') != std::string_view::npos;
  if (ipv6) out += '[';
  out += host;
  if (ipv6) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

bool RedisConfig::sameConnection(const RedisConfig& other) const {
  const auto connection = [](const RedisConfig& c) {
    return std::tie(c.host, c.port, c.unix_path, c.username, c.password, c.database,
                    c.connect_timeout, c.command_timeout, c.max_pending, c.reconnect_initial,
                    c.reconnect_max, c.breaker_errors, c.half_open_probes);
  };
  return connection(*this) == connection(other);
}

}  // namespace gw::config
