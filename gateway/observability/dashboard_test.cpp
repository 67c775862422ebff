// The Grafana dashboard must load and may only query metrics gatewayd really exports.

#include <doctest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/observability/exposition.h"
#include "gateway/plugin/registry.h"
#include "test/support/files.h"

namespace obs = gw::observability;

using gw::test::sourceRoot;

namespace {

// PromQL text of every query: panel targets' "expr" and template variables' "definition" / "query".
void collectQueries(const rapidjson::Value& value, std::vector<std::string>& queries) {
  if (value.IsObject()) {
    for (const auto& member : value.GetObject()) {
      const std::string_view key(member.name.GetString(), member.name.GetStringLength());
      if (member.value.IsString() && (key == "expr" || key == "definition" || key == "query")) {
        queries.emplace_back(member.value.GetString(), member.value.GetStringLength());
      } else {
        collectQueries(member.value, queries);
      }
    }
  } else if (value.IsArray()) {
    for (const auto& element : value.GetArray()) collectQueries(element, queries);
  }
}

// Identifiers in `query` that look like our metric names (gatewayd_* or process_*), skipping
// quoted strings (label values, regexes).
std::vector<std::string> metricNames(const std::string& query) {
  const auto isIdent = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  };
  std::vector<std::string> names;
  for (std::size_t i = 0; i < query.size();) {
    if (query[i] == '"') {
      for (++i; i < query.size() && query[i] != '"'; ++i) {
        if (query[i] == '\\') ++i;
      }
      ++i;
    } else if (isIdent(query[i])) {
      std::size_t end = i;
      while (end < query.size() && isIdent(query[end])) ++end;
      std::string word = query.substr(i, end - i);
      if (word.starts_with("gatewayd_") || word.starts_with("process_")) names.push_back(word);
      i = end;
    } else {
      ++i;
    }
  }
  return names;
}

}  // namespace

TEST_CASE("the Grafana dashboard is valid JSON and queries only exported metric families") {
  const std::filesystem::path path = sourceRoot() / "conf" / "grafana" / "gatewayd-dashboard.json";
  INFO("dashboard: " << path);
  std::ifstream in(path);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();

  rapidjson::Document dashboard;
  dashboard.Parse(text.str().c_str());
  REQUIRE_MESSAGE(!dashboard.HasParseError(),
                  "JSON error at offset " << dashboard.GetErrorOffset());
  REQUIRE(dashboard.IsObject());
  CHECK(dashboard["schemaVersion"].GetInt() >= 36);
  REQUIRE(dashboard["panels"].IsArray());

  // What gatewayd exports, to tell histogram families (whose _bucket/_sum/_count are queried)
  // from counters that merely end in _count.
  auto layout = std::make_shared<obs::MetricsLayout>();
  layout->routes = {"r"};
  layout->upstreams = {{"u", {"127.0.0.1:1"}}};
  const auto plugins = gw::plugin::Registry::builtin().counterFamilies();
  layout->routeCounters.assign(plugins.begin(), plugins.end());
  const obs::WorkerMetrics total(layout);
  const auto families = obs::ScrapeCollectable(total, {}, {}).Collect();
  const auto exported = [&](const std::string& name, bool histogram) {
    return std::any_of(families.begin(), families.end(), [&](const prometheus::MetricFamily& f) {
      return f.name == name && (!histogram || f.type == prometheus::MetricType::Histogram);
    });
  };

  std::vector<std::string> queries;
  collectQueries(dashboard, queries);
  CHECK(queries.size() >= 15);
  std::size_t checked = 0;
  for (const std::string& query : queries) {
    for (const std::string& name : metricNames(query)) {
      INFO("query: " << query);
      INFO("metric: " << name);
      bool ok = exported(name, false);
      for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if (ok || !name.ends_with(suffix)) continue;
        ok = exported(name.substr(0, name.size() - suffix.size()), true);
      }
      CHECK(ok);
      ++checked;
    }
  }
  CHECK(checked >= 20);

  // Every panel and target uses the templated data source, so one import works anywhere.
  for (const auto& panel : dashboard["panels"].GetArray()) {
    if (std::string_view(panel["type"].GetString()) == "row") continue;
    INFO("panel: " << panel["title"].GetString());
    REQUIRE(panel.HasMember("datasource"));
    CHECK(std::string_view(panel["datasource"]["uid"].GetString()) == "${DS_PROMETHEUS}");
    for (const auto& target : panel["targets"].GetArray()) {
      CHECK(std::string_view(target["datasource"]["uid"].GetString()) == "${DS_PROMETHEUS}");
    }
  }
}

TEST_CASE("the dashboard check catches a name gatewayd does not export") {
  const std::vector<std::string> names = metricNames(
      "sum(rate(gatewayd_http_requests_totl{code=~\"5..\",x=\"a \\\" process_fake\"}[5m]))");
  CHECK(names == std::vector<std::string>{"gatewayd_http_requests_totl"});
  const obs::WorkerMetrics total(std::make_shared<obs::MetricsLayout>());
  const auto families = obs::ScrapeCollectable(total, {}, {}).Collect();
  CHECK(std::none_of(families.begin(), families.end(),
                     [&](const prometheus::MetricFamily& f) { return f.name == names.at(0); }));
  CHECK(metricNames("process_open_fds / process_max_fds") ==
        std::vector<std::string>{"process_open_fds", "process_max_fds"});
}
