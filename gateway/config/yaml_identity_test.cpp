#include "gateway/config/yaml_identity.h"

#include <doctest.h>

namespace gw::config {
namespace {

std::string identity(const char* yaml) { return identityOf(YAML::Load(yaml)); }

TEST_CASE("yaml identity: the same settings written another way are the same") {
  const std::string block = identity(
      "limits:\n"
      "  - requests: 5   # per second\n"
      "    window: 1s\n"
      "key: [client_ip]\n");
  CHECK(identity("{limits: [{requests: 5, window: 1s}], key: [client_ip]}") == block);
  CHECK(identity("{limits: [{requests: '5', window: \"1s\"}], key: [client_ip]}") == block);
}

TEST_CASE("yaml identity: any change of value, key, order or structure is a change") {
  const std::string base = identity("{a: 1, b: [x, y]}");
  CHECK(identity("{a: 2, b: [x, y]}") != base);
  CHECK(identity("{a: 1, c: [x, y]}") != base);
  CHECK(identity("{b: [x, y], a: 1}") != base);
  CHECK(identity("{a: 1, b: [y, x]}") != base);
  CHECK(identity("{a: 1, b: [x, y, z]}") != base);
  CHECK(identity("{a: [1], b: [x, y]}") != base);
  CHECK(identity("{a: bc}") != identity("{ab: c}"));
  CHECK(identity("~") != identity("''"));
}

}  // namespace
}  // namespace gw::config
