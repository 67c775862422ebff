#include "gateway/upstream/connection.h"

#include <sys/socket.h>

#include <cerrno>

#include "gateway/core/clock.h"
#include "gateway/core/guard.h"
#include "gateway/upstream/cluster.h"

namespace gw::upstream {

namespace {
// Read whenever this much room is free; a standard block then takes a whole read.
constexpr std::size_t kMinRead = 4 * 1024;
// The microseconds of a core::TimeoutCache timeval: libevent marks a common timeout in the bits
// of tv_usec above these.
constexpr suseconds_t kCommonTimeoutMicroseconds = 0xfffff;

using core::Error;
using core::ErrorCode;

Error timedOut() { return Error::upstream(ErrorCode::UpstreamTimeout, "upstream timed out"); }
Error connectTimedOut() {
  return Error::upstream(ErrorCode::UpstreamConnectTimeout, "upstream connect timed out",
                         core::Retry::Safe);
}
Error invalidResponse() {
  return Error::upstream(ErrorCode::UpstreamProtocol, "invalid response from upstream");
}
}  // namespace

Connection::Connection(Cluster& cluster, Backend& backend, net::Fd fd, event_base* base,
                       const http::HeadLimits& limits, core::BlockRecycler& blocks,
                       const std::shared_ptr<const net::TlsClientContext>& tls)
    : cluster_(cluster),
      backend_(backend),
      fd_(std::move(fd)),
      readEvent_(event_new(base, fd_.get(), EV_READ | EV_PERSIST, &Connection::onReadable, this)),
      writeEvent_(event_new(base, fd_.get(), EV_WRITE | EV_PERSIST, &Connection::onWritable, this)),
      in_(&blocks, core::IoBuffer::kUpstreamBlockSize),
      parser_(HTTP_RESPONSE, nullptr, limits),
      limits_(limits),
      tls_(tls ? std::make_unique<net::TlsStream>(tls, fd_.get(), backend.config->host,
                                                  backend.tlsSession)
               : nullptr) {}

Connection::~Connection() { close(); }

void Connection::startConnect() {
  connecting_ = true;
  writeArmed_ = true;
  event_add(writeEvent_.get(), timeouts_->connect);
  if (tls_) {
    const timeval& limit = *timeouts_->connect;
    connectDeadlineUs_ = core::monotonicUs() + int64_t(limit.tv_sec) * 1'000'000 +
                         (limit.tv_usec & kCommonTimeoutMicroseconds);
  }
}

void Connection::continueHandshake() {
  event* awaited = nullptr;
  switch (tls_->handshake()) {
    case net::TlsStream::Progress::Done:
      handshaking_ = false;
      event_del(readEvent_.get());
      connected();
      return;
    case net::TlsStream::Progress::WantRead:
      writeArmed_ = false;
      event_del(writeEvent_.get());
      awaited = readEvent_.get();
      break;
    case net::TlsStream::Progress::WantWrite:
      event_del(readEvent_.get());
      writeArmed_ = true;
      awaited = writeEvent_.get();
      break;
    case net::TlsStream::Progress::Failed:
      fail(Error::upstream(ErrorCode::UpstreamTlsError, tls_->failureMessage(), core::Retry::Safe));
      return;
  }
  // One deadline for connect and handshake, however slowly the backend's bytes trickle in.
  const int64_t left = std::max<int64_t>(connectDeadlineUs_ - core::monotonicUs(), 1);
  const timeval wait{static_cast<time_t>(left / 1'000'000),
                     static_cast<suseconds_t>(left % 1'000'000)};
  event_add(awaited, &wait);
}

void Connection::connected() {
  connecting_ = false;
  writeArmed_ = false;
  event_del(writeEvent_.get());
  listener_->onUpstreamConnected();
}

void Connection::readAgainIfBuffered() {
  if (tls_ && fd_.valid() && !readsPaused_ && listener_ && tls_->hasBufferedInput()) {
    event_active(readEvent_.get(), EV_READ, 0);
  }
}

void Connection::lease(Listener& listener, http::Parser::Handler& handler,
                       const Timeouts& timeouts) {
  listener_ = &listener;
  timeouts_ = &timeouts;
  received_ = false;
  parseError_ = HPE_OK;
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
  if (tls_) {
    // close_notify: OpenSSL will not resume a session whose connection ended without one.
    tls_->shutdown();
    tls_.reset();
  }
  fd_.reset();
  listener_ = nullptr;
  out_.clear();
}

core::OutQueue::WriteStatus Connection::flush() {
  auto status = tls_ ? out_.flush(*tls_) : out_.flush(fd_.get());
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
  readsPaused_ = false;
  event_add(readEvent_.get(), timeout);
  if (!timeout) event_remove_timer(readEvent_.get());
  readAgainIfBuffered();
}

void Connection::pauseReads() {
  readsPaused_ = true;
  event_del(readEvent_.get());
}

void Connection::resumeReads() {
  readsPaused_ = false;
  event_add(readEvent_.get(), timeouts_->read);
  readAgainIfBuffered();
}

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
  if (handshaking_) {
    if (what & EV_TIMEOUT) {
      fail(connectTimedOut());
    } else {
      continueHandshake();
    }
    return;
  }
  if (what & EV_TIMEOUT) {
    fail(timedOut());
    return;
  }
  if (!in_.reserve(kMinRead, limits_.headerBytes + core::IoBuffer::kUpstreamBlockSize)) {
    fail(invalidResponse());
    return;
  }
  ssize_t n = tls_ ? tls_->read(in_.writePtr(), in_.writable())
                   : ::recv(fd_.get(), in_.writePtr(), in_.writable(), 0);
  if (n > 0) {
    in_.commit(static_cast<std::size_t>(n));
    received_ = true;
    http::Parser::Outcome outcome{};
    bool threw = false;
    // The handler is the lessee's code, called from inside the parser: nothing may escape into
    // libevent's C frames.
    core::guarded([&] { outcome = parser_.execute(in_.base(), in_.readPtr(), in_.readable()); },
                  [&](const char* why) {
                    threw = true;
                    listener_->onUpstreamBug(why);
                  });
    if (threw) return;
    in_.consume(outcome.consumed);
    if (outcome.error != HPE_OK && outcome.error != HPE_PAUSED) {
      parseError_ = outcome.error;
      fail(invalidResponse());
      return;
    }
    listener_->onUpstreamRead();
    readAgainIfBuffered();
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    // OpenSSL must send before it reads on (a TLS 1.3 KeyUpdate answer): retried when writable.
    if (tls_ && tls_->readWantsWrite() && !writeArmed_) {
      writeArmed_ = true;
      event_add(writeEvent_.get(), timeouts_->send);
    }
    return;
  }
  if (n == 0) {
    listener_->onUpstreamClosed();
    return;
  }
  fail(closedError());
}

bool Connection::endsResponseAtClose(bool finalHeadParsed) {
  if (!finalHeadParsed || !parser_.bodyUntilEof()) return false;
  const llhttp_errno_t finished = parser_.finish();  // completes the message in the handler
  return finished == HPE_OK || finished == HPE_PAUSED;
}

std::string Connection::refusal() const {
  if (parseError_ == HPE_OK) return "response head over the input buffer";
  return http::describeRefusal(parser_, parseError_).message;
}

Error Connection::closedError() const {
  return Error::upstream(ErrorCode::UpstreamReset,
                         "upstream closed the connection before the response was complete",
                         retryAfterLoss());
}

void Connection::handleWrite(short what) {
  if (listener_ == nullptr) return;
  if (connecting_) {
    if (what & EV_TIMEOUT) {
      fail(connectTimedOut());
      return;
    }
    if (handshaking_) {
      continueHandshake();
      return;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail(Error::upstream(ErrorCode::UpstreamConnectFailed, "no backend could be reached",
                           core::Retry::Safe));
      return;
    }
    if (tls_) {
      handshaking_ = true;
      continueHandshake();
      return;
    }
    connected();
    return;
  }
  if (what & EV_TIMEOUT) {
    fail(timedOut());
    return;
  }
  if (tls_ && tls_->readWantsWrite()) {
    handleRead(EV_READ);  // OpenSSL's own bytes can go out now: the read it stopped goes on
    if (listener_ == nullptr || closed()) return;
  }
  auto status = flush();
  if (status == core::OutQueue::WriteStatus::Failed) {
    fail(closedError());
  } else if (status == core::OutQueue::WriteStatus::Drained) {
    listener_->onUpstreamDrained();
  }
}

void Connection::fail(Error error) {
  Listener* listener = listener_;
  if (listener) listener->onUpstreamFailure(error);
}

}  // namespace gw::upstream
