#include "gateway/plugin/registry.h"

#include <doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace gw::plugin {
namespace {

constexpr std::string_view kTwoValues[] = {"a", "b"};

// A plugin type that only declares counters and log fields.
class Declaring final : public Factory {
 public:
  Declaring(std::string name, std::span<const observability::CounterFamily> counters,
            std::span<const std::string_view> fields)
      : name_(std::move(name)), counters_(counters), fields_(fields) {}
  std::string_view name() const override { return name_; }
  std::shared_ptr<const RouteConfig> parse(const YAML::Node&,
                                           std::vector<ConfigError>&) const override {
    return std::make_shared<RouteConfig>();
  }
  std::unique_ptr<Plugin> create(const RouteConfig&, WorkerState*) const override {
    return std::make_unique<Plugin>();
  }
  std::span<const observability::CounterFamily> counters() const override { return counters_; }
  std::span<const std::string_view> logFields() const override { return fields_; }

 private:
  std::string name_;
  std::span<const observability::CounterFamily> counters_;
  std::span<const std::string_view> fields_;
};

TEST_CASE("registry: each type's counters and log fields get slots after the earlier types'") {
  static constexpr observability::CounterFamily kFirst[] = {{"one_total", "One.", "", {}},
                                                            {"two_total", "Two.", "v", kTwoValues}};
  static constexpr observability::CounterFamily kSecond[] = {{"three_total", "Three.", "", {}}};
  static constexpr std::string_view kFirstFields[] = {"f1"};
  static constexpr std::string_view kSecondFields[] = {"f2", "f3"};
  Registry registry;
  registry.add(std::make_unique<Declaring>("first", kFirst, kFirstFields));
  registry.add(std::make_unique<Declaring>("none", std::span<const observability::CounterFamily>(),
                                           std::span<const std::string_view>()));
  registry.add(std::make_unique<Declaring>("second", kSecond, kSecondFields));
  CHECK(registry.find("first")->slots().counters == 0);
  CHECK(registry.find("first")->slots().logFields == 0);
  CHECK(registry.find("none")->slots().counters == 3);  // one_total, two_total{a}, two_total{b}
  CHECK(registry.find("second")->slots().counters == 3);
  CHECK(registry.find("second")->slots().logFields == 1);
  REQUIRE(registry.counterFamilies().size() == 3);
  CHECK(registry.counterFamilies()[2].name == "three_total");
  CHECK(std::vector<std::string_view>(registry.logFields().begin(), registry.logFields().end()) ==
        std::vector<std::string_view>{"f1", "f2", "f3"});
}

TEST_CASE("registry: more log fields than an exchange holds is refused when it is built") {
  static constexpr std::string_view kFive[] = {"a", "b", "c", "d", "e"};
  Registry registry;
  registry.add(
      std::make_unique<Declaring>("x", std::span<const observability::CounterFamily>(), kFive));
  CHECK_THROWS_AS(registry.add(std::make_unique<Declaring>(
                      "y", std::span<const observability::CounterFamily>(), kFive)),
                  std::logic_error);
}

TEST_CASE(
    "registry: the built-in plugins' counters and log fields, as /metrics and logs show them") {
  const Registry& builtin = Registry::builtin();
  std::vector<std::string> families;
  for (const auto& family : builtin.counterFamilies()) {
    std::string labels(family.label);
    for (std::string_view value : family.values) labels += " " + std::string(value);
    families.push_back(std::string(family.name) + (labels.empty() ? "" : " {" + labels + "}"));
  }
  CHECK(families == std::vector<std::string>{
                        "gatewayd_cache_requests_total {result hit miss stale bypass}",
                        "gatewayd_cache_redis_total {result hit miss error stored too_large}",
                        "gatewayd_rate_limit_rejections_total",
                        "gatewayd_rate_limit_shadow_exceeded_total",
                        "gatewayd_rate_limit_redis_fallback_total {policy allow deny}",
                        "gatewayd_rate_limit_memo_refusals_total",
                        "gatewayd_rate_limit_redis_calls_total",
                        "gatewayd_rate_limit_redis_waits_total",
                        "gatewayd_schema_validation_failures_total",
                    });
  CHECK(std::vector<std::string_view>(builtin.logFields().begin(), builtin.logFields().end()) ==
        std::vector<std::string_view>{"cache", "rate_limit"});
}

}  // namespace
}  // namespace gw::plugin
