#pragma once
// The admin listener: a small HTTP/1.1 server on its own socket (127.0.0.1:9901 by default),
// run on the main thread's loop, never on a worker's and never on a proxy listener. One request
// per connection (answered with Connection: close): scrapers and probes open a connection per
// request anyway, and it keeps this code short. Heads are parsed by the same strict parser as
// proxied traffic, with small limits and a deadline.

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/core/accept_pause.h"
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

// What the admin endpoints answer, methods included; implemented by the process (core::Server).
class Service {
 public:
  virtual ~Service() = default;
  // May answer later (e.g. once every worker has reported its metrics) by calling `done` once,
  // on the admin loop's thread. The answer to a HEAD is sent without its body.
  virtual void handle(const Request& request, std::function<void(Response)> done) = 0;
};

class AdminServer {
 public:
  static constexpr std::size_t kMaxConnections = 64;

  AdminServer(event_base* base, Service& service);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens; false with a message when the address cannot be used.
  bool listen(const net::SocketAddress& address, std::string& error);
  uint16_t port() const { return port_; }

 private:
  class Connection;
  static void onAccept(evutil_socket_t fd, short what, void* arg);
  void acceptAll();
  void closed(Connection& connection);

  event_base* base_;
  Service& service_;
  net::Fd listenFd_;
  core::EventPtr acceptEvent_;
  core::AcceptPause acceptPause_;
  uint16_t port_ = 0;
  std::list<std::unique_ptr<Connection>> connections_;
};

}  // namespace gw::admin
