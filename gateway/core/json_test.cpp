#include "gateway/core/json.h"

#include <doctest.h>

TEST_CASE("appendJsonEscaped escapes quotes, backslashes and control bytes") {
  std::string out;
  gw::core::appendJsonEscaped(out, std::string_view("a\"b\\c\n\x01\x7f\xc3\xa9", 10));
  CHECK(out == "a\\\"b\\\\c\\n\\u0001\\u007f\xc3\xa9");
}
