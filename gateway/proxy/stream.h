#pragma once
// One request/response exchange on a client connection: the route it matched, the upstream
// connection it leases, the request head as it goes upstream, and how the response is framed
// toward the client. It is the response parser's handler: it rewrites the response head and
// queues body bytes (borrowed, re-chunked where needed) on the client connection's output.

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/config/model.h"
#include "gateway/core/out_queue.h"
#include "gateway/core/recycler.h"
#include "gateway/http/parser.h"
#include "gateway/upstream/cluster.h"
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

class Stream final : public http::Parser::Handler {
 public:
  Stream(const config::RouteConfig& route, upstream::Cluster& cluster,
         const upstream::Timeouts& timeouts, core::OutQueue& clientOut, ClientView client,
         uint64_t requestSeq, core::Recycler<std::string>& heads);
  ~Stream() override;

  const config::RouteConfig& route() const { return route_; }
  upstream::Cluster& cluster() { return cluster_; }
  const upstream::Timeouts& timeouts() const { return timeouts_; }
  std::string& upstreamHead() { return upstreamHead_; }
  uint64_t requestSeq() const { return requestSeq_; }

  std::unique_ptr<upstream::Connection>& lease() { return lease_; }
  // Where the Host line is inserted when it names the backend (npos: the head is complete).
  std::size_t hostSplit = std::string::npos;
  uint64_t triedBackends = 0;  // bit per backend index, for connect retries
  bool retriedReuse = false;   // the one retry after a stale pooled connection is spent
  bool connectTimedOut = false;  // the last connect attempt timed out (504 rather than 502)

  // Request side progress.
  bool requestHasBody = false;
  bool requestComplete = false;   // all request bytes parsed from the client
  uint64_t requestBodyBytes = 0;

  // Response side progress (set by the parser callbacks).
  bool responseStarted() const { return responseStarted_; }
  bool responseComplete() const { return responseComplete_; }
  // The client connection must close after this response (framing or a Connection: close).
  bool closeAfterResponse() const { return closeAfter_; }
  void forceClose() { closeAfter_ = true; }
  // The upstream connection may go back to the pool once the response is complete.
  bool upstreamReusable() const { return upstreamReusable_; }
  int status() const { return status_; }

  // http::Parser::Handler, for the upstream response.
  int onHeadersComplete() override;
  int onBody(const char* data, std::size_t length) override;
  int onChunkHeader(uint64_t length) override;
  int onChunkComplete() override;
  int onMessageComplete() override;

 private:
  void appendResponseHead(const http::Parser& parser, const char* base);
  void appendStatusLine(int status, std::string_view reason);

  const config::RouteConfig& route_;
  upstream::Cluster& cluster_;
  const upstream::Timeouts& timeouts_;
  core::OutQueue& clientOut_;
  ClientView client_;
  uint64_t requestSeq_;
  core::Recycler<std::string>& heads_;
  std::string upstreamHead_;
  std::unique_ptr<upstream::Connection> lease_;
  BodyFraming framing_ = BodyFraming::None;
  int status_ = 0;
  bool informational_ = false;
  bool responseStarted_ = false;
  bool responseComplete_ = false;
  bool chunkOpen_ = false;
  bool closeAfter_ = false;
  bool upstreamReusable_ = false;
};

}  // namespace gw::proxy
