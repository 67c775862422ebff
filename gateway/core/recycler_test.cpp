#include "gateway/core/recycler.h"

#include <doctest.h>

#include <memory>
#include <vector>

namespace gw::core {
namespace {

TEST_CASE("Recycler hands back what it was given, last in first out") {
  Recycler<std::vector<int>> recycler(4);
  std::vector<int> a;
  a.reserve(100);
  const int* aStorage = a.data();
  std::vector<int> b{1, 2, 3};
  const int* bStorage = b.data();
  recycler.give(std::move(a));
  recycler.give(std::move(b));

  std::vector<int> first = recycler.take();
  CHECK(first.data() == bStorage);
  CHECK(first == std::vector<int>{1, 2, 3});  // the recycler does not clear; callers do
  std::vector<int> second = recycler.take();
  CHECK(second.data() == aStorage);
  CHECK(second.capacity() >= 100);
}

TEST_CASE("Recycler returns a default-constructed object when empty") {
  Recycler<std::unique_ptr<int>> recycler(2);
  CHECK(recycler.take() == nullptr);
  recycler.give(std::make_unique<int>(7));
  std::unique_ptr<int> got = recycler.take();
  REQUIRE(got != nullptr);
  CHECK(*got == 7);
  CHECK(recycler.take() == nullptr);
}

TEST_CASE("Recycler keeps at most maxCached objects and drops the rest") {
  int destroyed = 0;
  struct Counted {
    explicit Counted(int* counter) : destroyed(counter) {}
    int* destroyed;
    ~Counted() { ++*destroyed; }
  };
  {
    Recycler<std::unique_ptr<Counted>> recycler(2);
    for (int i = 0; i < 5; ++i) recycler.give(std::make_unique<Counted>(&destroyed));
    CHECK(destroyed == 3);  // the three that did not fit died at once
    CHECK(recycler.take() != nullptr);
    CHECK(destroyed == 4);  // the temporary taken above
    CHECK(recycler.take() != nullptr);
    CHECK(recycler.take() == nullptr);
    CHECK(destroyed == 5);
  }
  CHECK(destroyed == 5);

  Recycler<std::unique_ptr<int>> none(0);
  none.give(std::make_unique<int>(1));
  CHECK(none.take() == nullptr);
}

}  // namespace
}  // namespace gw::core
