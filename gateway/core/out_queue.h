#pragma once
// Bytes waiting to be written to one socket. Owned bytes (heads we build) are copied in; borrowed
// bytes (body spans still sitting in the other side's input buffer) are referenced, so the common
// case writes straight from where the bytes already are with one sendmsg. Whatever a write leaves
// behind must be retained (copied) before the lender reuses its buffer: that copy only happens
// when the peer is slow, and its size is what backpressure watches.

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/recycler.h"

namespace gw::core {

class OutQueue {
 public:
  enum class WriteStatus : uint8_t { Drained, Blocked, Failed };

  struct Segment {
    const char* data;  // borrowed bytes, or nullptr for owned
    uint32_t offset;   // into the owned bytes when data == nullptr
    uint32_t length;
  };
  // The memory of an idle queue, which a worker keeps for the next busy one.
  struct Buffers {
    std::vector<Segment> segments;
    std::string owned;
  };
  using BufferPool = Recycler<Buffers>;
  // Where flush(Sink&) writes instead of a socket: an encrypting stream (net/tls_stream.h).
  class Sink {
   public:
    virtual ~Sink() = default;
    // As writev(2) on a non-blocking socket: bytes taken from the front of iov, or -1 with
    // errno set (EAGAIN: nothing can be taken now).
    virtual ssize_t writev(const iovec* iov, int count) = 0;
    // Bytes at the front that the sink has begun to send but not finished: they must be offered
    // again, unchanged, by the next call, and may no longer be taken back (they count as sent).
    virtual std::size_t committed() const = 0;
  };

  // With a pool, an idle queue (shrink()) gives its buffers to it and holds none; without one,
  // it keeps buffers a typical exchange fills. Either way a keep-alive exchange allocates nothing.
  explicit OutQueue(BufferPool* pool = nullptr) : pool_(pool) {}

  void append(std::string_view bytes);
  // Reserves n owned bytes at the tail and returns where to write them.
  char* appendRaw(std::size_t n);
  // Room for n more owned bytes, so that appending a head in pieces allocates once.
  void reserve(std::size_t n);
  // References bytes owned by someone else; valid until retainBorrowed().
  void borrow(const char* data, std::size_t n);

  std::size_t pending() const { return pending_; }
  // Every byte ever queued (sent, pending or dropped): the difference between two readings is
  // what one response put on the wire.
  uint64_t queuedTotal() const { return queuedTotal_; }
  bool empty() const { return pending_ == 0; }
  // Every byte ever handed to the socket (or committed to a sink): a mark taken from
  // queuedTotal() is on the wire once this passes it.
  uint64_t sentTotal() const { return queuedTotal_ - pending_ + committed_; }

  // Writes as much as the socket takes. Failed leaves errno set.
  WriteStatus flush(int fd);
  // The same through a sink.
  WriteStatus flush(Sink& sink);
  // Copies unsent borrowed bytes into owned storage.
  void retainBorrowed();
  // Drops everything queued (connection is being closed or the exchange abandoned).
  void clear();
  // Drops the first n pending bytes unsent (n <= pending()).
  void discardFront(std::size_t n);
  // Moves every pending byte of `other` behind ours (owned bytes copied, borrowed ones still
  // borrowed from their lender); `other` is left empty.
  void appendFrom(OutQueue& other);
  // Takes back what was queued after `mark` (an earlier queuedTotal()), which must not have
  // reached the socket yet (mark >= sentTotal()): a response head that turned out unusable is
  // withdrawn before the client saw a byte of it.
  void truncate(uint64_t mark);
  // Gives memory back when idle: to the pool, or (without one) all but what a typical exchange
  // needs (kKeptBytes of owned bytes, kKeptSegments segments). Larger buffers are freed.
  void shrink();
  static constexpr std::size_t kKeptBytes = 4096;
  static constexpr std::size_t kKeptSegments = 8;
  // The heap memory the queue holds on to (its buffers' capacity; a string's inline room is not).
  std::size_t retainedBytes() const {
    const auto heap = [](const std::string& s) {
      return s.capacity() > std::string().capacity() ? s.capacity() : 0;
    };
    return heap(owned_) + heap(spare_) + segments_.capacity() * sizeof(Segment);
  }

 private:
  template <typename Write>
  WriteStatus flushWith(Write write);
  void advance(std::size_t written);
  // Before the first append of a busy period: the pool's buffers, if it has any.
  void takeBuffers();

  std::vector<Segment> segments_;
  std::size_t first_ = 0;  // index of the first unsent segment
  std::string owned_;
  std::string spare_;  // the other half of retainBorrowed()'s double buffer
  std::size_t pending_ = 0;
  std::size_t committed_ = 0;  // of pending_: what a Sink has begun to send (Sink::committed)
  uint64_t queuedTotal_ = 0;
  BufferPool* pool_;
};

}  // namespace gw::core
