#include "gateway/config/node_reader.h"

#include <doctest.h>

namespace gw::config {
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
  Duration window{1000};
  std::size_t size = 10;
  std::vector<std::string> list{"x"};
  Mode mode = Mode::Replace;
  std::vector<ConfigError> errors;

  explicit Sample(const std::string& yaml) {
    auto reader = NodeReader::settings(YAML::Load(yaml), "sample", errors);
    reader.allowKeys({"name", "flag", "count", "window", "size", "list", "mode"});
    reader.readString("name", name);
    reader.readBool("flag", flag);
    reader.readInt("count", count, 1, 100);
    reader.readDuration("window", window, Duration(1));
    reader.readSize("size", size, 1);
    reader.readStrings("list", list);
    reader.readEnum("mode", mode, {{"keep", Mode::Keep}, {"replace", Mode::Replace}});
  }
};

TEST_CASE("NodeReader: absent keys and null settings keep the defaults") {
  for (const char* yaml : {"", "{}", "~"}) {
    Sample s(yaml);
    CHECK(s.errors.empty());
    CHECK(s.name == "default");
    CHECK(s.count == 7);
    CHECK(s.window == Duration(1000));
    CHECK(s.list == Lines{"x"});
    CHECK(s.mode == Mode::Replace);
  }
}

TEST_CASE("NodeReader: every type reads") {
  Sample s("{name: n, flag: true, count: 100, window: 2m, size: 4KiB, list: [a, b], mode: keep}");
  CHECK(format(s.errors).empty());
  CHECK(s.name == "n");
  CHECK(s.flag);
  CHECK(s.count == 100);
  CHECK(s.window == Duration(120'000));
  CHECK(s.size == 4096);
  CHECK(s.list == Lines{"a", "b"});
  CHECK(s.mode == Mode::Keep);
  CHECK(Sample("{list: []}").list.empty());
}

TEST_CASE("NodeReader: bad values are reported where they are and keep the defaults") {
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
  CHECK(s.window == Duration(1000));
  CHECK(s.size == 10);
  CHECK(s.list == Lines{"x"});
  CHECK(s.mode == Mode::Replace);
}

TEST_CASE("NodeReader: an empty value is reported at its key") {
  Sample s("name:\ncount: -1\n");
  CHECK(format(s.errors) == Lines{"1:1: 'name' must be a string, got nothing",
                                  "2:8: 'count': expected an integer from 1 to 100, got '-1'"});
}

TEST_CASE("NodeReader: settings that are not a mapping") {
  std::vector<ConfigError> errors;
  auto reader = NodeReader::settings(YAML::Load("[1, 2]"), "sample", errors);
  reader.allowKeys({"a"});
  std::string a = "kept";
  CHECK_FALSE(reader.readString("a", a));
  CHECK(format(errors) == Lines{"1:1: the settings of sample must be a mapping, got a list"});
}

TEST_CASE("NodeReader: readMap and value give nested nodes") {
  std::vector<ConfigError> errors;
  NodeReader reader(YAML::Load("{m: {k: v}, n: 3, e: }"), "sample", errors);
  REQUIRE(reader.readMap("m"));
  CHECK((*reader.readMap("m"))["k"].Scalar() == "v");
  CHECK_FALSE(reader.readMap("e"));
  CHECK_FALSE(reader.readMap("absent"));
  CHECK_FALSE(reader.readMap("n"));
  CHECK(format(errors) == Lines{"1:16: 'n' must be a mapping, got '3'"});
  CHECK(reader.has("e"));
  CHECK(reader.value("n")->Scalar() == "3");
}

TEST_CASE("NodeReader: required keys and lists, reported at the mapping or the value") {
  std::vector<ConfigError> errors;
  NodeReader reader(YAML::Load("a: [x]\nb: []\nc: 3\n"), "the thing", errors);
  CHECK(reader.require("a"));
  CHECK_FALSE(reader.require("z"));
  REQUIRE(reader.requireList("a"));
  CHECK(reader.requireList("a")->size() == 1);
  CHECK_FALSE(reader.requireList("b"));
  CHECK_FALSE(reader.requireList("c"));
  CHECK_FALSE(reader.requireList("y"));
  CHECK(format(errors) ==
        Lines{"1:1: the thing is missing required key 'z'", "2:4: 'b' must have at least one entry",
              "3:4: 'c' must be a list, got '3'", "1:1: the thing is missing required key 'y'"});
}

TEST_CASE("NodeReader: a repeated key's first place names the file when the reader has one") {
  std::vector<ConfigError> errors;
  NodeReader(YAML::Load("a: 1\na: 2\n"), "top", errors, "gw.yaml").allowKeys({"a"});
  NodeReader(YAML::Load("a: 1\na: 2\n"), "top", errors).allowKeys({"a"});
  NodeReader(YAML::Load("a: 1\n"), "top", errors).allowKeys({});
  CHECK(format(errors) == Lines{"2:1: duplicate key 'a' (first at gw.yaml:1:1)",
                                "2:1: duplicate key 'a' (first at line 1, column 1)",
                                "1:1: unknown key 'a' in top (it takes no settings)"});
}

TEST_CASE("NodeReader: read converts through the caller's check and words its refusal") {
  std::vector<ConfigError> errors;
  NodeReader reader(YAML::Load("even: 4\nodd: 3\nlist: [1]\n"), "sample", errors);
  const auto even = [](const std::string& text, std::string& why) {
    if (std::stoi(text) % 2 == 0) return std::optional(std::stoi(text));
    why = "expected an even number, got " + quote(text);
    return std::optional<int>();
  };
  int value = 0;
  CHECK(reader.read("even", "an even number", value, even));
  CHECK(value == 4);
  CHECK_FALSE(reader.read("odd", "an even number", value, even));
  CHECK_FALSE(reader.read("list", "an even number", value, even));
  CHECK(value == 4);
  CHECK(format(errors) == Lines{"2:6: 'odd': expected an even number, got '3'",
                                "3:7: 'list' must be an even number, got a list"});
}

TEST_CASE("NodeReader: control characters in values are spelled out in messages") {
  std::vector<ConfigError> errors;
  NodeReader reader(YAML::Load("flag: \"a\\tb\\x1b[0m\"\n"), "sample", errors);
  bool flag = false;
  CHECK_FALSE(reader.readBool("flag", flag));
  CHECK(format(errors) == Lines{"1:7: 'flag': expected true or false, got 'a\\tb\\x1b[0m'"});
}

}  // namespace
}  // namespace gw::config
