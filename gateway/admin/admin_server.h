#pragma once
// The admin listener: a small HTTP/1.1 server on its own socket (127.0.0.1:9901 by default),
// run on the main thread's loop, never on a worker's and never on a proxy listener. One request
// per connection (answered with Connection: close): scrapers and probes open a connection per
// request anyway, and it keeps this code short. Heads are parsed by the same strict parser as
// proxied traffic, with small limits and a deadline; no endpoint reads a request body.
//
// Whoever holds connections open, probes are answered: the connection slots are bounded
// (admin.max_connections), a head must arrive within admin.header_timeout, and a new connection
// to a full listener takes the slot of the oldest one that has not sent a complete head (or, when
// every slot is being answered, of the oldest one).

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/config/model.h"
#include "gateway/core/accept_pause.h"
#include "gateway/core/error.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/net/socket.h"

namespace gw::admin {

// One admin request head; the views live until the answer is given.
struct Request {
  std::string_view method;  // "GET", "HEAD", "DELETE", ...
  std::string_view path;
  std::string_view query;  // without the '?'
};

struct Response {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::string allow;  // the Allow field of a 405
};

// {"error":{"code":CODE,"message":MESSAGE}}, the message JSON-escaped.
Response errorResponse(int status, std::string_view code, std::string_view message);
// The same with the status and code of a gateway error code (REQUEST_TIMEOUT, ...).
Response errorResponse(core::ErrorCode code, std::string_view message);

// What the admin endpoints answer, methods included; implemented by the process (runtime::Server).
class Service {
 public:
  virtual ~Service() = default;
  // May answer later (e.g. once every worker has reported its metrics) by calling `done` once,
  // on the admin loop's thread. The answer to a HEAD is sent without its body.
  virtual void handle(const Request& request, std::function<void(Response)> done) = 0;
};

class AdminServer {
 public:
  AdminServer(event_base* base, Service& service, const config::AdminConfig& config);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens; false with a message when the address cannot be used.
  bool listen(const net::SocketAddress& address, std::string& error);
  // Serves on a listening socket opened elsewhere (passed by a previous gatewayd).
  void serveOn(net::Fd listening);
  uint16_t port() const { return port_; }
  int listeningFd() const { return listenFd_.get(); }

 private:
  class Connection;
  static void onAccept(evutil_socket_t fd, short what, void* arg);
  void acceptAll();
  void evictOne();
  void closed(Connection& connection);

  event_base* base_;
  Service& service_;
  std::size_t maxConnections_;
  timeval headerTimeout_;
  net::Fd listenFd_;
  core::EventPtr acceptEvent_;
  core::AcceptPause acceptPause_;
  uint16_t port_ = 0;
  std::list<std::unique_ptr<Connection>> connections_;  // oldest first
};

}  // namespace gw::admin
