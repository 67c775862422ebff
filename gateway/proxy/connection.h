#pragma once
// One client (downstream) connection: its socket, the request parser, the output queue toward
// the client, keep-alive and pipelining, limits and timeouts, the log record of each exchange,
// and the exchange in flight (proxy/exchange.h), which it starts per routed request.
// The socket is driven with a persistent EV_READ event; responses are written at once with one
// sendmsg and EV_WRITE is armed only when the socket is full (see DESIGN.md, "Syscalls").
// Backpressure: while the client's pending output is above the high watermark the upstream is
// not read; while the upstream's pending output is above it the client is not read.
// On a TLS listener the connection first completes its handshake (net/tls_stream.h, within the
// listener's handshake_timeout), then reads and writes through the stream; everything else,
// limits and timeouts included, is the same.

#include <event2/event.h>

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "gateway/core/error.h"
#include "gateway/core/graveyard.h"
#include "gateway/core/io_buffer.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/core/out_queue.h"
#include "gateway/http/headers.h"
#include "gateway/http/parser.h"
#include "gateway/http/path.h"
#include "gateway/net/cidr.h"
#include "gateway/net/socket.h"
#include "gateway/net/tls_stream.h"
#include "gateway/proxy/exchange.h"
#include "gateway/proxy/exchange_log.h"
#include "gateway/proxy/local_reply.h"
#include "gateway/proxy/worker_context.h"

namespace gw::proxy {

class Connection final : public core::Retirable, public http::Parser::Handler, public Downstream {
 public:
  // `tls`: the listener's TLS server side, null on a plain listener.
  Connection(WorkerContext& worker, net::Fd fd, const sockaddr* peer,
             std::shared_ptr<const net::TlsContext> tls = nullptr);
  ~Connection() override;

  void start();
  // Drain: close now if idle between requests, else after the response in flight or to the
  // first request it has not finished sending yet.
  void drain();
  void close();
  bool idle() const { return !exchange_ && in_.readable() == 0 && out_.empty(); }

  std::list<std::unique_ptr<Connection>>::iterator registration;
  // The listening socket it came from (-1: handed over otherwise), so that a reload removing
  // that listener drains it.
  int acceptedOn = -1;

  // http::Parser::Handler, for the client's requests.
  int onHeadersComplete() override;
  int onBody(const char* data, std::size_t length) override;
  int onChunkHeader(uint64_t length) override;
  int onChunkComplete() override;
  int onMessageComplete() override;

  // Downstream, for the exchange in flight.
  core::OutQueue& clientOutput() override { return out_; }
  bool flushClient() override;
  void pauseClientReads() override;
  void requestBytesDrained() override;
  void awaitRequestBody() override;
  bool requestBytesBuffered() const override { return in_.readable() != 0; }
  bool draining() const override { return draining_; }
  void answered(LocalResponse response, bool close) override;
  void answerError(const core::Error& error, bool close) override;
  void completed(int status, bool close) override;
  void cut(int status, core::ErrorCode error) override;
  void exchangeResumed() override;
  // An exception escaped our code: log it, answer 500 (or cut a started response), close.
  void recoverFromBug(const char* what) override;

 private:
  enum class Pause : uint8_t { None, HeadersComplete, MessageComplete };

  static void onReadable(evutil_socket_t fd, short what, void* arg);
  static void onWritable(evutil_socket_t fd, short what, void* arg);
  void handleRead(short what);
  void handleWrite(short what);
  void handleTimeout();
  // One more step of the TLS handshake; then the connection reads requests as a plain one.
  void continueHandshake();
  // Waits on `event` (the read or the write event) until the handshake's deadline.
  void awaitHandshake(event* event);
  // Counted as a failed handshake, then closed.
  void handshakeTimedOut();
  // Decrypted request bytes wait inside OpenSSL, where no socket event announces them.
  void readAgainIfBuffered();

  // Parses what is buffered, as far as the exchange in flight allows, then sends upstream.
  void processInput();
  void parseBuffered();
  void armHeadDeadline();
  // After an exchange: the next pipelined request, or idle.
  void continueAfterExchange();
  void startExchange();
  // The exchange is over (its answer queued and recorded): the next request, or the close.
  void endExchange(bool close);

  // Sends a gateway-made error response; `close` ends the connection after it.
  void reply(const core::Error& error, bool close);
  // Queues and records a gateway-made response (its response phase already ran).
  void writeLocalResponse(const LocalResponse& response, bool close);
  // The global plugins' response phase on an answer no route took.
  void runUnroutedResponsePhase(LocalResponse& response);
  void rejectRequest(llhttp_errno_t err);
  void armClientWrite();
  void resumeClientReads();
  void setReadTimeout(const timeval* timeout);
  void goIdle();
  void lingerThenClose();
  std::string currentRequestId() const;
  // The same without allocating: a plugin's id, or the gateway's formatted into `buffer`.
  std::string_view currentRequestId(char (&buffer)[WorkerContext::kRequestIdLength]) const;
  // The log phase: an exchange is begun when its head is complete and recorded exactly once,
  // with the status the client got (499 when the client left first).
  // `headParsed`: the request head is complete, so its target and fields can be copied.
  void beginRecord(bool headParsed);
  void recordExchange(int status);

  WorkerContext& worker_;
  net::Fd fd_;
  std::unique_ptr<net::TlsStream> tls_;  // null on a plain listener
  core::EventPtr readEvent_;
  core::EventPtr writeEvent_;  // created on the first EAGAIN
  core::IoBuffer in_;
  core::OutQueue out_;
  http::Parser parser_;
  // In room from the worker's pool, kept while the connection is busy: an exchange ends inside
  // its own callbacks, and its storage stays valid while they return (see exchange.h); the room
  // goes back when the connection is idle.
  core::Slot<Exchange> exchange_;
  char clientIp_[46] = {};
  bool fromTrustedProxy_ = false;  // the peer is in http.trusted_proxies
  int64_t headDeadlineMs_ = 0;
  int64_t handshakeDeadlineMs_ = 0;
  // Request bytes parsed since the last exchange was recorded: one request's head and body, as
  // pipelined requests wait until the one in flight is answered.
  uint64_t requestBytes_ = 0;
  ExchangeLog log_;
  uint64_t lastSeq_ = 0;
  Pause pause_ = Pause::None;
  bool readsPaused_ = false;
  bool processing_ = false;
  bool writeArmed_ = false;
  bool closeAfterFlush_ = false;
  bool lingering_ = false;
  bool draining_ = false;
  bool headPending_ = false;  // bytes of a request head are buffered
  bool bodyTooLarge_ = false;
  bool handshaking_ = false;
  bool clientDone_ = false;  // its last request, whole: closed without lingering
};

}  // namespace gw::proxy
