#include "gateway/core/slot.h"

#include <doctest.h>

#include <string>

namespace gw::core {
namespace {

struct Counted {
  explicit Counted(int& alive, std::string text) : alive_(alive), text(std::move(text)) {
    ++alive_;
  }
  ~Counted() { --alive_; }
  int& alive_;
  std::string text;
};

TEST_CASE("slot: objects are built in the same room until it is released to the pool") {
  SlotPool<Counted> pool(4);
  int alive = 0;
  Slot<Counted> slot(pool);
  CHECK_FALSE(slot);
  CHECK_FALSE(slot.holdsRoom());

  Counted& first = slot.emplace(alive, "one");
  CHECK(slot);
  CHECK(alive == 1);
  CHECK(slot->text == "one");
  void* room = &first;

  slot.reset();
  CHECK_FALSE(slot);
  CHECK(alive == 0);
  CHECK(slot.holdsRoom());  // kept: a method of the ended object may still be returning

  Counted& second = slot.emplace(alive, "two");
  CHECK(static_cast<void*>(&second) == room);
  CHECK((*slot).text == "two");

  slot.release();  // refused while an object lives there
  CHECK(slot.holdsRoom());
  slot.reset();
  slot.release();
  CHECK_FALSE(slot.holdsRoom());
  CHECK(pool.cached() == 1);

  Slot<Counted> other(pool);
  CHECK(static_cast<void*>(&other.emplace(alive, "three")) == room);  // the pool's room, reused
  CHECK(pool.cached() == 0);
}

TEST_CASE("slot: the destructor ends the object and returns the room; a full pool frees it") {
  SlotPool<Counted> pool(1);
  int alive = 0;
  {
    Slot<Counted> a(pool);
    Slot<Counted> b(pool);
    a.emplace(alive, "a");
    b.emplace(alive, "b");
    CHECK(alive == 2);
  }
  CHECK(alive == 0);
  CHECK(pool.cached() == 1);  // one kept, the other freed (ASan would report a leak otherwise)
}

}  // namespace
}  // namespace gw::core
