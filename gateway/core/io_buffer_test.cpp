#include "gateway/core/io_buffer.h"

#include <doctest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace gw::core {
namespace {

void put(IoBuffer& buffer, std::string_view bytes) {
  std::memcpy(buffer.writePtr(), bytes.data(), bytes.size());
  buffer.commit(bytes.size());
}

std::string_view unread(const IoBuffer& buffer) { return {buffer.readPtr(), buffer.readable()}; }

// Takes one block out of the recycler, if it holds any.
bool hasBlock(BlockRecycler& blocks) { return blocks.take() != nullptr; }

constexpr std::size_t kNoLimit = 1024 * 1024;

TEST_CASE("a fresh IoBuffer holds no storage") {
  IoBuffer buffer;
  CHECK_FALSE(buffer.allocated());
  CHECK(buffer.capacity() == 0);
  CHECK(buffer.readable() == 0);
  CHECK(buffer.writable() == 0);
}

TEST_CASE("reserve, commit and consume move the cursors") {
  IoBuffer buffer;
  REQUIRE(buffer.reserve(10, kNoLimit));
  CHECK(buffer.allocated());
  CHECK(buffer.capacity() ==
        IoBuffer::kClientBlockSize);  // the first reserve takes a standard block
  CHECK(buffer.writable() == IoBuffer::kClientBlockSize);
  put(buffer, "hello world");
  CHECK(buffer.readable() == 11);
  CHECK(buffer.writable() == IoBuffer::kClientBlockSize - 11);
  CHECK(unread(buffer) == "hello world");
  buffer.consume(6);
  CHECK(buffer.readOffset() == 6);
  CHECK(unread(buffer) == "world");
  CHECK(buffer.readPtr() == buffer.base() + 6);
  // Enough room already: reserve does not move anything.
  const char* before = buffer.base();
  CHECK(buffer.reserve(100, kNoLimit));
  CHECK(buffer.base() == before);
}

TEST_CASE("growing keeps every byte at its offset, consumed ones included") {
  IoBuffer buffer;
  REQUIRE(buffer.reserve(IoBuffer::kClientBlockSize, kNoLimit));
  std::string first(IoBuffer::kClientBlockSize - 4, 'a');
  first.replace(0, 5, "START");
  put(buffer, first);
  buffer.consume(3);
  const char* oldBase = buffer.base();

  REQUIRE(buffer.reserve(100, kNoLimit));
  CHECK(buffer.base() != oldBase);
  CHECK(buffer.capacity() == 2 * IoBuffer::kClientBlockSize);  // doubled
  CHECK(buffer.readOffset() == 3);                             // not compacted
  CHECK(std::string_view(buffer.base(), 5) == "START");
  CHECK(buffer.readable() == first.size() - 3);
  CHECK(buffer.writable() == IoBuffer::kClientBlockSize + 4);
  put(buffer, "END");
  CHECK(std::string_view(buffer.base() + first.size(), 3) == "END");
  CHECK(unread(buffer).substr(0, 2) == "RT");
}

TEST_CASE("reserve grows to the larger of what is needed and double the capacity") {
  IoBuffer buffer;
  REQUIRE(buffer.reserve(100000, kNoLimit));
  CHECK(buffer.capacity() == 100000);
  put(buffer, std::string(99990, 'x'));
  REQUIRE(buffer.reserve(20, kNoLimit));
  CHECK(buffer.capacity() == 200000);
}

TEST_CASE("reserve refuses to pass maxCapacity and leaves the buffer as it was") {
  IoBuffer buffer;
  CHECK_FALSE(buffer.reserve(101, 100));
  CHECK_FALSE(buffer.allocated());

  // Below a standard block, maxCapacity caps the allocation itself.
  REQUIRE(buffer.reserve(10, 100));
  CHECK(buffer.capacity() == 100);
  put(buffer, std::string(90, 'y'));
  buffer.consume(90);  // consumed bytes still count: only compact() reclaims them
  const char* base = buffer.base();
  CHECK_FALSE(buffer.reserve(11, 100));
  CHECK(buffer.base() == base);
  CHECK(buffer.capacity() == 100);
  CHECK(buffer.readOffset() == 90);
  CHECK(buffer.reserve(10, 100));

  // Growing is capped at maxCapacity too, even when doubling would go further.
  CHECK(buffer.reserve(50, 150));
  CHECK(buffer.capacity() == 150);
}

TEST_CASE("compactKeeping moves consumed bytes still referenced along with the unread ones") {
  IoBuffer buffer;
  REQUIRE(buffer.reserve(64, kNoLimit));
  put(buffer, "oldHEAD-partial");
  buffer.consume(8);  // "oldHEAD-" parsed; the head began at offset 3
  CHECK(buffer.compactKeeping(3) == 3);
  CHECK(std::string_view(buffer.base(), 12) == "HEAD-partial");
  CHECK(buffer.readOffset() == 5);
  CHECK(unread(buffer) == "partial");
  CHECK(buffer.compactKeeping(0) == 0);
  CHECK_THROWS_AS(buffer.compactKeeping(6), std::logic_error);
}

TEST_CASE("compact moves unread bytes to the front") {
  IoBuffer buffer;
  REQUIRE(buffer.reserve(64, kNoLimit));
  put(buffer, "0123456789");
  buffer.consume(4);
  buffer.compact();
  CHECK(buffer.readOffset() == 0);
  CHECK(unread(buffer) == "456789");
  CHECK(buffer.writable() == buffer.capacity() - 6);

  // Nothing read yet: compact is a no-op.
  buffer.compact();
  CHECK(unread(buffer) == "456789");

  // Everything read: both cursors return to the start.
  buffer.consume(6);
  buffer.compact();
  CHECK(buffer.readOffset() == 0);
  CHECK(buffer.readable() == 0);
  CHECK(buffer.writable() == buffer.capacity());
  CHECK(buffer.allocated());
}

TEST_CASE("releaseIfEmpty frees only a fully consumed buffer") {
  IoBuffer buffer;
  REQUIRE(buffer.reserve(1, kNoLimit));
  put(buffer, "ab");
  buffer.consume(1);
  buffer.releaseIfEmpty();
  CHECK(buffer.allocated());
  CHECK(unread(buffer) == "b");
  buffer.consume(1);
  buffer.releaseIfEmpty();
  CHECK_FALSE(buffer.allocated());
  CHECK(buffer.capacity() == 0);
  CHECK(buffer.readOffset() == 0);
  CHECK(buffer.readable() == 0);
  CHECK(buffer.writable() == 0);
  // And it comes back on demand.
  REQUIRE(buffer.reserve(1, kNoLimit));
  put(buffer, "c");
  CHECK(unread(buffer) == "c");
}

TEST_CASE("standard blocks go back to the recycler and are taken from it") {
  BlockRecycler blocks(4);
  const char* first = nullptr;
  {
    IoBuffer buffer(&blocks);
    REQUIRE(buffer.reserve(1, kNoLimit));
    first = buffer.base();
    buffer.releaseIfEmpty();  // the block goes to the recycler
    CHECK_FALSE(buffer.allocated());
    REQUIRE(buffer.reserve(1, kNoLimit));
    CHECK(buffer.base() == first);  // and comes back from it
  }                                 // destruction returns it too
  IoBuffer other(&blocks);
  REQUIRE(other.reserve(1, kNoLimit));
  CHECK(other.base() == first);
}

TEST_CASE("growing out of a standard block returns the block; other sizes are never recycled") {
  BlockRecycler blocks(4);
  IoBuffer buffer(&blocks);
  REQUIRE(buffer.reserve(1, kNoLimit));
  const char* block = buffer.base();
  put(buffer, std::string(IoBuffer::kClientBlockSize, 'z'));
  REQUIRE(buffer.reserve(1, kNoLimit));
  CHECK(buffer.capacity() == 2 * IoBuffer::kClientBlockSize);
  CHECK(std::string_view(buffer.base(), 3) == "zzz");

  IoBuffer taker(&blocks);
  REQUIRE(taker.reserve(1, kNoLimit));
  CHECK(taker.base() == block);

  // A non-standard block released must not land in the recycler (wrong size for the next user).
  buffer.consume(buffer.readable());
  buffer.releaseIfEmpty();
  CHECK_FALSE(buffer.allocated());
  CHECK_FALSE(hasBlock(blocks));

  // A small capped buffer is not a standard block either.
  {
    IoBuffer small(&blocks);
    REQUIRE(small.reserve(1, 100));
    CHECK(small.capacity() == 100);
  }
  CHECK_FALSE(hasBlock(blocks));
}

TEST_CASE("the recycler's cap bounds how many blocks it keeps") {
  BlockRecycler blocks(1);
  {
    IoBuffer a(&blocks);
    IoBuffer b(&blocks);
    REQUIRE(a.reserve(1, kNoLimit));
    REQUIRE(b.reserve(1, kNoLimit));
  }
  CHECK(hasBlock(blocks));
  CHECK_FALSE(hasBlock(blocks));
}

TEST_CASE("a buffer with its own block size recycles blocks of that size only") {
  constexpr std::size_t kBig = IoBuffer::kUpstreamBlockSize;
  BlockRecycler blocks(4);
  IoBuffer buffer(&blocks, kBig);
  CHECK(buffer.blockSize() == kBig);
  REQUIRE(buffer.reserve(1, 2 * kBig));
  CHECK(buffer.capacity() == kBig);
  const char* block = buffer.base();
  buffer.releaseIfEmpty();
  IoBuffer next(&blocks, kBig);
  REQUIRE(next.reserve(kBig, 2 * kBig));
  CHECK(next.base() == block);
  put(next, std::string(kBig, 'u'));
  CHECK(next.readable() == kBig);

  // Capped below its block size, the buffer's storage is not a standard block.
  IoBuffer capped(&blocks, kBig);
  REQUIRE(capped.reserve(1, kBig / 2));
  CHECK(capped.capacity() == kBig / 2);
  capped.releaseIfEmpty();
  CHECK_FALSE(hasBlock(blocks));
}

}  // namespace
}  // namespace gw::core
