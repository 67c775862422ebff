#include "gateway/admin/admin_server.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gateway/core/guard.h"
#include "gateway/core/json.h"
#include "gateway/core/log.h"
#include "gateway/core/out_queue.h"
#include "gateway/http/parser.h"
#include "gateway/http/status.h"

namespace gw::admin {
namespace {

// An admin request is a short GET or DELETE; anything bigger is not one.
constexpr http::HeadLimits kLimits{2048, 8192, 32};
constexpr std::size_t kReadChunk = 4096;
constexpr timeval kDeadline{10, 0};  // the whole exchange, slow scrapers included

}  // namespace

Response errorResponse(int status, std::string_view code, std::string_view message) {
  std::string body = "{\"error\":{\"code\":\"" + std::string(code) + "\",\"message\":\"";
  core::appendJsonEscaped(body, message);
  body += "\"}}\n";
  return {status, "application/json", std::move(body), {}};
}

// One admin connection: reads one request head, asks the service, writes the answer, closes.
class AdminServer::Connection final : public http::Parser::Handler {
 public:
  Connection(AdminServer& server, net::Fd fd)
      : server_(server), fd_(std::move(fd)), parser_(HTTP_REQUEST, this, kLimits) {
    readEvent_.reset(event_new(server_.base_, fd_.get(), EV_READ | EV_PERSIST, &onReadable, this));
    writeEvent_.reset(event_new(server_.base_, fd_.get(), EV_WRITE | EV_PERSIST, &onWritable, this));
    deadline_.reset(evtimer_new(server_.base_, &onDeadline, this));
    event_add(readEvent_.get(), nullptr);
    evtimer_add(deadline_.get(), &kDeadline);
  }
  ~Connection() override { *alive_ = false; }

  std::list<std::unique_ptr<Connection>>::iterator registration;

  int onHeadersComplete() override {
    const std::string_view target = parser_.target(in_.data());
    const std::size_t question = target.find('?');
    path_ = target.substr(0, question);
    if (question != std::string_view::npos) query_ = target.substr(question + 1);
    method_ = parser_.method();
    return 0;
  }
  int onBody(const char*, std::size_t) override { return 0; }
  int onMessageComplete() override {
    complete_ = true;
    return HPE_PAUSED;
  }

 private:
  static void onReadable(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Connection*>(arg);
    core::guarded([&] { self->handleRead(); }, [&](const char* what) { self->bug(what); });
  }
  static void onWritable(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Connection*>(arg);
    core::guarded([&] { self->flush(); }, [&](const char* what) { self->bug(what); });
  }
  static void onDeadline(evutil_socket_t, short, void* arg) {
    static_cast<Connection*>(arg)->finish();
  }

  void handleRead() {
    char buffer[kReadChunk];
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return finish();
    if (n < 0) return;
    const std::size_t offset = in_.size();
    in_.append(buffer, static_cast<std::size_t>(n));
    const auto outcome = parser_.execute(in_.data(), in_.data() + offset, in_.size() - offset);
    if (complete_) return dispatch();
    if (outcome.error != HPE_OK) {
      return answer(errorResponse(400, "BAD_REQUEST", "malformed request"));
    }
  }

  void dispatch() {
    event_del(readEvent_.get());  // one request per connection
    const Request request{llhttp_method_name(method_), path_, query_};
    // The service may answer after this connection is gone (the peer closed meanwhile).
    server_.service_.handle(request, [this, alive = alive_](Response response) {
      if (*alive) answer(std::move(response));
    });
  }

  void answer(Response response) {
    event_del(readEvent_.get());
    std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " +
                       std::string(http::reasonPhrase(response.status)) + "\r\n";
    head += "Content-Type: " + response.contentType + "\r\n";
    head += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    if (!response.allow.empty()) head += "Allow: " + response.allow + "\r\n";
    head += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
    out_.append(head);
    if (method_ != HTTP_HEAD) out_.append(response.body);
    flush();
  }

  void flush() {
    switch (out_.flush(fd_.get())) {
      case core::OutQueue::WriteStatus::Blocked:
        event_add(writeEvent_.get(), nullptr);
        return;
      case core::OutQueue::WriteStatus::Drained:
        ::shutdown(fd_.get(), SHUT_WR);
        return finish();
      case core::OutQueue::WriteStatus::Failed:
        return finish();
    }
  }

  void bug(const char* what) {
    core::log::error("admin request failed: bug", {{"path", path_}, {"error", what}});
    finish();
  }

  // Frees this connection: the last thing a callback does.
  void finish() { server_.closed(*this); }

  AdminServer& server_;
  net::Fd fd_;
  http::Parser parser_;
  core::EventPtr readEvent_;
  core::EventPtr writeEvent_;
  core::EventPtr deadline_;
  std::string in_;
  core::OutQueue out_;
  std::string path_;
  std::string query_;
  llhttp_method_t method_ = HTTP_GET;
  bool complete_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

AdminServer::AdminServer(event_base* base, Service& service)
    : base_(base), service_(service), acceptPause_(base, "admin") {}

AdminServer::~AdminServer() = default;

bool AdminServer::listen(const net::SocketAddress& address, std::string& error) {
  auto fd = net::listenOn(address, net::PortSharing::Exclusive, error);
  if (!fd) return false;
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  ::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&bound), &length);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listenFd_ = std::move(*fd);
  acceptEvent_.reset(event_new(base_, listenFd_.get(), EV_READ | EV_PERSIST, &onAccept, this));
  event_add(acceptEvent_.get(), nullptr);
  return true;
}

void AdminServer::onAccept(evutil_socket_t, short, void* arg) {
  static_cast<AdminServer*>(arg)->acceptAll();
}

void AdminServer::acceptAll() {
  for (;;) {
    const int fd = ::accept4(listenFd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      acceptPause_.pauseOn(errno, {&acceptEvent_, 1});  // out of descriptors: not a busy loop
      return;
    }
    acceptPause_.accepted();
    if (connections_.size() >= kMaxConnections) {
      ::close(fd);  // a flood of admin connections must not exhaust the process's descriptors
      continue;
    }
    connections_.push_front(std::make_unique<Connection>(*this, net::Fd(fd)));
    connections_.front()->registration = connections_.begin();
  }
}

void AdminServer::closed(Connection& connection) { connections_.erase(connection.registration); }

}  // namespace gw::admin
