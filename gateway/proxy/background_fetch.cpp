#include "gateway/proxy/background_fetch.h"

#include <event2/event.h>

#include <chrono>
#include <string>
#include <utility>

#include "gateway/core/guard.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/core/log.h"
#include "gateway/proxy/worker_context.h"
#include "gateway/http/headers.h"
#include "gateway/proxy/field_list.h"
#include "gateway/proxy/router.h"
#include "gateway/proxy/exchange.h"
#include "gateway/proxy/upstream_request.h"
#include "gateway/upstream/cluster.h"

namespace gw::proxy {

// One fetch: the lessee of its upstream connection and the handler of its response parser.
class BackgroundFetches::Fetch final : public core::Retirable,
                                       public upstream::Connection::Listener,
                                       public http::Parser::Handler {
 public:
  // The cluster and timeouts are `generation`'s, which the fetch holds until it ends.
  Fetch(BackgroundFetches& owner, Generation& generation, upstream::Cluster& cluster,
        const upstream::Timeouts& timeouts, plugin::BackgroundRequest request)
      : owner_(owner),
        generation_(generation),
        cluster_(cluster),
        timeouts_(timeouts),
        request_(std::move(request)) {}

  // Leases a connection to `backend` and queues `head` on it. False (nothing left running) when
  // no connection could be had.
  bool begin(upstream::Backend& backend, std::string head, WorkerContext& worker) {
    lease_ = cluster_.takeIdle(backend);
    const bool fresh = !lease_;
    if (fresh) {
      int err = 0;
      lease_ = cluster_.connect(backend, err);
      if (!lease_) {
        cluster_.markDown(backend);
        return false;
      }
    }
    head_ = std::move(head);
    lease_->lease(*this, *this, timeouts_);
    lease_->output().borrow(head_.data(), head_.size());
    if (fresh) {
      lease_->startConnect();
    } else if (send() == core::OutQueue::WriteStatus::Failed) {
      cluster_.retire(std::move(lease_));
      return false;
    }
    deadline_.reset(evtimer_new(worker.base(), &Fetch::onDeadline, this));
    evtimer_add(deadline_.get(),
                worker.timeouts().get(std::chrono::milliseconds(request_.timeoutMs)));
    return true;
  }

  // The worker is going away: ends with no response.
  void abort() { end(false); }

  std::list<std::unique_ptr<Fetch>>::iterator registration;

  // upstream::Connection::Listener
  void onUpstreamConnected() override {
    guarded([&] {
      cluster_.markUp(lease_->backend());
      lease_->watchReads(nullptr);
      if (send() == core::OutQueue::WriteStatus::Failed) end(false);
    });
  }
  void onUpstreamDrained() override {
    guarded([&] { lease_->watchReads(timeouts_.read); });
  }
  void onUpstreamRead() override {
    guarded([&] { readResponse(); });
  }
  void onUpstreamClosed() override {
    guarded([&] {
      // A body delimited by the close ends here.
      if (lease_->endsResponseAtClose(response_.status != 0) && complete_) {
        reusable_ = false;
        end(true);
      } else {
        end(false);
      }
    });
  }
  void onUpstreamBug(const char* what) override { onBug(what); }
  void onUpstreamFailure(const core::Error& error) override {
    guarded([&] {
      if (error.retry == core::Retry::Safe) cluster_.markDown(lease_->backend());  // no connect
      end(false);
    });
  }

  // http::Parser::Handler, for the response.
  int onHeadersComplete() override {
    const http::Parser& parser = lease_->parser();
    const http::ResponseHead head = http::judgeResponseHead(parser, false, informationalCount_);
    informational_ = head.kind == http::ResponseHead::Kind::Informational;
    if (head.kind != http::ResponseHead::Kind::Final) return head.parserResult();
    const int status = parser.statusCode();
    if (parser.hasContentLength() && parser.contentLength() > request_.maxBodyBytes) return -1;
    const char* base = lease_->input().base();
    http::ConnectionTokens connection;
    for (std::size_t i = 0; i < parser.fieldCount(); ++i) {
      if (http::classifyField(parser.fieldName(base, i)) == http::FieldName::Connection) {
        connection.add(parser.fieldValue(base, i));
      }
    }
    response_.status = status;
    for (std::size_t i = 0; i < parser.fieldCount(); ++i) {
      const std::string_view name = parser.fieldName(base, i);
      if (http::isHopByHop(name) || connection.nominates(name)) continue;
      response_.fields.emplace_back(name, parser.fieldValue(base, i));
    }
    reusable_ = parser.keepAlive() && !connection.close() && !parser.bodyUntilEof();
    return head.parserResult();
  }
  int onBody(const char* data, std::size_t length) override {
    if (response_.body.size() + length > request_.maxBodyBytes) return HPE_USER;
    response_.body.append(data, length);
    return 0;
  }
  int onMessageComplete() override {
    if (informational_) return 0;
    complete_ = true;
    return HPE_PAUSED;  // any byte after the response is not ours to parse
  }

 private:
  static void onDeadline(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Fetch*>(arg);
    self->guarded([&] { self->end(false); });
  }

  // Our code runs from libevent's callbacks: nothing may escape into C frames.
  template <typename Body>
  void guarded(Body&& body) {
    core::guarded(body, [&](const char* why) { onBug(why); });
  }

  void onBug(const char* why) {
    core::log::error("programmer error in a background fetch", {{"what", why}});
    end(false);
  }

  core::OutQueue::WriteStatus send() {
    const auto status = lease_->flush();
    if (status == core::OutQueue::WriteStatus::Drained) lease_->watchReads(timeouts_.read);
    return status;
  }

  void readResponse() {
    if (complete_) {
      end(true);
      return;
    }
    // Body bytes were copied out, so only an unfinished head must stay where it is.
    if (!lease_->parser().inHead()) lease_->input().compact();
  }

  void end(bool answered) {
    if (ended_) return;
    ended_ = true;
    deadline_.reset();
    if (lease_) {
      if (answered && reusable_ && lease_->output().empty() && lease_->clean()) {
        lease_->parser().resume();
        cluster_.release(std::move(lease_));
      } else {
        cluster_.retire(std::move(lease_));
      }
    }
    auto done = std::move(request_.done);
    plugin::BackgroundResponse none;
    plugin::BackgroundResponse& response = answered ? response_ : none;
    owner_.retire(*this);  // freed after the callbacks unwind: `this` stays valid below
    if (done) done(response);
  }

  BackgroundFetches& owner_;
  Generation::Hold generation_;
  upstream::Cluster& cluster_;
  const upstream::Timeouts& timeouts_;
  plugin::BackgroundRequest request_;
  std::string head_;
  std::unique_ptr<upstream::Connection> lease_;
  core::EventPtr deadline_;
  plugin::BackgroundResponse response_;
  int informationalCount_ = 0;
  bool informational_ = false;
  bool complete_ = false;
  bool reusable_ = false;
  bool ended_ = false;
};

BackgroundFetches::BackgroundFetches(core::Graveyard& graveyard) : graveyard_(graveyard) {}

BackgroundFetches::~BackgroundFetches() { abortAll(); }

bool BackgroundFetches::start(Exchange& exchange, plugin::BackgroundRequest request) {
  if (fetches_.size() >= kMaxPerWorker) return false;
  upstream::Cluster& cluster = exchange.cluster();
  if (!cluster.anyUsable()) return false;
  upstream::Backend* backend = cluster.pick(0);
  if (!backend) return false;

  // The head any forwarded GET of this exchange would have; framing is ours (no body:
  // buildUpstreamHead never copies a Content-Length).
  FieldList fields;
  for (const auto& [name, value] : request.fields) fields.add(name, value);
  const plugin::RequestInfo& info = exchange.request();
  std::string rewritten;
  ForwardTarget target;
  target.method = "GET";
  target.host = exchange.forwardHost();
  target.path = rewritePath(exchange.route(), info.path, rewritten);
  target.query = info.query;
  target.hasQuery = exchange.hasQuery();
  std::string head;
  const std::size_t hostSplit = buildUpstreamHead(head, target, ListFields{fields}, info.clientIp,
                                                  exchange.route().preserve_host, false);
  if (hostSplit != std::string::npos) {
    head.insert(hostSplit, "Host: " + backend->authority + "\r\n");
  }

  auto fetch = std::make_unique<Fetch>(*this, exchange.generation(), cluster, exchange.timeouts(),
                                       std::move(request));
  if (!fetch->begin(*backend, std::move(head), exchange.worker())) return false;
  fetches_.push_front(std::move(fetch));
  fetches_.front()->registration = fetches_.begin();
  return true;
}

void BackgroundFetches::abortAll() {
  while (!fetches_.empty()) fetches_.front()->abort();
}

void BackgroundFetches::retire(Fetch& fetch) {
  std::unique_ptr<Fetch> owned = std::move(*fetch.registration);
  fetches_.erase(fetch.registration);
  graveyard_.bury(std::move(owned));
}

}  // namespace gw::proxy
