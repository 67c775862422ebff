#include "gateway/core/io_buffer.h"

#include <algorithm>
#include <cstring>

namespace gw::core {

namespace {
constexpr std::size_t kInitialCapacity = 16 * 1024;
}

void IoBuffer::consume(std::size_t n) { begin_ += static_cast<uint32_t>(n); }

bool IoBuffer::reserve(std::size_t n, std::size_t maxCapacity) {
  if (writable() >= n) return true;
  // Reclaim consumed space at the front only when no offsets are pinned (begin_ == 0 means the
  // caller may hold offsets into a partial message; compact() is its decision, not ours).
  std::size_t needed = end_ + n;
  if (needed > maxCapacity) return false;
  std::size_t grown = std::max<std::size_t>({kInitialCapacity, needed, std::size_t(capacity_) * 2});
  grown = std::min(grown, maxCapacity);
  auto bigger = std::make_unique_for_overwrite<char[]>(grown);
  if (end_ > 0) std::memcpy(bigger.get(), storage_.get(), end_);
  storage_ = std::move(bigger);
  capacity_ = static_cast<uint32_t>(grown);
  return true;
}

void IoBuffer::compact() {
  if (begin_ == end_) {
    begin_ = end_ = 0;
    return;
  }
  if (begin_ == 0) return;
  std::size_t n = readable();
  if (n > 0) std::memmove(storage_.get(), storage_.get() + begin_, n);
  begin_ = 0;
  end_ = static_cast<uint32_t>(n);
}

void IoBuffer::releaseIfEmpty() {
  if (readable() != 0) return;
  storage_.reset();
  capacity_ = begin_ = end_ = 0;
}

}  // namespace gw::core
