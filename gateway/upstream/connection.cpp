#include "gateway/upstream/connection.h"

#include <sys/socket.h>

#include <cerrno>

#include "gateway/upstream/cluster.h"

namespace gw::upstream {

namespace {
// Read whenever this much room is free; a standard block then takes a whole read.
constexpr std::size_t kMinRead = 4 * 1024;
}

Connection::Connection(Cluster& cluster, Backend& backend, net::Fd fd, event_base* base,
                       const http::HeadLimits& limits, core::BlockRecycler& blocks)
    : cluster_(cluster),
      backend_(backend),
      fd_(std::move(fd)),
      readEvent_(event_new(base, fd_.get(), EV_READ | EV_PERSIST, &Connection::onReadable, this)),
      writeEvent_(event_new(base, fd_.get(), EV_WRITE | EV_PERSIST, &Connection::onWritable, this)),
      in_(&blocks, core::IoBuffer::kUpstreamBlockSize),
      parser_(HTTP_RESPONSE, nullptr, limits),
      limits_(limits) {}

Connection::~Connection() { close(); }

void Connection::startConnect() {
  connecting_ = true;
  writeArmed_ = true;
  event_add(writeEvent_.get(), timeouts_->connect);
}

void Connection::lease(Listener& listener, http::Parser::Handler& handler,
                       const Timeouts& timeouts) {
  listener_ = &listener;
  timeouts_ = &timeouts;
  parser_.setHandler(&handler);
}

void Connection::park() {
  listener_ = nullptr;
  parser_.setHandler(nullptr);
  in_.releaseIfEmpty();
  out_.shrink();
  // Readable while idle means the backend closed it or sent garbage: either way it is dropped.
  event_add(readEvent_.get(), cluster_.idleTimeout());
}

void Connection::close() {
  if (!fd_.valid()) return;
  event_del(readEvent_.get());
  event_del(writeEvent_.get());
  fd_.reset();
  listener_ = nullptr;
  out_.clear();
}

core::OutQueue::WriteStatus Connection::flush() {
  auto status = out_.flush(fd_.get());
  if (status == core::OutQueue::WriteStatus::Blocked && !writeArmed_) {
    writeArmed_ = true;
    event_add(writeEvent_.get(), timeouts_->send);
  } else if (status != core::OutQueue::WriteStatus::Blocked && writeArmed_ && !connecting_) {
    writeArmed_ = false;
    event_del(writeEvent_.get());
  }
  return status;
}

void Connection::watchReads(const timeval* timeout) {
  event_add(readEvent_.get(), timeout);
  if (!timeout) event_remove_timer(readEvent_.get());
}

void Connection::pauseReads() { event_del(readEvent_.get()); }

void Connection::resumeReads() { event_add(readEvent_.get(), timeouts_->read); }

void Connection::onReadable(evutil_socket_t, short what, void* arg) {
  static_cast<Connection*>(arg)->handleRead(what);
}

void Connection::onWritable(evutil_socket_t, short what, void* arg) {
  static_cast<Connection*>(arg)->handleWrite(what);
}

void Connection::handleRead(short what) {
  if (listener_ == nullptr) {  // idle in the pool: expired, closed by the backend, or garbage
    cluster_.dropIdle(*this);
    return;
  }
  if (what & EV_TIMEOUT) {
    fail(Failure::ReadTimeout);
    return;
  }
  if (!in_.reserve(kMinRead, limits_.headerBytes + core::IoBuffer::kUpstreamBlockSize)) {
    fail(Failure::Protocol);
    return;
  }
  ssize_t n = ::recv(fd_.get(), in_.writePtr(), in_.writable(), 0);
  if (n > 0) {
    in_.commit(static_cast<std::size_t>(n));
    listener_->onUpstreamRead();
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  fail(n == 0 ? Failure::Closed : Failure::Reset);
}

void Connection::handleWrite(short what) {
  if (listener_ == nullptr) return;
  if (connecting_) {
    if (what & EV_TIMEOUT) {
      fail(Failure::ConnectTimeout);
      return;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail(Failure::ConnectRefused);
      return;
    }
    connecting_ = false;
    writeArmed_ = false;
    event_del(writeEvent_.get());
    listener_->onUpstreamConnected();
    return;
  }
  if (what & EV_TIMEOUT) {
    fail(Failure::SendTimeout);
    return;
  }
  auto status = flush();
  if (status == core::OutQueue::WriteStatus::Failed) {
    fail(Failure::Reset);
  } else if (status == core::OutQueue::WriteStatus::Drained) {
    listener_->onUpstreamDrained();
  }
}

void Connection::fail(Failure failure) {
  Listener* listener = listener_;
  if (listener) listener->onUpstreamFailure(failure);
}

}  // namespace gw::upstream
