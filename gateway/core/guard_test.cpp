#include "gateway/core/guard.h"

#include <doctest.h>

#include <stdexcept>
#include <string>

TEST_CASE("guarded passes a normal return through without recovering") {
  int ran = 0;
  int recovered = 0;
  gw::core::guarded([&] { ++ran; }, [&](const char*) { ++recovered; });
  CHECK(ran == 1);
  CHECK(recovered == 0);
}

TEST_CASE("guarded turns an escaping exception into a recovery with its message") {
  std::string seen;
  gw::core::guarded([] { throw std::logic_error("route table corrupt"); },
                    [&](const char* what) { seen = what; });
  CHECK(seen == "route table corrupt");
}

TEST_CASE("guarded also stops exceptions that are not std::exception") {
  std::string seen;
  gw::core::guarded([] { throw 42; }, [&](const char* what) { seen = what; });
  CHECK(seen == "unknown exception");
}
