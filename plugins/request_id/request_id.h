#pragma once
// request_id: every exchange gets one id, taken from a well-formed incoming header or generated,
// and carried upstream, back to the client and into the gateway's error bodies and logs.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/plugin/plugin.h"

namespace gw::plugins::request_id {

inline constexpr std::size_t kMaxIdLength = 128;

struct Config final : plugin::RouteConfig {
  std::string header = "X-Request-Id";  // read from the client, sent upstream and back
  bool acceptIncoming = true;           // false: always generate (the client's id is replaced)
  bool responseHeader = true;           // echo the id on the response
};

// 1 to kMaxIdLength characters of [A-Za-z0-9._:+/=-]: UUIDs, hex, base64 and W3C trace ids fit,
// while nothing that could split a log line, break out of a JSON string or inject a header does.
bool isWellFormed(std::string_view id);

// 128 random bits as 32 lower-case hex digits, from a per-thread xoshiro256** seeded once from
// std::random_device: no system call and no lock per request. Unique, not secret.
std::string generateId();

class RequestId final : public plugin::Plugin {
 public:
  explicit RequestId(const Config& config) : config_(config) {}
  plugin::Status onRequestHeaders(plugin::Context& ctx) override;
  plugin::Status onResponseHeaders(plugin::Context& ctx) override;

 private:
  const Config& config_;
};

}  // namespace gw::plugins::request_id
