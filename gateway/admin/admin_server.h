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

#include "gateway/core/libevent_ptr.h"
#include "gateway/net/socket.h"

namespace gw::admin {

struct Response {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
};

// What the admin endpoints answer; implemented by the process (core::Server).
class Service {
 public:
  virtual ~Service() = default;
  // Answers a GET or HEAD of `path` (query removed). May answer later (e.g. once every worker
  // has reported its metrics) by calling `done` once, on the admin loop's thread.
  virtual void handle(std::string_view path, std::function<void(Response)> done) = 0;
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
  uint16_t port_ = 0;
  std::list<std::unique_ptr<Connection>> connections_;
};

}  // namespace gw::admin
