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
