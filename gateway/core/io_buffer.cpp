#include "gateway/core/io_buffer.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace gw::core {

void IoBuffer::consume(std::size_t n) { begin_ += static_cast<uint32_t>(n); }

bool IoBuffer::reserve(std::size_t n, std::size_t maxCapacity) {
  if (writable() >= n) return true;
  // Growing keeps every byte at its offset; reclaiming consumed space is compact(), which only
  // the caller may decide (it knows whether a parser still holds offsets).
  std::size_t needed = end_ + n;
  if (needed > maxCapacity) return false;
  std::size_t grown = std::max<std::size_t>({std::size_t(blockSize_), needed, std::size_t(capacity_) * 2});
  grown = std::max(std::min(grown, maxCapacity), needed);
  std::unique_ptr<char[]> bigger;
  if (grown == blockSize_ && blocks_) bigger = blocks_->take();
  if (!bigger) bigger = std::make_unique_for_overwrite<char[]>(grown);
  if (end_ > 0) std::memcpy(bigger.get(), storage_.get(), end_);
  uint32_t begin = begin_;
  uint32_t end = end_;
  release();
  storage_ = std::move(bigger);
  capacity_ = static_cast<uint32_t>(grown);
  begin_ = begin;
  end_ = end;
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

std::size_t IoBuffer::compactKeeping(std::size_t keep) {
  if (keep > begin_) throw std::logic_error("IoBuffer::compactKeeping: keeping unread bytes");
  if (keep == 0) return 0;
  std::memmove(storage_.get(), storage_.get() + keep, end_ - keep);
  begin_ -= static_cast<uint32_t>(keep);
  end_ -= static_cast<uint32_t>(keep);
  return keep;
}

void IoBuffer::releaseIfEmpty() {
  if (readable() == 0) release();
}

void IoBuffer::release() {
  if (storage_ && capacity_ == blockSize_ && blocks_) {
    blocks_->give(std::move(storage_));
  }
  storage_.reset();
  capacity_ = begin_ = end_ = 0;
}

}  // namespace gw::core
