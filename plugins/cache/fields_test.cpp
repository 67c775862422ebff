#include "plugins/cache/fields.h"

#include <doctest.h>

#include <vector>

namespace gw::plugins::cache {
namespace {

std::vector<std::string> elements(std::string_view value) {
  std::vector<std::string> out;
  forEachListElement(value, [&](std::string_view e) {
    out.emplace_back(e);
    return true;
  });
  return out;
}

TEST_CASE("fields: list elements: OWS trimmed, empties skipped, quoted commas kept") {
  CHECK(elements(" a ,b,, \t c\t") == std::vector<std::string>{"a", "b", "c"});
  CHECK(elements("a=\"x, y\", b") == std::vector<std::string>{"a=\"x, y\"", "b"});
  CHECK(elements("a=\"x\\\", y\", b") == std::vector<std::string>{"a=\"x\\\", y\"", "b"});
  CHECK(elements("").empty());
  CHECK(elements(" , ,").empty());
}

TEST_CASE("fields: first and combined values, names case-insensitive") {
  const std::vector<Field> fields{{"Vary", " a "}, {"X", "1"}, {"vary", "b"}};
  FieldSpan view(fields);
  CHECK(firstValue(view, "VARY") == " a ");
  CHECK_FALSE(firstValue(view, "Age").has_value());
  std::string out = "junk";
  CHECK(combinedValue(view, "Vary", out));
  CHECK(out == "a, b");
  CHECK_FALSE(combinedValue(view, "Age", out));
  CHECK(out.empty());
}

}  // namespace
}  // namespace gw::plugins::cache
