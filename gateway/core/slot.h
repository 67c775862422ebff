#pragma once
// Room for one object of type T that comes and goes (a connection's current exchange), taken
// from a per-worker SlotPool while the owner needs it and given back when the owner is idle: a
// busy connection constructs each object in place with no malloc, and an idle one holds no room.
//
// Like std::optional, reset() ends the object but keeps its room, so a method of the object
// that ended it (from inside its own callbacks) returns into storage that is still there; the
// room goes back to the pool only on release(), which the owner calls when nothing of the
// object can be on the stack. Owned by one worker thread; never shared.

#include <cstddef>
#include <new>
#include <utility>
#include <vector>

namespace gw::core {

template <typename T>
class SlotPool {
 public:
  explicit SlotPool(std::size_t maxCached) : maxCached_(maxCached) {}
  ~SlotPool() {
    for (void* room : stash_) ::operator delete(room, std::align_val_t(alignof(T)));
  }
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  void* take() {
    if (stash_.empty()) return ::operator new(sizeof(T), std::align_val_t(alignof(T)));
    void* room = stash_.back();
    stash_.pop_back();
    return room;
  }
  void give(void* room) {
    if (stash_.size() < maxCached_) {
      stash_.push_back(room);
    } else {
      ::operator delete(room, std::align_val_t(alignof(T)));
    }
  }
  std::size_t cached() const { return stash_.size(); }

 private:
  std::size_t maxCached_;
  std::vector<void*> stash_;
};

template <typename T>
class Slot {
 public:
  explicit Slot(SlotPool<T>& pool) : pool_(pool) {}
  ~Slot() {
    reset();
    release();
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  template <typename... Args>
  T& emplace(Args&&... args) {
    reset();
    if (!room_) room_ = pool_.take();
    object_ = new (room_) T(std::forward<Args>(args)...);
    return *object_;
  }
  // Ends the object (if any); its room stays until release().
  void reset() {
    // Disengaged first, as std::optional does: the destructor may ask whether it is still there.
    if (T* object = std::exchange(object_, nullptr)) object->~T();
  }
  // Gives the room back to the pool when no object lives in it.
  void release() {
    if (!object_ && room_) pool_.give(std::exchange(room_, nullptr));
  }
  bool holdsRoom() const { return room_ != nullptr; }

  explicit operator bool() const { return object_ != nullptr; }
  T* operator->() const { return object_; }
  T& operator*() const { return *object_; }

 private:
  SlotPool<T>& pool_;
  void* room_ = nullptr;
  T* object_ = nullptr;
};

}  // namespace gw::core
