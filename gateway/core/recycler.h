#pragma once
// A per-worker stash of reusable objects (input buffers, field lists, head strings), so a
// keep-alive request costs no malloc/free while an idle connection still holds none of them.
// Owned by one worker thread; never shared.

#include <cstddef>
#include <utility>
#include <vector>

namespace gw::core {

template <typename T>
class Recycler {
 public:
  explicit Recycler(std::size_t maxCached) : maxCached_(maxCached) {}

  // A recycled object, or a default-constructed one when the stash is empty.
  T take() {
    if (stash_.empty()) return T{};
    T object = std::move(stash_.back());
    stash_.pop_back();
    return object;
  }

  void give(T&& object) {
    if (stash_.size() < maxCached_) stash_.push_back(std::move(object));
  }

 private:
  std::size_t maxCached_;
  std::vector<T> stash_;
};

}  // namespace gw::core
