#include "gateway/plugin/config_reader.h"

#include <doctest.h>

namespace gw::plugin {
namespace {

using Lines = std::vector<std::string>;

Lines format(const std::vector<ConfigError>& errors) {
  Lines lines;
  for (const ConfigError& e : errors) {
    lines.push_back(std::to_string(e.line) + ":" + std::to_string(e.column) + ": " + e.message);
  }
  return lines;
}

enum class Mode { Keep, Replace };

// Reads every kind of value from `yaml` into fields that start at their defaults.
struct Sample {
  std::string name = "default";
  bool flag = false;
  int count = 7;
  config::Duration window{1000};
  std::size_t size = 10;
  std::vector<std::string> list{"x"};
  Mode mode = Mode::Replace;
  std::vector<ConfigError> errors;

  explicit Sample(const std::string& yaml) {
    ConfigReader reader(YAML::Load(yaml), "sample", errors);
    reader.allowKeys({"name", "flag", "count", "window", "size", "list", "mode"});
    reader.readString("name", name);
    reader.readBool("flag", flag);
    reader.readInt("count", count, 1, 100);
    reader.readDuration("window", window, config::Duration(1));
    reader.readSize("size", size, 1);
    reader.readStrings("list", list);
    reader.readEnum("mode", mode, {{"keep", Mode::Keep}, {"replace", Mode::Replace}});
  }
};

TEST_CASE("ConfigReader: absent keys and null settings keep the defaults") {
  for (const char* yaml : {"", "{}", "~"}) {
    Sample s(yaml);
    CHECK(s.errors.empty());
    CHECK(s.name == "default");
    CHECK(s.count == 7);
    CHECK(s.window == config::Duration(1000));
    CHECK(s.list == Lines{"x"});
    CHECK(s.mode == Mode::Replace);
  }
}

TEST_CASE("ConfigReader: every type reads") {
  Sample s("{name: n, flag: true, count: 100, window: 2m, size: 4KiB, list: [a, b], mode: keep}");
  CHECK(format(s.errors).empty());
  CHECK(s.name == "n");
  CHECK(s.flag);
  CHECK(s.count == 100);
  CHECK(s.window == config::Duration(120'000));
  CHECK(s.size == 4096);
  CHECK(s.list == Lines{"a", "b"});
  CHECK(s.mode == Mode::Keep);
  CHECK(Sample("{list: []}").list.empty());
}

TEST_CASE("ConfigReader: bad values are reported where they are and keep the defaults") {
  Sample s(
      "name: [a]\n"
      "flag: yes\n"
      "count: 101\n"
      "window: 30\n"
      "size: 0\n"
      "list: [a, {b: c}]\n"
      "mode: drop\n"
      "other: 1\n"
      "count: 2\n");
  CHECK(format(s.errors) ==
        Lines{"8:1: unknown key 'other' in sample; expected one of: name, flag, count, window, "
              "size, list, mode",
              "9:1: duplicate key 'count' (first at line 3, column 1)",
              "1:7: 'name' must be a string, got a list",
              "2:7: 'flag': expected true or false, got 'yes'",
              "3:8: 'count': expected an integer from 1 to 100, got '101'",
              "4:9: 'window': duration '30' needs a unit (ms, s, m or h), e.g. '30s'",
              "5:7: 'size': expected at least 1B, got '0'",
              "6:11: each entry of 'list' must be a string, got a mapping",
              "7:7: 'mode': expected keep or replace, got 'drop'"});
  CHECK(s.name == "default");
  CHECK_FALSE(s.flag);
  CHECK(s.window == config::Duration(1000));
  CHECK(s.size == 10);
  CHECK(s.list == Lines{"x"});
  CHECK(s.mode == Mode::Replace);
}

TEST_CASE("ConfigReader: an empty value is reported at its key") {
  Sample s("name:\ncount: -1\n");
  CHECK(format(s.errors) == Lines{"1:1: 'name' must be a string, got nothing",
                                  "2:8: 'count': expected an integer from 1 to 100, got '-1'"});
}

TEST_CASE("ConfigReader: settings that are not a mapping") {
  std::vector<ConfigError> errors;
  ConfigReader reader(YAML::Load("[1, 2]"), "sample", errors);
  reader.allowKeys({"a"});
  std::string a = "kept";
  CHECK_FALSE(reader.readString("a", a));
  CHECK(format(errors) == Lines{"1:1: the settings of sample must be a mapping, got a list"});
}

TEST_CASE("ConfigReader: readMap and value give nested nodes") {
  std::vector<ConfigError> errors;
  ConfigReader reader(YAML::Load("{m: {k: v}, n: 3, e: }"), "sample", errors);
  REQUIRE(reader.readMap("m"));
  CHECK((*reader.readMap("m"))["k"].Scalar() == "v");
  CHECK_FALSE(reader.readMap("e"));
  CHECK_FALSE(reader.readMap("absent"));
  CHECK_FALSE(reader.readMap("n"));
  CHECK(format(errors) == Lines{"1:16: 'n' must be a mapping, got '3'"});
  CHECK(reader.has("e"));
  CHECK(reader.value("n")->Scalar() == "3");
}

}  // namespace
}  // namespace gw::plugin
