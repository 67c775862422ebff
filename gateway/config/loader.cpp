#include "gateway/config/loader.h"

#include <arpa/inet.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <initializer_list>
#include <map>
#include <set>
#include <thread>
#include <type_traits>
#include <utility>

#include "gateway/config/file_text.h"
#include "gateway/config/route_overlaps.h"
#include "gateway/config/units.h"
#include "gateway/config/yaml_documents.h"
#include "gateway/config/yaml_expansion.h"
#include "gateway/config/yaml_words.h"
#include "gateway/http/headers.h"
#include "gateway/http/path.h"
#include "gateway/observability/access_log.h"
#include "gateway/observability/otlp_exporter.h"

namespace gw::config {
namespace {

using Keys = std::initializer_list<std::string_view>;

constexpr std::string_view kHttpMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                             "CONNECT", "OPTIONS", "TRACE", "PATCH"};
constexpr unsigned kMaxWorkers = 1024;
constexpr uint32_t kMaxWeight = 1000;
constexpr uint32_t kMaxPoolIdle = 100'000;
constexpr std::size_t kMaxHeaderCount = 65'535;
constexpr std::size_t kMaxConnectionsPerWorker = 1'000'000;
constexpr uint32_t kMaxThreshold = 1000;
constexpr Duration kMinTimeout{1};

std::string toString(const Location& where) {
  return where.file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
}

unsigned autoWorkers() { return std::max(1u, std::thread::hardware_concurrency()); }

bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

bool isValidName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), isNameChar);
}

// A DNS-style name: dot-separated non-empty labels of letters, digits, '-' and '_'.
bool isValidHostName(std::string_view host) {
  if (host.empty() || host.front() == '.' || host.back() == '.') return false;
  if (host.find("..") != std::string_view::npos) return false;
  return std::all_of(host.begin(), host.end(), isNameChar);
}

// The IP literal in canonical text form ("::0:1" -> "::1"), so equal addresses compare equal.
std::optional<std::string> canonicalIp(const std::string& text) {
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN];
  for (int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, text.c_str(), bytes) == 1 &&
        inet_ntop(family, bytes, out, sizeof(out)) != nullptr) {
      return std::string(out);
    }
  }
  return std::nullopt;
}

bool isWildcardIp(std::string_view canonical) {
  return canonical == "0.0.0.0" || canonical == "::";
}
bool isIpv6(std::string_view canonical) { return canonical.find(':') != std::string_view::npos; }

template <typename Int>
std::optional<Int> parseInt(std::string_view text, Int min, Int max) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  if (value < static_cast<uint64_t>(min) || value > static_cast<uint64_t>(max)) return std::nullopt;
  return static_cast<Int>(value);
}

// "host:port", "[v6]:port"; the host is kept without brackets so it can be resolved directly.
std::optional<std::string> splitHostPort(std::string_view text, BackendConfig& out) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") {
      return "backend address must look like [::1]:9000";
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!canonicalIp(std::string(host))) return "invalid IPv6 address " + quote(host);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return "backend address must be host:port";
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return "IPv6 backend addresses must be bracketed, e.g. \"[::1]:9000\"";
    }
    if (!isValidHostName(host)) return "invalid backend host " + quote(host);
  }
  const auto portNumber = parseInt<uint16_t>(port, 1, 65535);
  if (!portNumber) return "backend port must be an integer from 1 to 65535, got " + quote(port);
  out.host = std::string(host);
  out.port = *portNumber;
  return std::nullopt;
}

// Requests are routed by their normalised path (http::normalisePath), so a match path that is not
// in normal form would never match, or would match something other than it reads.
std::optional<std::string> checkMatchPath(std::string_view path, http::PathRules rules) {
  if (!path.starts_with('/')) return "must start with '/'";
  std::string normal;
  switch (http::normalisePath(path, normal, rules)) {
    case http::PathError::None:
      break;
    case http::PathError::EscapesRoot:
      return "must not climb above '/' with '..'";
    case http::PathError::Invalid:
      return "is not a valid path (spaces, control characters, '?', '#', '\\', non-ASCII bytes "
             "and malformed %-escapes are refused)";
    case http::PathError::EscapedSlash:
      return "must not contain %2F or %5C: requests holding them are refused "
             "(http.escaped_slashes: reject)";
    case http::PathError::PathParameter:
      return "must not contain ';' or %3B: requests holding them are refused or stripped "
             "(http.path_parameters)";
  }
  if (normal != path) {
    return "must be written in normal form, " + quote(normal) +
           " (request paths are normalised before matching)";
  }
  return std::nullopt;
}

// A key/value pair found in a mapping. Values that are empty (`key:`) have no useful position of
// their own, so they are reported at the key.
struct Field {
  YAML::Node key;
  YAML::Node value;
  const YAML::Node& anchor() const { return value.IsNull() ? key : value; }
};

std::optional<Field> findField(const YAML::Node& map, std::string_view key) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return Field{it->first, it->second};
  }
  return std::nullopt;
}

// What a plugin does, for the order checks; a factory without a kind is its own kind.
std::string_view kindOf(const PluginBinding& binding) {
  const std::string_view kind = binding.factory->kind();
  return kind.empty() ? binding.factory->name() : kind;
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

class Loader {
 public:
  Loader(const std::string& source, const plugin::Registry& registry) : registry_(registry) {
    config_.source = source;
    config_.registry = &registry;
  }

  LoadResult load(std::string_view yaml) {
    try {
      const std::string text(yaml);
      const FirstDocument document = readFirstDocument(text);
      if (document.stuck) {
        const bool comma = text[document.stuck->pos] == ',';
        errors_.push_back({locate(*document.stuck),
                           comma ? "invalid YAML: ',' outside a flow collection ([...] or {...})"
                                 : "invalid YAML: a token no document can hold"});
      } else if (document.root.IsNull()) {
        errors_.push_back({locate(YAML::Mark()), "the configuration is empty"});
      } else if (document.next) {
        errors_.push_back({locate(*document.next), "only one YAML document is allowed"});
      } else if (auto problem = checkExpandedSize(document.root, kMaxYamlNodes)) {
        error(problem->at, std::move(problem->message));
      } else {
        parseRoot(document.root);
      }
    } catch (const YAML::DeepRecursion& e) {
      // yaml-cpp's own text for this is "bad file".
      errors_.push_back({locate(e.mark),
                         "invalid YAML: nested more deeply than yaml-cpp allows "
                         "(about 500 levels)"});
    } catch (const YAML::ParserException& e) {
      errors_.push_back({locate(e.mark), "invalid YAML: " + e.msg});
    } catch (const YAML::Exception& e) {
      errors_.push_back({locate(e.mark), "cannot read the configuration: " + e.msg});
    }
    const auto byPosition = [](const Diagnostic& a, const Diagnostic& b) {
      return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
    };
    std::stable_sort(errors_.begin(), errors_.end(), byPosition);
    std::stable_sort(warnings_.begin(), warnings_.end(), byPosition);
    LoadResult result{std::nullopt, std::move(errors_), std::move(warnings_)};
    if (result.errors.empty()) result.config = std::move(config_);
    return result;
  }

 private:
  // ---- diagnostics ----

  Location locate(const YAML::Mark& mark) const {
    return {config_.source, mark.line + 1, mark.column + 1};
  }
  Location locate(const YAML::Node& node) const { return locate(node.Mark()); }
  void error(const YAML::Node& at, std::string message) {
    errors_.push_back({locate(at), std::move(message)});
  }
  void warn(const YAML::Node& at, std::string message) {
    warnings_.push_back({locate(at), std::move(message)});
  }

  // ---- shape checks: each reports a mismatch and returns false ----

  bool expectMap(const YAML::Node& node, std::string_view what) {
    if (node.IsMap()) return true;
    error(node, std::string(what) + " must be a mapping, got " + describe(node));
    return false;
  }

  // Reports keys of `map` not in `allowed`, non-string keys and keys given twice.
  void checkKeys(const YAML::Node& map, std::string_view what, Keys allowed) {
    checkMapKeys(
        map, what, allowed, [&](const YAML::Node& key, std::string message) { error(key, message); },
        [&](const YAML::Mark& mark) { return toString(locate(mark)); });
  }

  bool require(const YAML::Node& map, std::string_view what, std::string_view key) {
    if (findField(map, key)) return true;
    error(map, std::string(what) + " is missing required key " + quote(key));
    return false;
  }

  // The entries of the required, non-empty list `map[key]`, or nothing (reported) if it is not.
  std::optional<YAML::Node> requireList(const YAML::Node& map, std::string_view what,
                                        std::string_view key) {
    if (!require(map, what, key)) return std::nullopt;
    const Field field = *findField(map, key);
    if (!field.value.IsSequence()) {
      error(field.anchor(), quote(key) + " must be a list, got " + describe(field.value));
    } else if (field.value.size() == 0) {
      error(field.anchor(), quote(key) + " must have at least one entry");
    } else {
      return field.value;
    }
    return std::nullopt;
  }

  // The optional mapping `map[key]`; absent or empty (`key:`) means "all defaults".
  std::optional<YAML::Node> optionalMap(const YAML::Node& map, std::string_view key) {
    const auto field = findField(map, key);
    if (!field || field->value.IsNull()) return std::nullopt;
    if (!expectMap(field->value, quote(key))) return std::nullopt;
    return field->value;
  }

  // ---- typed readers for map[key] ----
  // An absent key leaves `out` untouched, so it keeps its default; so does a bad value, which is
  // reported. Each returns true when it set `out`.

  // The text of a scalar value, or nothing (reported) when the value is not a scalar.
  std::optional<std::string> scalar(const Field& field, std::string_view expected) {
    if (field.value.IsScalar()) return field.value.Scalar();
    error(field.anchor(), quote(field.key.Scalar()) + " must be " + std::string(expected) +
                              ", got " + describe(field.value));
    return std::nullopt;
  }

  // Reads through `convert(text, why)`, which returns the value or leaves `why` set.
  template <typename T, typename Convert>
  bool read(const YAML::Node& map, std::string_view key, std::string_view expected, T& out,
            Convert convert) {
    const auto field = findField(map, key);
    if (!field) return false;
    const auto text = scalar(*field, expected);
    if (!text) return false;
    std::string why;
    std::optional<T> value = convert(*text, why);
    if (!value) {
      error(field->anchor(), quote(key) + ": " + why);
      return false;
    }
    out = std::move(*value);
    return true;
  }

  bool readString(const YAML::Node& map, std::string_view key, std::string& out) {
    return read(map, key, "a string", out,
                [](const std::string& text, std::string&) { return std::optional(text); });
  }

  bool readName(const YAML::Node& map, std::string_view key, std::string& out) {
    return read(map, key, "a name", out, [](const std::string& text, std::string& why) {
      if (isValidName(text)) return std::optional(text);
      why = "expected only letters, digits, '_', '.' and '-', got " + quote(text);
      return std::optional<std::string>();
    });
  }

  template <typename Int>
  bool readInt(const YAML::Node& map, std::string_view key, Int& out, std::type_identity_t<Int> min,
               std::type_identity_t<Int> max) {
    const std::string expected =
        "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    return read(map, key, expected, out, [&](const std::string& text, std::string& why) {
      const auto value = parseInt<Int>(text, min, max);
      if (!value) why = "expected " + expected + ", got " + quote(text);
      return value;
    });
  }

  bool readBool(const YAML::Node& map, std::string_view key, bool& out) {
    return read(map, key, "true or false", out, [](const std::string& text, std::string& why) {
      if (text == "true" || text == "false") return std::optional(text == "true");
      why = "expected true or false, got " + quote(text);
      return std::optional<bool>();
    });
  }

  // One of the named `choices`, mapped to its value.
  template <typename E>
  bool readChoice(const YAML::Node& map, std::string_view key, E& out,
                  std::initializer_list<std::pair<std::string_view, E>> choices) {
    std::vector<std::string_view> names;
    for (const auto& choice : choices) names.push_back(choice.first);
    const std::string expected = alternatives(names);
    return read(map, key, expected, out, [&](const std::string& text, std::string& why) {
      for (const auto& [name, value] : choices) {
        if (text == name) return std::optional(value);
      }
      why = "expected " + expected + ", got " + quote(text);
      return std::optional<E>();
    });
  }

  // A duration or size through `parse` (parseDuration, parseSize), refusing values below `min`.
  template <typename T>
  bool readMeasure(const YAML::Node& map, std::string_view key, std::string_view expected, T& out,
                   std::type_identity_t<T> min, const std::string& minText,
                   std::optional<T> (*parse)(std::string_view, std::string&)) {
    return read(map, key, expected, out, [&](const std::string& text, std::string& why) {
      auto value = parse(text, why);
      if (value && *value < min) {
        why = "expected at least " + minText + ", got " + quote(text);
        value.reset();
      }
      return value;
    });
  }

  bool readDuration(const YAML::Node& map, std::string_view key, Duration& out, Duration min) {
    return readMeasure(map, key, "a duration such as 5s", out, min,
                       std::to_string(min.count()) + "ms", parseDuration);
  }

  bool readSize(const YAML::Node& map, std::string_view key, std::size_t& out, std::size_t min) {
    return readMeasure(map, key, "a size such as 64KiB", out, min, std::to_string(min) + "B",
                       parseSize);
  }

  // ---- sections ----

  void parseRoot(const YAML::Node& root) {
    if (!expectMap(root, "the configuration")) return;
    checkKeys(root, "the configuration",
              {"workers", "listeners", "admin", "access_log", "tracing", "limits", "http",
               "shutdown", "upstreams", "plugins", "routes"});
    parseWorkers(root);
    parseListeners(root);
    parseAdmin(root);
    parseAccessLog(root);
    parseTracing(root);
    parseLimits(root);
    parseHttp(root);  // before routes: their match paths are checked under these rules
    if (const auto shutdown = optionalMap(root, "shutdown")) {
      checkKeys(*shutdown, "shutdown", {"drain_timeout"});
      readDuration(*shutdown, "drain_timeout", config_.drain_timeout, Duration(0));
    }
    parseUpstreams(root);
    if (const auto plugins = findField(root, "plugins")) parsePlugins(*plugins, config_.plugins);
    parseRoutes(root);  // after upstreams and limits: routes inherit from both
    warnUnusedUpstreams();
  }

  void parseWorkers(const YAML::Node& root) {
    const std::string expected = "'auto' or an integer from 1 to " + std::to_string(kMaxWorkers);
    config_.workers = autoWorkers();
    read(root, "workers", expected, config_.workers,
         [&](const std::string& text, std::string& why) {
           auto value = text == "auto" ? autoWorkers() : parseInt<unsigned>(text, 1, kMaxWorkers);
           if (!value) why = "expected " + expected + ", got " + quote(text);
           return value;
         });
  }

  void parseListeners(const YAML::Node& root) {
    const auto list = requireList(root, "the configuration", "listeners");
    if (!list) return;
    std::map<std::string, Location> seen;  // canonical address:port -> first listener
    // (IPv6, port) -> the first listener on a wildcard address / on a specific one there.
    std::map<std::pair<bool, uint16_t>, Location> wildcards, specifics;
    for (const YAML::Node& node : *list) {
      if (!expectMap(node, "a listener")) continue;
      checkKeys(node, "listener", {"address", "port"});
      ListenerConfig listener;
      listener.where = locate(node);
      std::optional<std::string> ip = canonicalIp(listener.address);
      if (readString(node, "address", listener.address)) {
        ip = canonicalIp(listener.address);
        if (!ip) {
          error(findField(node, "address")->anchor(),
                "listener address must be an IPv4 or IPv6 address, got " + quote(listener.address));
        }
      }
      const bool hasPort =
          require(node, "listener", "port") && readInt(node, "port", listener.port, 1, 65535);
      if (ip && hasPort) {
        const auto [first, inserted] = seen.emplace(hostPort(*ip, listener.port), listener.where);
        const std::pair familyPort{isIpv6(*ip), listener.port};
        // The wildcard would take the other's connections, and gatewayd refuses to listen where
        // a socket of its own (or of another process) is listening already.
        const auto& across = isWildcardIp(*ip) ? specifics : wildcards;
        if (!inserted) {
          error(node, "duplicate listener " + hostPort(*ip, listener.port) + " (first at " +
                          toString(first->second) + ")");
        } else if (const auto other = across.find(familyPort); other != across.end()) {
          error(node, "listener " + hostPort(*ip, listener.port) + " overlaps the listener at " +
                          toString(other->second) +
                          ": a wildcard address (0.0.0.0, ::) takes every connection to its "
                          "port; keep one of the two");
        }
        (isWildcardIp(*ip) ? wildcards : specifics).emplace(familyPort, listener.where);
      }
      config_.listeners.push_back(std::move(listener));
    }
  }

  void parseAdmin(const YAML::Node& root) {
    // Each admin connection holds a descriptor; more than this is a typo, not a need.
    constexpr std::size_t kMaxAdminConnections = 10'000;
    const auto admin = optionalMap(root, "admin");
    if (!admin) return;
    checkKeys(*admin, "admin", {"enabled", "address", "port", "max_connections", "header_timeout"});
    AdminConfig& out = config_.admin;
    out.where = locate(*admin);
    readBool(*admin, "enabled", out.enabled);
    if (readString(*admin, "address", out.address) && !canonicalIp(out.address)) {
      error(findField(*admin, "address")->anchor(),
            "admin address must be an IPv4 or IPv6 address, got " + quote(out.address));
    }
    readInt(*admin, "port", out.port, 1, 65535);
    readInt(*admin, "max_connections", out.max_connections, 1, kMaxAdminConnections);
    readDuration(*admin, "header_timeout", out.header_timeout, kMinTimeout);
    if (!out.enabled) return;
    const auto adminIp = canonicalIp(out.address);
    for (const ListenerConfig& listener : config_.listeners) {
      const auto ip = canonicalIp(listener.address);
      // A wildcard address of the same family on either side takes the other's connections (the
      // second socket then fails to listen); wildcards of both families on one port would send
      // a client to the admin or to the proxy depending on how it reached the host.
      if (!ip || !adminIp || listener.port != out.port) continue;
      const bool anyWildcard = isWildcardIp(*ip) || isWildcardIp(*adminIp);
      const bool overlaps = *ip == *adminIp || (anyWildcard && isIpv6(*ip) == isIpv6(*adminIp)) ||
                            (isWildcardIp(*ip) && isWildcardIp(*adminIp));
      if (overlaps) {
        error(*admin, "the admin listener " + hostPort(*adminIp, out.port) +
                          " would share a port with the listener at " + toString(listener.where) +
                          "; admin traffic needs its own port");
      }
    }
  }

  void parseAccessLog(const YAML::Node& root) {
    const auto log = optionalMap(root, "access_log");
    if (!log) return;
    checkKeys(*log, "access_log",
              {"enabled", "path", "fields", "log_headers", "mask_headers", "mask_query_params",
               "max_queued_bytes"});
    AccessLogConfig& out = config_.access_log;
    out.where = locate(*log);
    readBool(*log, "enabled", out.enabled);
    if (readString(*log, "path", out.path) && out.path != "stdout" && !out.path.starts_with('/')) {
      error(findField(*log, "path")->anchor(),
            "access_log path must be 'stdout' or an absolute file path, got " + quote(out.path));
    }
    readSize(*log, "max_queued_bytes", out.max_queued_bytes, 64 * 1024);
    auto isField = [&](const std::string& name) {
      const auto plugins = registry_.logFields();
      return observability::AccessLogFormat::fieldByName(name).has_value() ||
             std::find(plugins.begin(), plugins.end(), name) != plugins.end();
    };
    auto isHeaderName = [](const std::string& name) { return http::isToken(name); };
    auto isParamName = [](const std::string& name) {
      return !name.empty() && name.find_first_of("&=;# ") == std::string::npos;
    };
    readNameList(*log, "fields", "a field name such as status or request_id", isField, out.fields);
    readNameList(*log, "log_headers", "a header name", isHeaderName, out.log_headers);
    readNameList(*log, "mask_headers", "a header name", isHeaderName, out.mask_headers);
    if (findField(*log, "mask_query_params")) {
      readNameList(*log, "mask_query_params", "a query parameter name", isParamName,
                   out.mask_query_params.emplace());
    }
  }

  void parseTracing(const YAML::Node& root) {
    const auto tracing = optionalMap(root, "tracing");
    if (!tracing) return;
    checkKeys(*tracing, "tracing", {"enabled", "otlp"});
    readBool(*tracing, "enabled", config_.tracing.enabled);
    const auto otlp = optionalMap(*tracing, "otlp");
    if (!otlp) return;
    checkKeys(*otlp, "tracing.otlp",
              {"endpoint", "service_name", "batch_size", "flush_interval", "max_queued_spans"});
    OtlpConfig& out = config_.tracing.otlp.emplace();
    out.where = locate(*otlp);
    if (require(*otlp, "tracing.otlp", "endpoint") && readString(*otlp, "endpoint", out.endpoint)) {
      const auto endpoint = observability::parseOtlpEndpoint(out.endpoint);
      if (!endpoint.ok()) {
        error(findField(*otlp, "endpoint")->anchor(),
              "tracing.otlp endpoint: " + endpoint.error().message);
      }
    }
    readString(*otlp, "service_name", out.service_name);
    readInt(*otlp, "batch_size", out.batch_size, 1, 100'000);
    readDuration(*otlp, "flush_interval", out.flush_interval, kMinTimeout);
    readInt(*otlp, "max_queued_spans", out.max_queued_spans, 1, 10'000'000);
    if (!config_.tracing.enabled) {
      error(*otlp, "tracing.otlp needs tracing enabled (spans come from the trace context)");
    }
  }

  // Calls each(item) for every entry of the optional list `key`.
  template <typename Each>
  void forEachListItem(const YAML::Node& map, std::string_view key, Each each) {
    const auto field = findField(map, key);
    if (!field) return;
    if (!field->value.IsSequence()) {
      error(field->anchor(), std::string(key) + " must be a list, got " + describe(field->value));
      return;
    }
    for (const YAML::Node& item : field->value) each(item);
  }

  // A list of names under `key`, each checked by `valid` (errors name `expected`).
  template <typename Valid>
  void readNameList(const YAML::Node& map, std::string_view key, std::string_view expected,
                    Valid valid, std::vector<std::string>& out) {
    forEachListItem(map, key, [&](const YAML::Node& item) {
      if (!item.IsScalar() || !valid(item.Scalar())) {
        error(item, std::string(key) + ": each entry must be " + std::string(expected) +
                        ", got " + describe(item));
        return;
      }
      out.push_back(item.Scalar());
    });
  }

  void parseLimits(const YAML::Node& root) {
    const auto limits = optionalMap(root, "limits");
    if (!limits) return;
    checkKeys(*limits, "limits",
              {"request_line_bytes", "header_bytes", "header_count", "body_bytes",
               "max_connections_per_worker", "upstream_header_bytes", "upstream_header_count",
               "client_header_timeout", "client_body_timeout", "idle_timeout"});
    Limits& out = config_.limits;
    readSize(*limits, "request_line_bytes", out.request_line_bytes, 1);
    readSize(*limits, "header_bytes", out.header_bytes, 1);
    readInt(*limits, "header_count", out.header_count, 1, kMaxHeaderCount);
    readSize(*limits, "body_bytes", out.body_bytes, 0);
    readInt(*limits, "max_connections_per_worker", out.max_connections_per_worker, 1,
            kMaxConnectionsPerWorker);
    readSize(*limits, "upstream_header_bytes", out.upstream_header_bytes, 1);
    readInt(*limits, "upstream_header_count", out.upstream_header_count, 1, kMaxHeaderCount);
    readDuration(*limits, "client_header_timeout", out.client_header_timeout, kMinTimeout);
    readDuration(*limits, "client_body_timeout", out.client_body_timeout, kMinTimeout);
    readDuration(*limits, "idle_timeout", out.idle_timeout, kMinTimeout);
  }

  void parseHttp(const YAML::Node& root) {
    const auto section = optionalMap(root, "http");
    if (!section) return;
    checkKeys(*section, "http",
              {"escaped_slashes", "path_parameters", "underscores_in_headers", "trusted_proxies"});
    http::PathRules& out = config_.path_rules;
    readChoice(*section, "escaped_slashes", out.escaped_slashes,
               {{"reject", http::EscapedSlashes::Reject}, {"keep", http::EscapedSlashes::Keep}});
    readChoice(*section, "path_parameters", out.path_parameters,
               {{"reject", http::PathParameters::Reject},
                {"strip", http::PathParameters::Strip},
                {"keep", http::PathParameters::Keep}});
    readChoice(*section, "underscores_in_headers", config_.underscores_in_headers,
               {{"drop", UnderscoreHeaders::Drop},
                {"reject", UnderscoreHeaders::Reject},
                {"allow", UnderscoreHeaders::Allow}});
    readNetworks(*section, "trusted_proxies", config_.trusted_proxies);
  }

  void readNetworks(const YAML::Node& map, std::string_view key, std::vector<net::IpNetwork>& out) {
    forEachListItem(map, key, [&](const YAML::Node& item) {
      std::string why = "expected an address or CIDR block, got " + describe(item);
      const auto network = item.IsScalar() ? net::parseIpNetwork(item.Scalar(), why) : std::nullopt;
      if (network) {
        out.push_back(*network);
      } else {
        error(item, std::string(key) + ": " + why);
      }
    });
  }

  // Shared by upstreams and routes: a route's timeouts start as its upstream's and override them.
  void parseTimeouts(const YAML::Node& owner, UpstreamTimeouts& out) {
    const auto timeouts = optionalMap(owner, "timeouts");
    if (!timeouts) return;
    checkKeys(*timeouts, "timeouts", {"connect", "read", "send"});
    readDuration(*timeouts, "connect", out.connect, kMinTimeout);
    readDuration(*timeouts, "read", out.read, kMinTimeout);
    readDuration(*timeouts, "send", out.send, kMinTimeout);
  }

  void parseUpstreams(const YAML::Node& root) {
    const auto list = requireList(root, "the configuration", "upstreams");
    if (!list) return;
    for (const YAML::Node& node : *list) {
      if (!expectMap(node, "an upstream")) continue;
      checkKeys(node, "upstream", {"name", "backends", "pool", "timeouts", "health_checks"});
      UpstreamConfig upstream;
      upstream.where = locate(node);
      if (require(node, "upstream", "name") && readName(node, "name", upstream.name)) {
        const auto [first, inserted] =
            upstreamIndex_.emplace(upstream.name, config_.upstreams.size());
        if (!inserted) {
          error(findField(node, "name")->anchor(),
                "duplicate upstream name " + quote(upstream.name) + " (first at " +
                    toString(config_.upstreams[first->second].where) + ")");
        }
      }
      if (const auto backends = requireList(node, "upstream", "backends")) {
        for (const YAML::Node& backend : *backends) parseBackend(backend, upstream.backends);
      }
      if (const auto pool = optionalMap(node, "pool")) {
        checkKeys(*pool, "pool", {"max_idle", "idle_timeout"});
        readInt(*pool, "max_idle", upstream.pool.max_idle_per_backend, 0, kMaxPoolIdle);
        readDuration(*pool, "idle_timeout", upstream.pool.idle_timeout, kMinTimeout);
      }
      parseTimeouts(node, upstream.timeouts);
      parseHealthChecks(node, upstream);
      config_.upstreams.push_back(std::move(upstream));
      used_.push_back(false);
    }
  }

  void parseHealthChecks(const YAML::Node& owner, UpstreamConfig& upstream) {
    const auto checks = optionalMap(owner, "health_checks");
    if (!checks) return;
    checkKeys(*checks, "health_checks", {"active", "passive"});
    if (const auto active = optionalMap(*checks, "active")) {
      checkKeys(*active, "active health check",
                {"path", "host", "interval", "timeout", "healthy_threshold",
                 "unhealthy_threshold", "expected_statuses"});
      ActiveHealthCheck& out = upstream.active_check.emplace();
      out.where = locate(*active);
      // Both go into the probe's request line and Host field verbatim: nothing that could end
      // a line or a field may pass.
      if (readString(*active, "path", out.path) &&
          (!out.path.starts_with('/') || out.path.find_first_of(" \t\r\n") != std::string::npos)) {
        error(findField(*active, "path")->anchor(),
              "health check path must start with '/' and contain no spaces or line breaks, got " +
                  quote(out.path));
      }
      if (readString(*active, "host", out.host) &&
          (out.host.empty() || out.host.find_first_of(" \t\r\n/") != std::string::npos)) {
        error(findField(*active, "host")->anchor(),
              "health check host must be a host name or host:port, got " + quote(out.host));
      }
      readDuration(*active, "interval", out.interval, kMinTimeout);
      readDuration(*active, "timeout", out.timeout, kMinTimeout);
      readInt(*active, "healthy_threshold", out.healthy_threshold, 1, kMaxThreshold);
      readInt(*active, "unhealthy_threshold", out.unhealthy_threshold, 1, kMaxThreshold);
      if (const auto statuses = findField(*active, "expected_statuses")) {
        parseStatusRanges(*statuses, out.expected_statuses);
      }
    }
    if (const auto passive = optionalMap(*checks, "passive")) {
      checkKeys(*passive, "passive health check",
                {"consecutive_failures", "base_ejection", "max_ejection", "count_5xx",
                 "count_read_timeouts", "max_ejection_percent"});
      PassiveHealthCheck& out = upstream.passive_check;
      readInt(*passive, "consecutive_failures", out.consecutive_failures, 0, kMaxThreshold);
      readDuration(*passive, "base_ejection", out.base_ejection, kMinTimeout);
      readDuration(*passive, "max_ejection", out.max_ejection, kMinTimeout);
      readBool(*passive, "count_5xx", out.count_5xx);
      readBool(*passive, "count_read_timeouts", out.count_read_timeouts);
      readInt(*passive, "max_ejection_percent", out.max_ejection_percent, 0, 100);
      if (out.max_ejection < out.base_ejection) {
        error(*passive, "max_ejection must be at least base_ejection");
      }
    }
  }

  // expected_statuses: [200, 204, "200-299"]: codes or inclusive ranges, each within 100..599.
  void parseStatusRanges(const Field& field, std::vector<std::pair<int, int>>& out) {
    if (!field.value.IsSequence() || field.value.size() == 0) {
      error(field.anchor(), "expected_statuses must be a non-empty list of status codes or "
                            "ranges such as 200-399, got " + describe(field.value));
      return;
    }
    out.clear();
    for (const YAML::Node& item : field.value) {
      const std::string text = item.IsScalar() ? item.Scalar() : std::string();
      const std::size_t dash = text.find('-');
      const auto low = parseInt<int>(std::string_view(text).substr(0, dash), 100, 599);
      const auto high = dash == std::string::npos
                            ? low
                            : parseInt<int>(std::string_view(text).substr(dash + 1), 100, 599);
      if (!low || !high || *high < *low) {
        error(item, "expected_statuses: each entry must be a status code (100-599) or a range "
                    "such as 200-399, got " + describe(item));
        continue;
      }
      out.emplace_back(*low, *high);
    }
  }

  // A backend is "host:port" or {address: "host:port", weight: N}.
  void parseBackend(const YAML::Node& node, std::vector<BackendConfig>& out) {
    BackendConfig backend;
    backend.where = locate(node);
    Field address{node, node};
    if (node.IsMap()) {
      checkKeys(node, "backend", {"address", "weight"});
      readInt(node, "weight", backend.weight, 1, kMaxWeight);
      if (!require(node, "backend", "address")) return;
      address = *findField(node, "address");
    }
    if (!address.value.IsScalar()) {
      std::string message =
          "backend must be host:port or a mapping with 'address' and 'weight', "
          "got " +
          describe(address.value);
      if (address.value.IsSequence()) message += " (quote IPv6 addresses: \"[::1]:9000\")";
      error(address.anchor(), std::move(message));
      return;
    }
    if (const auto problem = splitHostPort(address.value.Scalar(), backend)) {
      error(address.anchor(), *problem);
      return;
    }
    out.push_back(std::move(backend));
  }

  void parseRoutes(const YAML::Node& root) {
    const auto list = requireList(root, "the configuration", "routes");
    if (!list) return;
    std::map<std::string, Location> names;
    RouteOverlaps overlaps(kHttpMethods);  // of the routes whose match parsed cleanly
    std::size_t index = 0;
    for (const YAML::Node& node : *list) {
      ++index;
      if (!expectMap(node, "a route")) continue;
      checkKeys(node, "route",
                {"name", "match", "upstream", "strip_prefix", "preserve_host", "limits", "timeouts",
                 "plugins"});
      RouteConfig route;
      route.where = locate(node);
      route.name = "route-" + std::to_string(index);
      readName(node, "name", route.name);
      if (const auto [first, inserted] = names.emplace(route.name, route.where); !inserted) {
        error(node, "duplicate route name " + quote(route.name) + " (first at " +
                        toString(first->second) + ")");
      }
      const bool matchOk = parseMatch(node, route.match);
      resolveUpstream(node, route);
      route.body_bytes = config_.limits.body_bytes;
      if (const auto limits = optionalMap(node, "limits")) {
        checkKeys(*limits, "route limits", {"body_bytes"});
        readSize(*limits, "body_bytes", route.body_bytes, 0);
      }
      parseTimeouts(node, route.timeouts);
      if (readString(node, "strip_prefix", route.strip_prefix) && matchOk &&
          !route.match.path.starts_with(route.strip_prefix)) {
        error(findField(node, "strip_prefix")->anchor(),
              "strip_prefix " + quote(route.strip_prefix) + " is not a prefix of the match path " +
                  quote(route.match.path));
      }
      readBool(node, "preserve_host", route.preserve_host);
      route.plugins = config_.plugins;
      if (const auto plugins = findField(node, "plugins")) parsePlugins(*plugins, route.plugins);
      warnPluginOrder(route.plugins);
      if (matchOk) checkOverlaps(node, route, overlaps);
      config_.routes.push_back(std::move(route));
    }
    warnFallThroughs(overlaps);
  }

  // Sets the upstream index and the timeouts the route inherits from it.
  void resolveUpstream(const YAML::Node& node, RouteConfig& route) {
    std::string name;
    if (!require(node, "route", "upstream") || !readString(node, "upstream", name)) return;
    const auto found = upstreamIndex_.find(name);
    if (found == upstreamIndex_.end()) {
      error(findField(node, "upstream")->anchor(), "unknown upstream " + quote(name));
      return;
    }
    route.upstream = found->second;
    route.timeouts = config_.upstreams[found->second].timeouts;
    used_[found->second] = true;
  }

  // Returns whether the match is fully valid (a partly parsed one would be reported as overlapping
  // routes it does not really overlap).
  bool parseMatch(const YAML::Node& route, RouteMatch& out) {
    const auto field = findField(route, "match");
    if (!field || field->value.IsNull()) return true;  // default: prefix "/"
    const auto match = optionalMap(route, "match");
    if (!match) return false;
    const std::size_t errorsBefore = errors_.size();
    checkKeys(*match, "match", {"prefix", "exact", "methods", "host"});
    const bool hasPrefix = findField(*match, "prefix").has_value();
    const bool hasExact = findField(*match, "exact").has_value();
    if (hasPrefix && hasExact) {
      error(*match, "match must have only one of 'prefix' and 'exact'");
    } else if (hasPrefix || hasExact) {
      out.kind = hasExact ? PathMatch::Exact : PathMatch::Prefix;
      const std::string_view key = hasExact ? "exact" : "prefix";
      if (readString(*match, key, out.path)) {
        if (const auto problem = checkMatchPath(out.path, config_.path_rules)) {
          error(findField(*match, key)->anchor(), quote(key) + " " + *problem);
        }
      }
    }
    if (const auto methods = findField(*match, "methods")) parseMethods(*methods, out.methods);
    std::string host;
    if (readString(*match, "host", host)) {
      std::transform(host.begin(), host.end(), host.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (host.ends_with('.')) host.pop_back();  // the fully qualified spelling, "example.com."
      const std::string_view name =
          host.starts_with("*.") ? std::string_view(host).substr(2) : host;
      if (host.find(':') != std::string::npos) {
        error(findField(*match, "host")->anchor(), "'host' must not include a port");
      } else if (!isValidHostName(name)) {
        error(findField(*match, "host")->anchor(),
              "'host' must be a host name such as api.example.com or *.example.com, got " +
                  quote(host));
      }
      out.host = std::move(host);
    }
    return errors_.size() == errorsBefore;
  }

  void parseMethods(const Field& field, std::vector<std::string>& out) {
    if (!field.value.IsSequence() || field.value.size() == 0) {
      const std::string message =
          "'methods' must be a non-empty list (omit it to match any method)";
      error(field.anchor(), message + ", got " + describe(field.value));
      return;
    }
    for (const YAML::Node& entry : field.value) {
      if (!entry.IsScalar()) {
        error(entry, "HTTP method must be a name such as GET, got " + describe(entry));
        continue;
      }
      const std::string& method = entry.Scalar();
      if (std::find(std::begin(kHttpMethods), std::end(kHttpMethods), method) ==
          std::end(kHttpMethods)) {
        error(entry, "unknown HTTP method " + quote(method) +
                         " (one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH; "
                         "upper-case)");
      } else if (std::find(out.begin(), out.end(), method) != out.end()) {
        warn(entry, "method " + quote(method) + " is listed twice");
      } else {
        out.push_back(method);
      }
    }
  }

  // The one place plugin entries are read: each is resolved in the registry and its settings
  // parsed by its factory; the bindings are appended to `out` (which already holds the global
  // list when a route's own list is read, so a repeat of a global plugin is caught too).
  void parsePlugins(const Field& field, std::vector<PluginBinding>& out) {
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
              "a plugin entry must be a plugin name or a mapping with one key, the plugin "
              "name, got " +
                  describe(entry));
        continue;
      }
      if (auto binding = parsePlugin(name, settings, out)) out.push_back(std::move(*binding));
    }
  }

  std::optional<PluginBinding> parsePlugin(const YAML::Node& name, const YAML::Node& settings,
                                           const std::vector<PluginBinding>& earlier) {
    PluginBinding binding;
    binding.name = name.Scalar();
    binding.where = locate(name);
    binding.factory = registry_.find(binding.name);
    if (binding.factory == nullptr) {
      std::string known;
      for (std::string_view n : registry_.names()) known += (known.empty() ? "" : ", ") + quote(n);
      error(name, "unknown plugin " + quote(binding.name) +
                      " (known plugins: " + (known.empty() ? "none" : known) + ")");
      return std::nullopt;
    }
    const auto first = std::find_if(earlier.begin(), earlier.end(),
                                    [&](const PluginBinding& b) { return b.name == binding.name; });
    if (first != earlier.end() && !binding.factory->allowsRepeats()) {
      error(name, "plugin " + quote(binding.name) + " is listed twice (first at " +
                      toString(first->where) + ")");
      return std::nullopt;
    }
    std::vector<plugin::ConfigError> problems;
    try {
      binding.settings = binding.factory->parse(settings, problems);
    } catch (const YAML::Exception& e) {
      problems.push_back({e.mark.line + 1, e.mark.column + 1,
                          "cannot read the settings of " + quote(binding.name) + ": " + e.msg});
    }
    for (plugin::ConfigError& problem : problems) {
      // A problem without a position (settings absent altogether) is the entry's.
      Location where =
          problem.line > 0 ? Location{config_.source, problem.line, problem.column} : binding.where;
      errors_.push_back({std::move(where), std::move(problem.message)});
    }
    if (!binding.settings) {
      if (problems.empty()) error(name, "plugin " + quote(binding.name) + " refused its settings");
      return std::nullopt;
    }
    return binding;
  }

  // The orders the plugin guide calls wrong. A global plugin is checked on every route, so the
  // same warning is given once.
  void warnPluginOrder(const std::vector<PluginBinding>& plugins) {
    const auto warnOnce = [&](const PluginBinding& at, std::string message) {
      if (pluginWarnings_.emplace(toString(at.where), message).second) {
        warnings_.push_back({at.where, std::move(message)});
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

  // First match wins, so a route that an earlier route fully covers can never be chosen.
  void checkOverlaps(const YAML::Node& node, const RouteConfig& route, RouteOverlaps& overlaps) {
    const auto shadow = overlaps.shadowOf(route.match);
    if (!shadow) {
      overlaps.add(config_.routes.size(), route.match);
      return;
    }
    const RouteConfig& earlier = config_.routes[shadow->earlier];
    const std::string other = quote(earlier.name) + " (" + toString(earlier.where) + ")";
    error(node, shadow->duplicate
                    ? "route " + quote(route.name) + " duplicates route " + other
                    : "route " + quote(route.name) + " is unreachable: shadowed by route " + other);
  }

  // A guard on a prefix (ip_filter, auth) is easily undone by a catch-all that takes the methods
  // the prefix's routes leave out: say so rather than let it pass silently, unless the requests
  // that fall through reach the same upstream through the same plugins.
  void warnFallThroughs(const RouteOverlaps& overlaps) {
    const auto samePlugins = [](const RouteConfig& a, const RouteConfig& b) {
      return std::equal(
          a.plugins.begin(), a.plugins.end(), b.plugins.begin(), b.plugins.end(),
          [](const PluginBinding& x, const PluginBinding& y) { return x.settings == y.settings; });
    };
    for (const RouteOverlaps::FallThrough& f : overlaps.fallThroughs(config_.routes)) {
      const RouteConfig& route = config_.routes[f.route];
      const RouteConfig& destination = config_.routes[f.destination];
      if (route.upstream == destination.upstream && samePlugins(route, destination)) continue;
      const std::string where =
          (route.match.host ? "host " + quote(*route.match.host) + " " : std::string()) +
          "prefix " + quote(route.match.path);
      warnings_.push_back(
          {route.where, "route " + quote(route.name) + " takes only " +
                            overlaps.methodNames(f.methods) + " on " + where +
                            "; requests there with other methods fall through to route " +
                            quote(destination.name) + " (" + toString(destination.where) +
                            ") and its plugins instead of a 405"});
    }
  }

  void warnUnusedUpstreams() {
    for (std::size_t i = 0; i < config_.upstreams.size(); ++i) {
      if (used_[i] || config_.upstreams[i].name.empty()) continue;
      const UpstreamConfig& upstream = config_.upstreams[i];
      warnings_.push_back(
          {upstream.where, "upstream " + quote(upstream.name) + " is not used by any route"});
    }
  }

  Config config_;
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
  std::map<std::string, std::size_t> upstreamIndex_;
  std::vector<bool> used_;  // parallel to config_.upstreams
  const plugin::Registry& registry_;
  std::set<std::pair<std::string, std::string>> pluginWarnings_;  // (where, message) given
};

}  // namespace

LoadResult loadString(std::string_view yaml, const std::string& sourceName,
                      const plugin::Registry& plugins) {
  return Loader(sourceName, plugins).load(yaml);
}

LoadResult loadFile(const std::string& path, const plugin::Registry& plugins) {
  std::string text;
  if (auto why = readFileBounded(path, kMaxConfigBytes, text)) {
    LoadResult result;
    Diagnostic& diagnostic = result.errors.emplace_back();
    diagnostic.where.file = path;  // line 0, column 0: the whole file
    diagnostic.message = "cannot open configuration file: " + std::move(*why);
    return result;
  }
  return loadString(text, path, plugins);
}

}  // namespace gw::config
