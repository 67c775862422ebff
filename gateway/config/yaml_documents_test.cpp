#include "gateway/config/yaml_documents.h"

#include <doctest.h>

namespace gw::config {

TEST_CASE("yaml documents: the first document, and where a second one starts") {
  FirstDocument one = readFirstDocument("a: 1\n");
  CHECK(one.root["a"].as<int>() == 1);
  CHECK(!one.next);
  CHECK(!one.stuck);

  FirstDocument two = readFirstDocument("a: 1\n---\nb: 2\n");
  CHECK(two.root["a"].as<int>() == 1);
  REQUIRE(two.next);
  CHECK(two.next->line == 1);
  CHECK(!two.stuck);

  // An empty second document is one too; an end marker alone is not.
  CHECK(readFirstDocument("a: 1\n---\n").next);
  CHECK(!readFirstDocument("a: 1\n...\n").next);
  CHECK(readFirstDocument("").root.IsNull());
  CHECK(readFirstDocument("# a comment\n").root.IsNull());
}

// yaml-cpp 0.7's LoadAll() never returned on these: the same empty document forever, memory
// growing by hundreds of MB a second (found by test/fuzz/config_fuzz.cpp).
TEST_CASE("yaml documents: a token no document can hold is where the parser is stuck") {
  FirstDocument comma = readFirstDocument(",");
  REQUIRE(comma.stuck);
  CHECK(comma.stuck->pos == 0);
  CHECK(comma.root.IsNull());

  FirstDocument later = readFirstDocument("# a comment\n\n  ,a: 1\n");
  CHECK(later.root.IsNull());
  REQUIRE(later.stuck);
  CHECK(later.stuck->line == 2);
  CHECK(later.stuck->column == 2);
}

}  // namespace gw::config
