#pragma once
// A growable byte buffer with a read cursor, used for socket input. Bytes are appended at the end
// and consumed from the front; offsets from data() stay valid until compact() or release(), which
// is what lets the HTTP parser remember header positions across reads.

#include <cstddef>
#include <cstdint>
#include <memory>

#include "gateway/core/recycler.h"

namespace gw::core {

// Storage blocks of IoBuffer's standard size, recycled per worker.
using BlockRecycler = Recycler<std::unique_ptr<char[]>>;

class IoBuffer {
 public:
  static constexpr std::size_t kClientBlockSize = 16 * 1024;
  // Upstream responses carry most of the bytes; bigger reads mean fewer syscalls per body.
  static constexpr std::size_t kUpstreamBlockSize = 64 * 1024;

  // Blocks of `blockSize` come from and go back to `blocks` (may be null).
  explicit IoBuffer(BlockRecycler* blocks = nullptr, std::size_t blockSize = kClientBlockSize)
      : blocks_(blocks), blockSize_(static_cast<uint32_t>(blockSize)) {}
  ~IoBuffer() { release(); }
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;

  // Start of storage; offsets used by parsers are relative to this.
  char* base() { return storage_.get(); }
  const char* base() const { return storage_.get(); }
  // Unconsumed bytes.
  const char* readPtr() const { return storage_.get() + begin_; }
  std::size_t readable() const { return end_ - begin_; }
  std::size_t readOffset() const { return begin_; }
  // Free space after the last byte.
  char* writePtr() { return storage_.get() + end_; }
  std::size_t writable() const { return capacity_ - end_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t blockSize() const { return blockSize_; }
  bool allocated() const { return storage_ != nullptr; }

  void commit(std::size_t n) { end_ += static_cast<uint32_t>(n); }
  void consume(std::size_t n);
  // Ensures at least `n` writable bytes, growing (and keeping offsets) up to `maxCapacity`.
  // Returns false when that would exceed maxCapacity.
  bool reserve(std::size_t n, std::size_t maxCapacity);
  // Moves unconsumed bytes to the front: invalidates offsets.
  void compact();
  // Moves the bytes from offset `keep` (at most readOffset(): a head still being parsed, whose
  // bytes were consumed but are still referenced) to the front. Offsets shift down by the
  // returned amount.
  std::size_t compactKeeping(std::size_t keep);
  // Frees the storage when nothing is left to read (idle connections hold no buffer).
  void releaseIfEmpty();

 private:
  void release();

  BlockRecycler* blocks_;
  uint32_t blockSize_;
  std::unique_ptr<char[]> storage_;
  uint32_t capacity_ = 0;
  uint32_t begin_ = 0;
  uint32_t end_ = 0;
};

}  // namespace gw::core
