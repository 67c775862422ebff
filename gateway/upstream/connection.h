#pragma once
// One TCP connection to a backend. It lives in its cluster's idle pool or is leased to one
// exchange (the Listener) at a time. The response parser lives here because llhttp's state
// belongs to the connection; the lessee installs itself as the parser's handler.

#include <event2/event.h>

#include <cstdint>
#include <memory>

#include "gateway/config/model.h"
#include "gateway/core/graveyard.h"
#include "gateway/core/io_buffer.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/core/out_queue.h"
#include "gateway/http/parser.h"
#include "gateway/net/socket.h"

namespace gw::upstream {

struct Backend;
class Cluster;

enum class Failure : uint8_t {
  ConnectRefused,  // connect failed at once or asynchronously
  ConnectTimeout,
  ReadTimeout,     // no response byte within the read timeout
  SendTimeout,     // the backend stopped taking the request
  Reset,           // socket error while sending or receiving
  Closed,          // the backend closed the connection
  Protocol,        // unparseable response
};

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
    virtual void onUpstreamFailure(Failure failure) = 0;
  };

  Connection(Cluster& cluster, Backend& backend, net::Fd fd, event_base* base,
             const http::HeadLimits& limits, core::BlockRecycler& blocks);
  ~Connection() override;

  void lease(Listener& listener, http::Parser::Handler& handler, const Timeouts& timeouts);
  // Watches a freshly connecting socket for completion (connect timeout applies). After lease.
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
  bool reused() const { return reused_; }
  bool closed() const { return !fd_.valid(); }
  bool connecting() const { return connecting_; }
  // Nothing unread, no half-parsed message: safe to hand to the next exchange.
  bool clean() const { return in_.readable() == 0; }
  void markReused() { reused_ = true; }

 private:
  static void onReadable(evutil_socket_t fd, short what, void* arg);
  static void onWritable(evutil_socket_t fd, short what, void* arg);
  void handleRead(short what);
  void handleWrite(short what);
  void fail(Failure failure);

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
  bool connecting_ = false;
  bool writeArmed_ = false;
  bool reused_ = false;
};

}  // namespace gw::upstream
