#include "gateway/config/loader.h"

#include <yaml-cpp/depthguard.h>

#include <algorithm>
#include <cctype>
#include <thread>

#include "gateway/config/file_text.h"
#include "gateway/config/loader_sections.h"
#include "gateway/config/yaml_documents.h"
#include "gateway/config/yaml_expansion.h"

namespace gw::config {
namespace {

constexpr unsigned kMaxWorkers = 1024;

unsigned autoWorkers() { return std::max(1u, std::thread::hardware_concurrency()); }

bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

bool isValidName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), isNameChar);
}

}  // namespace

std::string toString(const Location& where) {
  return where.file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
}

bool isValidHostName(std::string_view host) {
  if (host.empty() || host.front() == '.' || host.back() == '.') return false;
  if (host.find("..") != std::string_view::npos) return false;
  return std::all_of(host.begin(), host.end(), isNameChar);
}

Loader::Loader(const std::string& source, const LoadEnvironment& environment)
    : environment_(environment) {
  config_.source = source;
}

LoadResult Loader::load(std::string_view yaml) {
  try {
    const std::string text(yaml);
    const FirstDocument document = readFirstDocument(text);
    if (document.stuck) {
      const bool comma = text[document.stuck->pos] == ',';
      error(*document.stuck, comma ? "invalid YAML: ',' outside a flow collection ([...] or {...})"
                                   : "invalid YAML: a token no document can hold");
    } else if (document.root.IsNull()) {
      error(YAML::Mark(), "the configuration is empty");
    } else if (document.next) {
      error(*document.next, "only one YAML document is allowed");
    } else if (auto problem = checkExpandedSize(document.root, kMaxYamlNodes)) {
      error(problem->at, std::move(problem->message));
    } else {
      parseRoot(document.root);
    }
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own text for this is "bad file".
    error(e.mark, "invalid YAML: nested more deeply than yaml-cpp allows (about 500 levels)");
  } catch (const YAML::ParserException& e) {
    error(e.mark, "invalid YAML: " + e.msg);
  } catch (const YAML::Exception& e) {
    error(e.mark, "cannot read the configuration: " + e.msg);
  }
  const auto inFileOrder = [&](std::vector<ConfigError>& found) {
    std::stable_sort(found.begin(), found.end(), [](const ConfigError& a, const ConfigError& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    std::vector<Diagnostic> located;
    for (ConfigError& e : found) {
      located.push_back({{config_.source, e.line, e.column}, std::move(e.message)});
    }
    return located;
  };
  LoadResult result{std::nullopt, inFileOrder(errors_), inFileOrder(warnings_)};
  if (result.errors.empty()) result.config = std::move(config_);
  return result;
}

Location Loader::locate(const YAML::Node& node) const {
  const YAML::Mark mark = node.Mark();
  return {config_.source, mark.line + 1, mark.column + 1};
}

void Loader::error(const YAML::Mark& at, std::string message) {
  errors_.push_back({at.line + 1, at.column + 1, std::move(message)});
}

void Loader::warn(const Location& at, std::string message) {
  warnings_.push_back({at.line, at.column, std::move(message)});
}

bool Loader::expectMap(const YAML::Node& node, std::string_view what) {
  if (node.IsMap()) return true;
  error(node, std::string(what) + " must be a mapping, got " + describe(node));
  return false;
}

bool Loader::readName(NodeReader& in, std::string_view key, std::string& out) {
  return in.read(key, "a name", out, [](const std::string& text, std::string& why) {
    if (isValidName(text)) return std::optional(text);
    why = "expected only letters, digits, '_', '.' and '-', got " + quote(text);
    return std::optional<std::string>();
  });
}

bool Loader::readAbsolutePath(NodeReader& in, std::string_view key, std::string_view what,
                              std::string& path, Location& at) {
  if (!in.readString(key, path)) return false;
  const YAML::Node anchor = in.field(key)->anchor();
  at = locate(anchor);
  if (path.starts_with('/')) return true;
  error(anchor, std::string(what) + " must be an absolute file path, got " + quote(path));
  return false;
}

void Loader::parseRoot(const YAML::Node& node) {
  if (!expectMap(node, "the configuration")) return;
  NodeReader root = reader(node, "the configuration");
  root.allowKeys({"workers", "listeners", "admin", "readiness", "access_log", "tracing", "limits",
                  "http", "shutdown", "redis", "upstreams", "plugins", "routes"});
  parseWorkers(root);
  parseListeners(root);
  parseAdmin(root);
  parseAccessLog(root);
  parseTracing(root);
  parseLimits(root);
  parseHttp(root);  // before routes: their match paths are checked under these rules
  if (const auto shutdown = root.readMap("shutdown")) {
    NodeReader in = reader(*shutdown, "shutdown");
    in.allowKeys({"drain_timeout"});
    in.readDuration("drain_timeout", config_.drain_timeout, Duration(0));
  }
  parseRedis(root);
  parseUpstreams(root);
  if (const auto plugins = root.field("plugins")) parsePlugins(*plugins, config_.plugins);
  parseRoutes(root);  // after upstreams and limits: routes inherit from both
  parseReadiness(root);
  warnUnusedUpstreams();
}

void Loader::parseWorkers(NodeReader& root) {
  const std::string expected = "'auto' or an integer from 1 to " + std::to_string(kMaxWorkers);
  config_.workers = autoWorkers();
  root.read("workers", expected, config_.workers, [&](const std::string& text, std::string& why) {
    auto value = text == "auto" ? autoWorkers() : parseInt<unsigned>(text, 1, kMaxWorkers);
    if (!value) why = "expected " + expected + ", got " + quote(text);
    return value;
  });
}

LoadResult loadString(std::string_view yaml, const std::string& sourceName,
                      const LoadEnvironment& environment) {
  return Loader(sourceName, environment).load(yaml);
}

LoadResult loadFile(const std::string& path, const LoadEnvironment& environment) {
  std::string text;
  if (auto why = readFileBounded(path, kMaxConfigBytes, text)) {
    LoadResult result;
    Diagnostic& diagnostic = result.errors.emplace_back();
    diagnostic.where.file = path;  // line 0, column 0: the whole file
    diagnostic.message = "cannot open configuration file: " + std::move(*why);
    return result;
  }
  return loadString(text, path, environment);
}

}  // namespace gw::config
