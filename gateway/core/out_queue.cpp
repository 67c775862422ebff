#include "gateway/core/out_queue.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

namespace gw::core {

namespace {
constexpr std::size_t kMaxIov = 64;
}

void OutQueue::append(std::string_view bytes) {
  if (bytes.empty()) return;
  std::memcpy(appendRaw(bytes.size()), bytes.data(), bytes.size());
}

void OutQueue::takeBuffers() {
  Buffers buffers = pool_->take();
  segments_ = std::move(buffers.segments);
  owned_ = std::move(buffers.owned);
}

void OutQueue::reserve(std::size_t n) {
  if (pool_ && segments_.capacity() == 0) takeBuffers();
  owned_.reserve(owned_.size() + n);
}

char* OutQueue::appendRaw(std::size_t n) {
  if (pool_ && segments_.capacity() == 0) takeBuffers();
  std::size_t offset = owned_.size();
  owned_.resize(offset + n);
  pending_ += n;
  queuedTotal_ += n;
  if (segments_.size() > first_) {
    Segment& last = segments_.back();
    if (last.data == nullptr && last.offset + last.length == offset) {
      last.length += static_cast<uint32_t>(n);
      return owned_.data() + offset;
    }
  }
  segments_.push_back({nullptr, static_cast<uint32_t>(offset), static_cast<uint32_t>(n)});
  return owned_.data() + offset;
}

void OutQueue::borrow(const char* data, std::size_t n) {
  if (n == 0) return;
  if (pool_ && segments_.capacity() == 0) takeBuffers();
  segments_.push_back({data, 0, static_cast<uint32_t>(n)});
  pending_ += n;
  queuedTotal_ += n;
}

template <typename Write>
OutQueue::WriteStatus OutQueue::flushWith(Write write) {
  while (pending_ > 0) {
    iovec iov[kMaxIov];
    std::size_t count = 0;
    for (std::size_t i = first_; i < segments_.size() && count < kMaxIov; ++i, ++count) {
      const Segment& s = segments_[i];
      iov[count].iov_base = const_cast<char*>(s.data ? s.data : owned_.data() + s.offset);
      iov[count].iov_len = s.length;
    }
    const ssize_t written = write(iov, count);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return WriteStatus::Blocked;
      return WriteStatus::Failed;
    }
    advance(static_cast<std::size_t>(written));
    if (count == kMaxIov) continue;                 // more segments than one call could carry
    if (pending_ > 0) return WriteStatus::Blocked;  // short write: the socket buffer is full
  }
  return WriteStatus::Drained;
}

OutQueue::WriteStatus OutQueue::flush(int fd) {
  return flushWith([fd](iovec* iov, std::size_t count) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  });
}

OutQueue::WriteStatus OutQueue::flush(Sink& sink) {
  return flushWith([&](iovec* iov, std::size_t count) {
    const ssize_t written = sink.writev(iov, static_cast<int>(count));
    committed_ = sink.committed();
    return written;
  });
}

void OutQueue::advance(std::size_t written) {
  pending_ -= written;
  while (written > 0) {
    Segment& s = segments_[first_];
    if (written < s.length) {
      if (s.data) {
        s.data += written;
      } else {
        s.offset += static_cast<uint32_t>(written);
      }
      s.length -= static_cast<uint32_t>(written);
      return;
    }
    written -= s.length;
    ++first_;
  }
  if (pending_ == 0) {
    segments_.clear();
    owned_.clear();
    first_ = 0;
  }
}

void OutQueue::retainBorrowed() {
  bool anyBorrowed = false;
  for (std::size_t i = first_; i < segments_.size(); ++i)
    anyBorrowed |= segments_[i].data != nullptr;
  if (!anyBorrowed) return;
  // Rebuild as a single owned segment, preserving order. The spare string keeps its capacity,
  // so a slow client costs copies but no allocation per round.
  spare_.clear();
  spare_.reserve(pending_);
  for (std::size_t i = first_; i < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    spare_.append(s.data ? s.data : owned_.data() + s.offset, s.length);
  }
  owned_.swap(spare_);
  segments_.clear();
  first_ = 0;
  segments_.push_back({nullptr, 0, static_cast<uint32_t>(owned_.size())});
}

void OutQueue::clear() {
  segments_.clear();
  owned_.clear();
  first_ = 0;
  pending_ = 0;
  committed_ = 0;
}

void OutQueue::discardFront(std::size_t n) {
  if (n > pending_) throw std::logic_error("OutQueue::discardFront: more than is pending");
  if (n > 0) advance(n);
}

void OutQueue::appendFrom(OutQueue& other) {
  for (std::size_t i = other.first_; i < other.segments_.size(); ++i) {
    const Segment& s = other.segments_[i];
    if (s.data) {
      borrow(s.data, s.length);
    } else {
      append({other.owned_.data() + s.offset, s.length});
    }
  }
  other.clear();
}

void OutQueue::truncate(uint64_t mark) {
  if (mark < sentTotal() || mark > queuedTotal_) {
    throw std::logic_error("OutQueue::truncate: the mark is already on the wire or not queued");
  }
  std::size_t drop = static_cast<std::size_t>(queuedTotal_ - mark);
  pending_ -= drop;
  queuedTotal_ = mark;
  while (drop > 0) {
    Segment& last = segments_.back();
    const std::size_t cut = std::min<std::size_t>(drop, last.length);
    last.length -= static_cast<uint32_t>(cut);
    drop -= cut;
    if (last.data == nullptr && last.offset + last.length + cut == owned_.size()) {
      owned_.resize(last.offset + last.length);
    }
    if (last.length == 0) segments_.pop_back();
  }
  if (pending_ == 0) clear();
}

void OutQueue::shrink() {
  if (pending_ != 0) return;
  first_ = 0;
  segments_.clear();
  owned_.clear();
  std::string().swap(spare_);
  const bool small = segments_.capacity() <= kKeptSegments && owned_.capacity() <= kKeptBytes;
  if (pool_ && small && segments_.capacity() > 0) {
    pool_->give({std::move(segments_), std::move(owned_)});
  }
  if (pool_ || !small) {
    std::vector<Segment>().swap(segments_);
    std::string().swap(owned_);
  }
}

}  // namespace gw::core
