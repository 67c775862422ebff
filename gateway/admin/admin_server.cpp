#include "gateway/admin/admin_server.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

#include "gateway/admin/admin_target.h"
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
// Bytes read while no complete head has arrived: the head limit plus room for what llhttp skips
// without measuring (empty lines before the request line).
constexpr std::size_t kMaxHeadInput = kLimits.requestLineBytes + kLimits.headerBytes;
constexpr std::size_t kReadChunk = 4096;
// From a complete head (or a refusal) to the answer's last byte, slow scrapers included.
constexpr timeval kAnswerDeadline{10, 0};

timeval toTimeval(config::Duration d) {
  return {static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>(d.count() % 1000 * 1000)};
}

std::string serialise(const Response& response, bool withBody) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                    std::string(http::reasonPhrase(response.status)) + "\r\n";
  out += "Content-Type: " + response.contentType + "\r\n";
  out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  if (!response.allow.empty()) out += "Allow: " + response.allow + "\r\n";
  out += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (withBody) out += response.body;
  return out;
}

// The answer to a head the parser refused.
Response headRefusal(const http::Parser& parser, llhttp_errno_t error) {
  const core::Error refusal = http::describeRefusal(parser, error);
  return errorResponse(refusal.code, refusal.message);
}

}  // namespace

Response errorResponse(int status, std::string_view code, std::string_view message) {
  std::string body = "{\"error\":{\"code\":\"" + std::string(code) + "\",\"message\":\"";
  core::appendJsonEscaped(body, message);
  body += "\"}}\n";
  return {status, "application/json", std::move(body), {}};
}

Response errorResponse(core::ErrorCode code, std::string_view message) {
  return errorResponse(core::httpStatus(code), core::wireCode(code), message);
}

// One admin connection: reads one request head, asks the service, writes the answer, closes.
class AdminServer::Connection final : public http::Parser::Handler {
 public:
  Connection(AdminServer& server, net::Fd fd)
      : server_(server), fd_(std::move(fd)), parser_(HTTP_REQUEST, this, kLimits) {
    readEvent_.reset(event_new(server_.base_, fd_.get(), EV_READ | EV_PERSIST, &onReadable, this));
    writeEvent_.reset(
        event_new(server_.base_, fd_.get(), EV_WRITE | EV_PERSIST, &onWritable, this));
    deadline_.reset(evtimer_new(server_.base_, &onDeadline, this));
    event_add(readEvent_.get(), nullptr);
    evtimer_add(deadline_.get(), &server_.headerTimeout_);
  }
  ~Connection() override { *alive_ = false; }

  std::list<std::unique_ptr<Connection>>::iterator registration;

  // No complete request head yet: the first kind of connection to give up its slot.
  bool readingHead() const { return !answering_; }

  // Gives up this connection's slot to a newer one (and frees it). One still reading its head is
  // told why if its socket takes the answer at once; one being answered is cut.
  void evict() {
    if (readingHead()) {
      out_.append(serialise(errorResponse(core::ErrorCode::ServiceUnavailable,
                                          "every admin connection is taken; this one had not "
                                          "sent a complete request and was closed for a newer one"),
                            true));
      out_.flush(fd_.get());
    }
    finish();
  }

  int onHeadersComplete() override {
    headComplete_ = true;
    return HPE_PAUSED;  // one request per connection, without a body: nothing after it is parsed
  }
  int onBody(const char*, std::size_t) override { return 0; }  // never reached: see above
  int onMessageComplete() override { return 0; }

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
    auto* self = static_cast<Connection*>(arg);
    if (!self->readingHead()) return self->finish();
    core::guarded(
        [&] {
          self->answer(errorResponse(core::ErrorCode::RequestTimeout,
                                     "no complete request head within admin.header_timeout"));
        },
        [&](const char* what) { self->bug(what); });
  }

  void handleRead() {
    char buffer[kReadChunk];
    const std::size_t room = std::min(sizeof buffer, kMaxHeadInput - in_.size());
    const ssize_t n = ::recv(fd_.get(), buffer, room, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return finish();
    if (n < 0) return;
    const std::size_t offset = in_.size();
    in_.append(buffer, static_cast<std::size_t>(n));
    const auto outcome = parser_.execute(in_.data(), in_.data() + offset, in_.size() - offset);
    if (headComplete_) return serve();
    if (outcome.error != HPE_OK) return answer(headRefusal(parser_, outcome.error));
    if (in_.size() == kMaxHeadInput) {
      answer(errorResponse(
          core::ErrorCode::HeadersTooLarge,
          "no request head in the first " + std::to_string(kMaxHeadInput) + " bytes"));
    }
  }

  // The request a complete head asks for, or why it is refused.
  core::Result<Request> request() const {
    using core::Error;
    using core::ErrorCode;
    if (parser_.versionMajor() != 1) {
      return Error::downstream(ErrorCode::BadRequest, "unsupported HTTP version");
    }
    const auto target = parseAdminTarget(parser_.target(in_.data()));
    if (!target) return target.error();
    // The purge takes its parameters in the query, so no endpoint reads a body: refused at the
    // head, its bytes stay unread however many are announced.
    if (parser_.chunked() || parser_.contentLength() > 0) {
      return Error::downstream(ErrorCode::PayloadTooLarge, "admin endpoints take no request body");
    }
    return Request{llhttp_method_name(parser_.method()), target->path, target->query};
  }

  void serve() {
    startAnswering();
    method_ = parser_.method();
    const auto parsed = request();
    if (!parsed) return answer(errorResponse(parsed.error().code, parsed.error().message));
    // The service may answer after this connection is gone (evicted, or the peer closed).
    server_.service_.handle(*parsed, [this, alive = alive_](Response response) {
      if (*alive) answer(std::move(response));
    });
  }

  // Reading ends; the answer has kAnswerDeadline to be given and written.
  void startAnswering() {
    answering_ = true;
    event_del(readEvent_.get());
    evtimer_add(deadline_.get(), &kAnswerDeadline);
  }

  void answer(Response response) {
    if (!answering_) startAnswering();
    out_.append(serialise(response, method_ != HTTP_HEAD));
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
    const std::string_view target = headComplete_ ? parser_.target(in_.data()) : "";
    core::log::error("admin request failed: bug", {{"target", target}, {"error", what}});
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
  std::string in_;  // the head, and whatever came with its last read
  core::OutQueue out_;
  llhttp_method_t method_ = HTTP_GET;  // of a complete head: a HEAD is answered without a body
  bool headComplete_ = false;
  bool answering_ = false;  // reading is over; the deadline is kAnswerDeadline's
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

AdminServer::AdminServer(event_base* base, Service& service, const config::AdminConfig& config)
    : base_(base),
      service_(service),
      maxConnections_(config.max_connections),
      headerTimeout_(toTimeval(config.header_timeout)),
      acceptPause_(base, "admin") {}

AdminServer::~AdminServer() = default;

bool AdminServer::listen(const net::SocketAddress& address, std::string& error) {
  auto fd = net::listenOn(address, net::PortSharing::Exclusive, error);
  if (!fd) return false;
  serveOn(std::move(*fd));
  return true;
}

void AdminServer::serveOn(net::Fd listening) {
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  ::getsockname(listening.get(), reinterpret_cast<sockaddr*>(&bound), &length);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listenFd_ = std::move(listening);
  acceptEvent_.reset(event_new(base_, listenFd_.get(), EV_READ | EV_PERSIST, &onAccept, this));
  event_add(acceptEvent_.get(), nullptr);
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
    // Bounded, so a flood cannot exhaust the process's descriptors; yet the newest connection
    // (a probe, most likely) is served rather than refused.
    if (connections_.size() >= maxConnections_) evictOne();
    connections_.push_back(std::make_unique<Connection>(*this, net::Fd(fd)));
    connections_.back()->registration = std::prev(connections_.end());
  }
}

void AdminServer::evictOne() {
  // The oldest without a complete head (idle, or trickling one in); when every slot is being
  // answered, the oldest of those (a slow reader of a large /metrics), nearest its deadline.
  auto victim = std::find_if(connections_.begin(), connections_.end(),
                             [](const auto& connection) { return connection->readingHead(); });
  if (victim == connections_.end()) victim = connections_.begin();
  (*victim)->evict();
}

void AdminServer::closed(Connection& connection) { connections_.erase(connection.registration); }

}  // namespace gw::admin
