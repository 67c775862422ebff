#include "gateway/redis/script.h"

#include <doctest/doctest.h>

namespace gw::redis {

TEST_CASE("a script is filed under the SHA-1 of its source, as SCRIPT LOAD answers") {
  // What `redis-cli SCRIPT LOAD "return 1"` answers.
  Script one("one", "return 1");
  CHECK(one.sha1() == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
  CHECK(one.name() == "one");
  CHECK(one.source() == "return 1");
  Script other("other", "return 2");
  CHECK(other.sha1() != one.sha1());
  CHECK(other.sha1().size() == 40);
}

}  // namespace gw::redis
