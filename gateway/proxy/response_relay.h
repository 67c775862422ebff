#pragma once
// The upstream response on its way to the client: the handler of the upstream connection's
// parser. It judges each head (1xx relayed to HTTP/1.1 clients, refused ones reported), rewrites
// the final head (hop-by-hop fields dropped, framing always ours from what llhttp parsed) and
// queues body bytes, borrowed and re-chunked where needed, on the client connection's output.
// On a route with plugins it hands the head and body to the exchange's response phases.

#include <cstdint>
#include <string_view>

#include "gateway/core/out_queue.h"
#include "gateway/http/headers.h"
#include "gateway/http/parser.h"
#include "gateway/plugin/plugin.h"
#include "gateway/proxy/field_list.h"
#include "gateway/proxy/local_reply.h"
#include "gateway/upstream/connection.h"

namespace gw::proxy {

// How the response body travels to the client.
enum class BodyFraming : uint8_t {
  None,          // no body (HEAD, 1xx, 204, 304)
  Raw,           // Content-Length: bytes pass through as they are
  Chunked,       // re-encoded as chunked (upstream chunked, or upstream until-EOF to a 1.1 client)
  UntilClose,    // HTTP/1.0 client without length: body ends when we close
};

struct ClientView {
  uint8_t versionMinor = 1;  // HTTP/1.x
  bool keepAlive = true;     // client wants to keep the connection
  bool headRequest = false;
};

// The exchange's response phases, as the relay needs them (routes with plugins only).
class ResponsePhases {
 public:
  virtual ~ResponsePhases() = default;
  // Where the relay puts the upstream head's forwarded fields for the plugins to edit.
  virtual FieldList& upstreamHeadFields() = 0;
  // The response-header phase on the upstream's final head. Respond: a plugin answered instead;
  // its response is in `replacement`, already through the phase itself.
  virtual plugin::Status filterUpstreamHead(int status, LocalResponse& replacement) = 0;
  virtual void filterUpstreamBody(std::string_view piece, bool end) = 0;
};

// Decides whether a final response status is retried (a route's retry policy).
class RetryJudge {
 public:
  virtual bool retryStatus(int status) = 0;

 protected:
  ~RetryJudge() = default;
};

class ResponseRelay final : public http::Parser::Handler {
 public:
  ResponseRelay(core::OutQueue& clientOut, ClientView client, ResponsePhases* phases);

  // The upstream connection whose parser calls us (its input holds the bytes parsed), for each
  // attempt.
  void attach(upstream::Connection& lease) {
    lease_ = &lease;
    retryRequested_ = false;
  }
  // Asked on each final head before any byte of it is queued.
  void setRetryJudge(RetryJudge* judge) { judge_ = judge; }
  // The judge chose to retry the final head just parsed: nothing of it was queued, and the
  // parser stopped there.
  bool retryRequested() const { return retryRequested_; }

  // Started: the upstream's final head was parsed and queued toward the client; on the wire: a
  // byte of it reached the client, so only cutting the connection can still signal a failure.
  bool started() const { return started_; }
  bool onWire() const { return started_ && clientOut_.sentTotal() > headMark_; }
  // Takes back a final head the client has not seen a byte of, so a gateway error can answer
  // instead. False when there is none, or when it is already on the wire.
  bool withdraw();
  // Why the upstream's head was refused by us rather than by llhttp ("" if it was not).
  std::string_view refusal() const { return refusal_; }
  bool complete() const { return complete_; }
  // The client connection must close after this response (framing or a Connection: close).
  bool closeAfter() const { return closeAfter_; }
  void forceClose() { closeAfter_ = true; }
  // The upstream connection may go back to the pool once the response is complete.
  bool upstreamReusable() const { return upstreamReusable_; }
  // What the client gets (a plugin's replacement's status when one answered instead).
  int status() const { return status_; }
  int upstreamStatus() const { return upstreamStatus_; }

  // http::Parser::Handler, for the upstream response.
  int onHeadersComplete() override;
  int onBody(const char* data, std::size_t length) override;
  int onChunkHeader(uint64_t length) override;
  int onChunkComplete() override;
  int onMessageComplete() override;

 private:
  const http::Parser& parser() const { return lease_->parser(); }
  const char* base() const { return lease_->input().base(); }
  // Calls emit(name, value, kind) for each field of the upstream head that is forwarded
  // (hop-by-hop fields and those its Connection header nominates end here); returns the
  // Connection options.
  template <typename Emit>
  http::ConnectionTokens forEachForwardedField(Emit&& emit);
  void appendResponseHead();
  void relayInformational();
  void appendStatusLine(int status, std::string_view reason);
  void appendFraming();
  bool framedByUs(http::FieldName kind) const;
  // A response-phase plugin answered instead of the upstream (e.g. a cache freshened by a 304):
  // its response goes to the client, the upstream's body is read and dropped.
  void replaceUpstreamResponse(const LocalResponse& response);

  core::OutQueue& clientOut_;
  ClientView client_;
  ResponsePhases* phases_;
  upstream::Connection* lease_ = nullptr;
  BodyFraming framing_ = BodyFraming::None;
  uint64_t responseLength_ = 0;  // the upstream's parsed Content-Length, with Raw framing
  int status_ = 0;
  int upstreamStatus_ = 0;  // the upstream's final status, even when a plugin replaced it
  int informationalCount_ = 0;  // 1xx heads of this exchange (bounded, see judgeResponseHead)
  uint64_t headMark_ = 0;  // clientOut_.queuedTotal() before the final head
  std::string_view refusal_;
  bool informational_ = false;
  bool started_ = false;
  bool complete_ = false;
  bool chunkOpen_ = false;
  bool closeAfter_ = false;
  bool upstreamReusable_ = false;
  bool replaced_ = false;  // see replaceUpstreamResponse()
  bool retryRequested_ = false;
  RetryJudge* judge_ = nullptr;
};

}  // namespace gw::proxy
