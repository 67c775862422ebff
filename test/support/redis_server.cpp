#include "test/support/redis_server.h"

#include <doctest/doctest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <unistd.h>

#include <memory>

namespace gw::it {

namespace {
// redis-server from the redis-server package, else the server inside redis-tools' redis-check-rdb
// (the same executable; it picks its mode from its name).
std::string serverExecutable() {
  for (const char* path : {"/usr/bin/redis-server", "/usr/bin/redis-check-rdb"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  FAIL("no redis-server (or redis-check-rdb) in /usr/bin: run scripts/setup.sh");
  return {};
}

std::string replyText(const redisReply* reply) {
  switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string(reply->str, reply->len);
    case REDIS_REPLY_ERROR:
      return "ERR: " + std::string(reply->str, reply->len);
    case REDIS_REPLY_INTEGER:
      return std::to_string(reply->integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string text;
      for (std::size_t i = 0; i < reply->elements; ++i) {
        if (i) text += '\n';
        text += replyText(reply->element[i]);
      }
      return text;
    }
  }
  return "?";
}

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;
}  // namespace

RedisServer::RedisServer(std::vector<std::string> extraArgs) : extraArgs_(std::move(extraArgs)) {
  // The link's name makes the executable run as the server.
  binary_ = dir_.path() + "/redis-server";
  REQUIRE(::symlink(serverExecutable().c_str(), binary_.c_str()) == 0);
  // A port freePort() saw free may be taken by the time the server binds it: try a few.
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = freePort();
    start();
    if (process_) return;
  }
  FAIL("redis-server did not start on any of 5 free ports; see " << dir_.path() << "/redis.log");
}

RedisServer::~RedisServer() {
  if (process_) {
    resume();  // a paused server would not stop on SIGTERM
    process_->stop();
  }
}

void RedisServer::start() {
  std::vector<std::string> argv{binary_,
                                "--port",
                                std::to_string(port_),
                                "--bind",
                                "127.0.0.1",
                                "--save",
                                "",
                                "--appendonly",
                                "no",
                                "--dir",
                                dir_.path(),
                                "--logfile",
                                dir_.path() + "/redis.log"};
  argv.insert(argv.end(), extraArgs_.begin(), extraArgs_.end());
  process_.emplace(argv);
  const bool up = waitFor(
      [&] {
        if (!process_->running()) return true;
        Context c(redisConnect("127.0.0.1", port_));
        if (!c || c->err) return false;
        auto* reply = static_cast<redisReply*>(redisCommand(c.get(), "PING"));
        if (!reply) return false;
        // PING answers an error before AUTH when a password is set: the server is up all the same.
        freeReplyObject(reply);
        return true;
      },
      5000ms);
  if (!up || !process_->running()) process_.reset();
}

void RedisServer::kill() {
  REQUIRE(process_);
  process_->signal(SIGKILL);
  REQUIRE(process_->waitExit(5000ms).has_value());
  process_.reset();
}

void RedisServer::pause() {
  if (process_) process_->signal(SIGSTOP);
}

void RedisServer::resume() {
  if (process_) process_->signal(SIGCONT);
}

void RedisServer::restart() {
  REQUIRE_FALSE(process_);
  start();
  REQUIRE_MESSAGE(process_, "redis-server did not start again on port " << port_);
}

std::string RedisServer::call(std::initializer_list<std::string_view> argv) const {
  return call(std::vector<std::string>(argv.begin(), argv.end()));
}

std::string RedisServer::call(const std::vector<std::string>& argv) const {
  timeval timeout{2, 0};
  Context c(redisConnectWithTimeout("127.0.0.1", port_, timeout));
  REQUIRE_MESSAGE((c && !c->err), "cannot connect to redis on port " << port_);
  redisSetTimeout(c.get(), timeout);
  std::vector<const char*> words;
  std::vector<std::size_t> lengths;
  for (const std::string& word : argv) {
    words.push_back(word.data());
    lengths.push_back(word.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c.get(), int(words.size()), words.data(), lengths.data()));
  REQUIRE_MESSAGE(reply, "redis did not answer " << argv.front());
  std::string text = replyText(reply);
  freeReplyObject(reply);
  return text;
}

void waitRedisConnected(const Gateway& gw) {
  REQUIRE(waitFor(
      [&] {
        const std::string status = adminRequest(gw, "/status").body;
        return status.find("\"connecting\":0") != std::string::npos &&
               status.find("\"open\":0") != std::string::npos;
      },
      5000ms));
}

}  // namespace gw::it
