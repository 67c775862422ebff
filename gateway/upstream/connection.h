#pragma once
// One TCP connection to a backend, plain or TLS (an upstream with `tls:`; the handshake is part
// of connecting, and every byte after it goes through the net::TlsStream). It lives in its
// cluster's idle pool or is leased to one exchange (the Listener) at a time. The response parser
// lives here because llhttp's state belongs to the connection: every read is parsed at once into
// the lessee's handler. What goes wrong is reported as a core::Error that says whether sending the
// request again is safe.

#include <event2/event.h>

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/config/model.h"
#include "gateway/core/error.h"
#include "gateway/core/graveyard.h"
#include "gateway/core/io_buffer.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/core/out_queue.h"
#include "gateway/http/parser.h"
#include "gateway/net/socket.h"
#include "gateway/net/tls_stream.h"

namespace gw::upstream {

struct Backend;
class Cluster;

// Effective timeouts of one route toward its upstream, as loop-ready timevals.
struct Timeouts {
  const timeval* connect;
  const timeval* read;
  const timeval* send;
};

class Connection final : public core::Retirable {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void onUpstreamConnected() = 0;
    // The queued request bytes went out; the lessee may resume reading its client.
    virtual void onUpstreamDrained() = 0;
    // A read was parsed (parser callbacks already ran); time to flush toward the client.
    virtual void onUpstreamRead() = 0;
    // The backend closed the connection in order. That ends a close-delimited body
    // (endsResponseAtClose()); anything else it cut short (closedError()).
    virtual void onUpstreamClosed() = 0;
    // Connect failure or timeout, read/send timeout, socket error, unparseable response.
    virtual void onUpstreamFailure(const core::Error& error) = 0;
    // An exception escaped the response handler while a read was parsed (a programmer error).
    virtual void onUpstreamBug(const char* what) = 0;
  };

  // `tls`: the upstream's TLS client side, or null for plain HTTP.
  Connection(Cluster& cluster, Backend& backend, net::Fd fd, event_base* base,
             const http::HeadLimits& limits, core::BlockRecycler& blocks,
             const std::shared_ptr<const net::TlsClientContext>& tls);
  ~Connection() override;

  void lease(Listener& listener, http::Parser::Handler& handler, const Timeouts& timeouts);
  // Watches a freshly connecting socket for completion, then runs the TLS handshake if any, all
  // within the connect timeout. After lease.
  void startConnect();
  // Back to idle: stop read timeouts, watch for the backend closing.
  void park();
  void close();

  // Sends what is queued; arms EV_WRITE (with the send timeout) only when the socket is full.
  core::OutQueue::WriteStatus flush();
  // Watches for response bytes; with a timeout once the whole request is out (read timeout).
  void watchReads(const timeval* timeout);
  // Backpressure from a slow client.
  void pauseReads();
  void resumeReads();

  core::OutQueue& output() { return out_; }
  core::IoBuffer& input() { return in_; }
  http::Parser& parser() { return parser_; }
  Backend& backend() { return backend_; }
  // After onUpstreamClosed(): whether the close completed the response whose final head was
  // parsed (`finalHeadParsed`), its body being delimited by the close (RFC 9112 §6.3).
  bool endsResponseAtClose(bool finalHeadParsed);
  // The error a close that did not end the response stands for.
  core::Error closedError() const;
  // Why the last response was refused by llhttp or by the lessee's handler, for the log.
  std::string refusal() const;
  bool reused() const { return reused_; }
  // A byte of the response arrived since the connection was leased.
  bool receivedAny() const { return received_; }
  bool closed() const { return !fd_.valid(); }
  bool connecting() const { return connecting_; }
  // Nothing unread, no half-parsed message: safe to hand to the next exchange.
  bool clean() const { return in_.readable() == 0 && !(tls_ && tls_->hasBufferedInput()); }
  void markReused() { reused_ = true; }

 private:
  static void onReadable(evutil_socket_t fd, short what, void* arg);
  static void onWritable(evutil_socket_t fd, short what, void* arg);
  void handleRead(short what);
  void handleWrite(short what);
  void fail(core::Error error);
  // TLS: the handshake's next step, waiting for the socket event it needs within the connect
  // deadline; on success the connection is connected.
  void continueHandshake();
  void connected();
  // TLS: decrypted bytes wait inside OpenSSL, which the socket will not announce.
  void readAgainIfBuffered();
  // A reused connection on which nothing came back: the backend may not have read the request.
  core::Retry retryAfterLoss() const {
    return reused_ && !received_ ? core::Retry::IfIdempotent : core::Retry::Never;
  }

  Cluster& cluster_;
  Backend& backend_;
  net::Fd fd_;
  core::EventPtr readEvent_;
  core::EventPtr writeEvent_;
  core::IoBuffer in_;
  core::OutQueue out_;
  http::Parser parser_;
  const http::HeadLimits& limits_;
  Listener* listener_ = nullptr;
  const Timeouts* timeouts_ = nullptr;
  std::unique_ptr<net::TlsStream> tls_;
  int64_t connectDeadlineUs_ = 0;  // TLS: connect and handshake end by then (monotonic)
  bool connecting_ = false;
  bool handshaking_ = false;
  bool readsPaused_ = false;
  bool writeArmed_ = false;
  bool reused_ = false;
  bool received_ = false;  // a byte arrived since the connection was leased
  llhttp_errno_t parseError_ = HPE_OK;
};

}  // namespace gw::upstream
