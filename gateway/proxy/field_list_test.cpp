#include "gateway/proxy/field_list.h"

#include <doctest.h>

using gw::proxy::FieldList;

TEST_CASE("field list keeps order, finds names case-insensitively, and set replaces all") {
  FieldList fields;
  fields.add("Accept", "a/b");
  fields.add("X-Tag", "1");
  fields.add("x-tag", "2");
  CHECK(fields.size() == 3);
  CHECK(fields.get("ACCEPT") == std::optional<std::string_view>("a/b"));
  CHECK(fields.get("x-TAG") == std::optional<std::string_view>("1"));
  fields.set("X-Tag", "3");
  CHECK(fields.size() == 2);
  CHECK(fields.get("x-tag") == std::optional<std::string_view>("3"));
  fields.remove("accept");
  CHECK_FALSE(fields.get("Accept").has_value());
  fields.add("Empty", "");
  std::string out(fields.serializedSize(), '\0');
  CHECK(fields.serializeTo(out.data()) == out.data() + out.size());
  CHECK(out == "X-Tag: 3\r\nEmpty: \r\n");
}

TEST_CASE("field list entries stay valid while the arena grows") {
  FieldList fields;
  for (int i = 0; i < 200; ++i) fields.add("X-N" + std::to_string(i), std::string(50, 'v'));
  auto [name, value] = fields.at(0);
  CHECK(name == "X-N0");
  CHECK(value == std::string(50, 'v'));
  CHECK(fields.at(199).first == "X-N199");
}

TEST_CASE("field list finds and replaces names whatever names it saw before") {
  FieldList fields;
  CHECK_FALSE(fields.get("X-A").has_value());
  fields.add("X-A", "1");
  // 3 + 16 bytes, the same last letter: the same bit of the names seen as "X-A", another name.
  const std::string longName = "X-" + std::string(16, 'b') + "A";
  CHECK_FALSE(fields.get(longName).has_value());
  fields.set(longName, "2");
  fields.set("x-a", "3");
  CHECK(fields.size() == 2);
  CHECK(fields.get(longName) == std::optional<std::string_view>("2"));
  CHECK(fields.get("X-A") == std::optional<std::string_view>("3"));
  fields.remove(longName);
  CHECK(fields.size() == 1);
  fields.clear();
  CHECK_FALSE(fields.get("X-A").has_value());
  fields.set("X-A", "4");
  CHECK(fields.size() == 1);
  CHECK(fields.at(0).second == "4");
}

TEST_CASE("field list serialises every field, or all but Content-Length") {
  FieldList fields;
  fields.add("A", "1");
  fields.add("Content-Length", "5");
  fields.add("B", "");
  std::string out(fields.serializedSize(), '\0');
  out.resize(fields.serializeTo(out.data(), true) - out.data());
  CHECK(out == "A: 1\r\nB: \r\n");
  out.assign(fields.serializedSize(), '\0');
  CHECK(fields.serializeTo(out.data()) == out.data() + out.size());
  CHECK(out == "A: 1\r\nContent-Length: 5\r\nB: \r\n");
}

TEST_CASE("field list moves its fields and leaves the source empty and usable") {
  FieldList source;
  source.add("A", "1");
  FieldList moved(std::move(source));
  CHECK(moved.size() == 1);
  CHECK(moved.get("a") == std::optional<std::string_view>("1"));
  CHECK(source.size() == 0);  // NOLINT(bugprone-use-after-move): the contract under test
  CHECK_FALSE(source.get("A").has_value());
  source.add("B", std::string(2000, 'x'));
  CHECK(source.at(0).second.size() == 2000);
  moved = std::move(source);
  CHECK(moved.size() == 1);
  CHECK(moved.at(0).first == "B");
  source.add("C", "3");
  CHECK(source.at(0) == std::pair<std::string_view, std::string_view>("C", "3"));
}

TEST_CASE("field list serialises runs of fields around removed and omitted ones") {
  FieldList fields;
  for (const char* name :
       {"content-length", "A", "Gone", "B", "C", "Content-Length", "Gone", "D", "CONTENT-LENGTH"}) {
    fields.add(name, std::string(name) + "-v");
  }
  fields.remove("gone");
  std::string out(fields.serializedSize(), '\0');
  // Four "X: X-v" lines and three "content-length: content-length-v" ones: the removed are gone.
  CHECK(fields.serializedSize() == 4 * 8 + 3 * 34);
  out.resize(fields.serializeTo(out.data(), true) - out.data());
  CHECK(out == "A: A-v\r\nB: B-v\r\nC: C-v\r\nD: D-v\r\n");
  CHECK(fields.get("D") == std::optional<std::string_view>("D-v"));
}

TEST_CASE("field list knows each field's kind: as given, or classified from its name") {
  using gw::http::FieldName;
  FieldList fields;
  fields.add("X-Forwarded-For", "192.0.2.1", FieldName::XForwardedFor);
  fields.add("content-length", "5");  // as a plugin adds it
  fields.add("X-Other", "1");
  CHECK(fields.kind(0) == FieldName::XForwardedFor);
  CHECK(fields.kind(1) == FieldName::ContentLength);
  CHECK(fields.kind(2) == FieldName::Other);
  fields.set("X-Forwarded-For", "198.51.100.7");
  CHECK(fields.kind(2) == FieldName::XForwardedFor);
}
