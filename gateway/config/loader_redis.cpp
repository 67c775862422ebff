// The `redis:` block: where the shared Redis is and how each worker's connection behaves
// (gateway/redis). The host name is resolved here, on the loader's thread, so that no worker ever
// waits on DNS; the secrets are read here too, so that a missing file fails the load, not a
// request.

#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "gateway/config/file_text.h"
#include "gateway/config/loader_sections.h"

namespace gw::config {
namespace {

constexpr std::size_t kMaxSecretBytes = 4096;
constexpr std::size_t kMaxKeyPrefixBytes = 64;
constexpr uint32_t kMaxDatabase = 15;  // Redis's default `databases 16`
constexpr std::size_t kMaxPending = 1'000'000;
constexpr uint32_t kMaxBreakerCount = 10'000;

bool isEnvironmentName(std::string_view name) {
  const auto valid = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  return !name.empty() && !std::isdigit(static_cast<unsigned char>(name.front())) &&
         std::all_of(name.begin(), name.end(), valid);
}

// The first address `host` resolves to, as numeric text; otherwise says why.
std::optional<std::string> resolve(const std::string& host, std::string& ip) {
  if (const auto literal = canonicalIp(host)) {
    ip = *literal;
    return std::nullopt;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
    return std::string(::gai_strerror(rc));
  }
  char text[NI_MAXHOST] = {};
  const int rc = ::getnameinfo(found->ai_addr, found->ai_addrlen, text, sizeof text, nullptr, 0,
                               NI_NUMERICHOST);
  ::freeaddrinfo(found);
  if (rc != 0) return std::string(::gai_strerror(rc));
  ip = text;
  return std::nullopt;
}

}  // namespace

void Loader::parseRedis(NodeReader& root) {
  const auto redis = root.readMap("redis");
  if (!redis) {
    if (const auto field = root.field("redis"); field && field->value.IsNull()) {
      error(field->anchor(), "'redis' must be a mapping ({} for the defaults), got nothing");
    }
    return;
  }
  NodeReader in = reader(*redis, "redis");
  in.allowKeys({"address", "username", "password_file", "password_env", "database",
                "connect_timeout", "command_timeout", "max_pending", "reconnect_initial",
                "reconnect_max", "breaker_errors", "half_open_probes", "key_prefix",
                "key_secret_file", "key_secret_env"});
  RedisConfig& out = config_.redis.emplace();
  out.where = locate(*redis);
  parseRedisAddress(in, out);
  in.readString("username", out.username);
  readSecret(in, "password", out.password);
  if (!out.username.empty() && out.password.empty() && !in.has("password_file") &&
      !in.has("password_env")) {
    error(in.field("username")->anchor(),
          "redis username needs a password (password_file or password_env)");
  }
  in.readInt("database", out.database, 0, kMaxDatabase);
  in.readDuration("connect_timeout", out.connect_timeout, kMinTimeout);
  in.readDuration("command_timeout", out.command_timeout, kMinTimeout);
  in.readInt("max_pending", out.max_pending, 1, kMaxPending);
  in.readDuration("reconnect_initial", out.reconnect_initial, kMinTimeout);
  if (in.readDuration("reconnect_max", out.reconnect_max, kMinTimeout) &&
      out.reconnect_max < out.reconnect_initial) {
    error(in.field("reconnect_max")->anchor(),
          "redis reconnect_max must be at least reconnect_initial");
  }
  in.readInt("breaker_errors", out.breaker_errors, 1, kMaxBreakerCount);
  in.readInt("half_open_probes", out.half_open_probes, 1, kMaxBreakerCount);
  if (in.readString("key_prefix", out.key_prefix)) {
    const YAML::Node anchor = in.field("key_prefix")->anchor();
    if (out.key_prefix.find_first_of("{}") != std::string::npos) {
      // The keys' hash tags are the plugins' own: a brace in the prefix would move them.
      error(anchor, "redis key_prefix must not contain '{' or '}', got " + quote(out.key_prefix));
    } else if (out.key_prefix.size() > kMaxKeyPrefixBytes) {
      error(anchor, "redis key_prefix must be at most " + std::to_string(kMaxKeyPrefixBytes) +
                        " bytes, got " + std::to_string(out.key_prefix.size()));
    }
  }
  readSecret(in, "key_secret", out.key_secret);
}

void Loader::parseRedisAddress(NodeReader& in, RedisConfig& out) {
  if (!in.readString("address", out.address)) return;
  const YAML::Node anchor = in.field("address")->anchor();
  if (out.address.starts_with("unix:")) {
    out.unix_path = out.address.substr(5);
    out.host.clear();
    out.port = 0;
    if (!out.unix_path.starts_with('/') || out.unix_path.size() >= sizeof(sockaddr_un::sun_path)) {
      error(anchor, "redis address unix: needs an absolute socket path shorter than " +
                        std::to_string(sizeof(sockaddr_un::sun_path)) + " bytes, got " +
                        quote(out.address));
    }
    return;
  }
  std::string host;
  if (auto problem = splitHostPort(out.address, "redis", host, out.port)) {
    error(anchor, std::move(*problem) + " (or unix:/path)");
    return;
  }
  if (auto problem = resolve(host, out.host)) {
    error(anchor, "cannot resolve the redis host " + quote(host) + ": " + std::move(*problem));
  }
}

void Loader::readSecret(NodeReader& in, std::string_view key, std::string& out) {
  const std::string fileKey = std::string(key) + "_file";
  const std::string envKey = std::string(key) + "_env";
  if (in.has(fileKey) && in.has(envKey)) {
    error(in.field(envKey)->key,
          "redis " + quote(fileKey) + " and " + quote(envKey) + " are exclusive: give one");
    return;
  }
  // The messages name where the secret is, never what it is.
  std::string text;
  std::string path;
  Location at;
  if (readAbsolutePath(in, fileKey, fileKey, path, at)) {
    if (auto why = readFileBounded(path, kMaxSecretBytes, text)) {
      error(in.field(fileKey)->anchor(), "cannot read redis " + fileKey + " " + path + ": " + *why);
      return;
    }
    // A file written by `echo` ends with a newline that is not part of the secret.
    if (text.ends_with('\n')) text.pop_back();
    if (text.ends_with('\r')) text.pop_back();
    if (text.empty())
      error(in.field(fileKey)->anchor(), "redis " + fileKey + " " + path + " is empty");
  } else if (std::string name; in.readString(envKey, name)) {
    const YAML::Node anchor = in.field(envKey)->anchor();
    if (!isEnvironmentName(name)) {
      error(anchor,
            "redis " + envKey + " must be an environment variable name, got " + quote(name));
      return;
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr || *value == '\0') {
      error(anchor, "redis " + envKey + ": the environment variable " + name + " is " +
                        (value ? "empty" : "not set"));
      return;
    }
    text = value;
  } else {
    return;
  }
  out = std::move(text);
}

}  // namespace gw::config
