#include "plugins/rate_limit/rate_limit_config.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "gateway/config/node_reader.h"
#include "gateway/http/headers.h"
#include "plugins/rate_limit/rate_limit.h"

namespace gw::plugins::rate_limit {
namespace {

using config::NodeReader;

// Bounds that keep the window arithmetic (requests x window in ms) far inside int64.
constexpr int64_t kMaxRequests = 1'000'000'000;
constexpr config::Duration kMaxWindow = std::chrono::hours(24);
constexpr std::size_t kMaxNameLength = 64;
constexpr int64_t kMaxKeysCap = 100'000'000;
constexpr std::size_t kMaxScopeLength = 64;
constexpr int64_t kMinBatch = 2;
constexpr int64_t kMaxBatch = 1000;
constexpr int64_t kMaxMaxBatch = 16 * kMaxBatch;
constexpr int64_t kMaxMemoKeys = 1'000'000;

// Policy names are sent inside a structured-field string, scopes inside Redis key names: keep
// them to plain characters.
bool isPlainName(std::string_view name, std::size_t maxLength) {
  return !name.empty() && name.size() <= maxLength &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
         });
}

void parseLimit(const YAML::Node& node, std::size_t index, std::size_t count,
                std::vector<NamedLimit>& out, std::vector<plugin::ConfigError>& errors) {
  const std::size_t errorsBefore = errors.size();
  auto reader = NodeReader::settings(node, "a rate_limit limit", errors);
  if (!node.IsMap()) {
    if (node.IsNull()) reader.error(node, "a rate_limit limit must be a mapping, got nothing");
    return;
  }
  reader.allowKeys({"requests", "window", "name"});
  NamedLimit limit;
  // One limit is "default" (the draft's example name); several are told apart by position.
  limit.name = count == 1 ? "default" : "limit" + std::to_string(index + 1);
  reader.require("requests");
  reader.require("window");
  reader.readInt("requests", limit.limit.requests, 1, kMaxRequests);
  config::Duration window{0};
  if (reader.readDuration("window", window, config::Duration(1))) {
    if (window > kMaxWindow) {
      reader.error(*reader.value("window"), "'window' must be at most 24h");
    }
    limit.limit.windowMs = window.count();
  }
  if (reader.readString("name", limit.name) && !isPlainName(limit.name, kMaxNameLength)) {
    reader.error(*reader.value("name"),
                 "'name' must be 1 to 64 letters, digits, '_', '.' or '-', got " +
                     config::quote(limit.name));
  }
  if (errors.size() == errorsBefore) out.push_back(std::move(limit));
}

void parseLimits(NodeReader& reader, const YAML::Node& settings, std::vector<NamedLimit>& out,
                 std::vector<plugin::ConfigError>& errors) {
  const auto node = reader.value("limits");
  if (!node) {
    reader.error(settings, "rate_limit is missing required key 'limits'");
    return;
  }
  if (!node->IsSequence() || node->size() == 0) {
    reader.error(*node, "'limits' must be a non-empty list of {requests, window}, got " +
                            config::describe(*node));
    return;
  }
  if (node->size() > WindowTable::kMaxLimits) {
    reader.error(
        *node, "'limits' may have at most " + std::to_string(WindowTable::kMaxLimits) + " entries");
    return;
  }
  for (std::size_t i = 0; i < node->size(); ++i) {
    parseLimit((*node)[i], i, node->size(), out, errors);
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (out[i].name == out[j].name) {
        reader.error((*node)[i], "duplicate limit name " + config::quote(out[i].name));
      }
    }
  }
}

void parseKey(NodeReader& reader, std::vector<KeySpec>& out) {
  const auto node = reader.value("key");
  if (!node) {
    out.push_back({KeyKind::ClientIp, {}});
    return;
  }
  if (!node->IsSequence() || node->size() == 0) {
    reader.error(*node,
                 "'key' must be a non-empty list of client_ip, route and {header: NAME}, "
                 "got " +
                     config::describe(*node));
    return;
  }
  if (node->size() > Config::kMaxKeyParts) {
    reader.error(*node,
                 "'key' may have at most " + std::to_string(Config::kMaxKeyParts) + " parts");
    return;
  }
  for (const YAML::Node& entry : *node) {
    KeySpec spec;
    if (entry.IsScalar() && entry.Scalar() == "client_ip") {
      spec.kind = KeyKind::ClientIp;
    } else if (entry.IsScalar() && entry.Scalar() == "route") {
      spec.kind = KeyKind::Route;
    } else if (entry.IsMap() && entry.size() == 1 && entry.begin()->first.IsScalar() &&
               entry.begin()->first.Scalar() == "header") {
      const YAML::Node name = entry.begin()->second;
      if (!name.IsScalar() || !http::isToken(name.Scalar())) {
        reader.error(name.IsNull() ? entry : name,
                     "'header' must be a header name (letters, digits and !#$%&'*+-.^_`|~), "
                     "got " +
                         config::describe(name));
        continue;
      }
      spec.kind = KeyKind::Header;
      spec.header = name.Scalar();
    } else {
      reader.error(entry, "a key part must be client_ip, route or {header: NAME}, got " +
                              config::describe(entry));
      continue;
    }
    const bool repeated = std::any_of(out.begin(), out.end(), [&](const KeySpec& other) {
      return other.kind == spec.kind && http::iequals(other.header, spec.header);
    });
    if (repeated) {
      reader.error(entry, "key part " + config::describe(entry) + " is listed twice");
      continue;
    }
    out.push_back(std::move(spec));
  }
}

// The settings of store: redis|hybrid; each is an error with store: local, where it would do
// nothing.
void parseRedisSettings(NodeReader& reader, const YAML::Node& settings,
                        const std::vector<NamedLimit>& limits, RedisSettings& out) {
  reader.readEnum("store", out.store,
                  {{"local", Store::Local}, {"redis", Store::Redis}, {"hybrid", Store::Hybrid}});
  reader.readEnum("on_redis_error", out.onError,
                  {{"allow", OnRedisError::Allow}, {"deny", OnRedisError::Deny}});
  if (reader.readString("scope", out.scope) && !isPlainName(out.scope, kMaxScopeLength)) {
    reader.error(*reader.value("scope"),
                 "'scope' must be 1 to 64 letters, digits, '_', '.' or '-', got " +
                     config::quote(out.scope));
  }
  reader.readInt("batch", out.batch, kMinBatch, kMaxBatch);
  out.maxBatch = RedisSettings::kMaxBatchFactor * out.batch;
  if (reader.readInt("max_batch", out.maxBatch, kMinBatch, kMaxMaxBatch) &&
      out.store == Store::Hybrid && out.maxBatch < out.batch) {
    reader.error(*reader.value("max_batch"), "'max_batch' (" + std::to_string(out.maxBatch) +
                                                 ") must be at least 'batch' (" +
                                                 std::to_string(out.batch) + ")");
  }
  reader.readInt("memo_keys", out.memoKeys, 0, kMaxMemoKeys);
  for (std::string_view key : {"on_redis_error", "scope", "memo_keys"}) {
    if (out.store == Store::Local && reader.has(key)) {
      reader.error(*reader.value(key), "'" + std::string(key) +
                                           "' applies to store: redis or hybrid only, and store "
                                           "is local");
    }
  }
  for (std::string_view key : {"batch", "max_batch"}) {
    if (out.store != Store::Hybrid && reader.has(key)) {
      reader.error(*reader.value(key), "'" + std::string(key) + "' applies to store: hybrid only");
    }
  }
  if (out.store == Store::Hybrid && out.memoKeys == 0) {
    reader.error(*reader.value("memo_keys"),
                 "'memo_keys' must be at least 1 with store: hybrid (it also bounds the keys "
                 "holding leases)");
  }
  if (out.store == Store::Local) return;
  // The script computes in Lua's doubles, exact up to 2^53.
  const auto node = reader.value("limits");
  for (std::size_t i = 0; i < limits.size(); ++i) {
    const Limit& l = limits[i].limit;
    if (l.requests > kMaxExactProduct / l.windowMs) {
      reader.error(node ? (*node)[i] : settings,
                   "with store: redis or hybrid, a limit's requests x window in ms must be at "
                   "most 2^53 (9007199254740992), got " +
                       std::to_string(l.requests) + " x " + std::to_string(l.windowMs));
    }
  }
}

}  // namespace

std::shared_ptr<const plugin::RouteConfig> Factory::parse(
    const YAML::Node& settings, std::vector<plugin::ConfigError>& errors) const {
  const std::size_t errorsBefore = errors.size();
  auto reader = NodeReader::settings(settings, "rate_limit", errors);
  reader.allowKeys({"limits", "key", "missing_key", "headers", "mode", "max_keys", "max_key_bytes",
                    "store", "on_redis_error", "scope", "batch", "max_batch", "memo_keys"});
  std::vector<NamedLimit> limits;
  parseLimits(reader, settings, limits, errors);
  std::vector<KeySpec> key;
  parseKey(reader, key);
  MissingKey missingKey = MissingKey::ClientIp;
  reader.readEnum("missing_key", missingKey,
                  {{"client_ip", MissingKey::ClientIp}, {"reject", MissingKey::Reject}});
  HeaderStyle headers = HeaderStyle::Draft;
  reader.readEnum("headers", headers,
                  {{"draft", HeaderStyle::Draft},
                   {"legacy", HeaderStyle::Legacy},
                   {"x", HeaderStyle::X},
                   {"off", HeaderStyle::Off}});
  Mode mode = Mode::Enforce;
  reader.readEnum("mode", mode, {{"enforce", Mode::Enforce}, {"shadow", Mode::Shadow}});
  std::size_t maxKeys = Config::kDefaultMaxKeys;
  reader.readInt("max_keys", maxKeys, 1, kMaxKeysCap);
  std::size_t maxKeyBytes = Config::kDefaultMaxKeyBytes;
  reader.readSize("max_key_bytes", maxKeyBytes, 1);
  RedisSettings redis;
  parseRedisSettings(reader, settings, limits, redis);
  if (errors.size() != errorsBefore) return nullptr;
  return std::make_shared<Config>(std::move(limits), std::move(key), missingKey, headers, mode,
                                  maxKeys, maxKeyBytes, std::move(redis));
}

std::unique_ptr<plugin::WorkerState> Factory::makeWorkerState(
    const plugin::RouteConfig& config, plugin::Dispatcher& dispatcher) const {
  const auto& settings = static_cast<const Config&>(config);
  if (settings.redis().store == Store::Local) return nullptr;
  return std::make_unique<RedisWorkerState>(settings, dispatcher);
}

std::unique_ptr<plugin::Plugin> Factory::create(const plugin::RouteConfig& config,
                                                plugin::WorkerState* state) const {
  return std::make_unique<RateLimit>(static_cast<const Config&>(config), slots(),
                                     static_cast<RedisWorkerState*>(state));
}

}  // namespace gw::plugins::rate_limit
