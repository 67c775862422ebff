#include "gateway/redis/connection.h"

// hiredis's libevent adapter: header-only (static functions), included in this file only.
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <openssl/evp.h>

#include <charconv>
#include <cstring>

#include "gateway/core/clock.h"
#include "gateway/core/fast_random.h"
#include "gateway/core/log.h"
#include "gateway/redis/script.h"

namespace gw::redis {
namespace {

using observability::RedisCommand;
using observability::RedisError;
using observability::RedisRejection;

timeval toTimeval(config::Duration duration) {
  const int64_t ms = duration.count();
  return {static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

bool isError(const redisReply* reply) { return reply->type == REDIS_REPLY_ERROR; }

bool startsWith(const redisReply* reply, std::string_view prefix) {
  return std::string_view(reply->str, reply->len).starts_with(prefix);
}

// What an EVAL of `script` is for, as the round-trip histogram labels it.
RedisCommand kindOf(const Script& script) {
  return script.name() == "rate_limit" ? RedisCommand::RateLimit : RedisCommand::Other;
}

RedisCommand kindOf(std::span<const std::string_view> argv) {
  if (argv.empty()) return RedisCommand::Other;
  if (argv[0] == "GET") return RedisCommand::CacheGet;
  if (argv[0] == "SET") return RedisCommand::CacheSet;
  return RedisCommand::Other;
}

// Handshake replies: which step each is, so that a failure is reported for what it is.
enum class Step : uint8_t { Auth, Setup };
constexpr Step kAuthStep = Step::Auth;
constexpr Step kSetupStep = Step::Setup;

}  // namespace

// A command in flight. Its keys and arguments are kept when it is an EVALSHA, so that NOSCRIPT
// can be answered by resending it as EVAL; recycled ops keep their buffers' capacity.
struct Connection::PendingOp : PendingCommand {
  PendingOp* previous = nullptr;  // in the queue of commands in flight, oldest first
  PendingOp* next = nullptr;
  int64_t sentUs = 0;
  RedisCommand kind = RedisCommand::Other;
  const Script* script = nullptr;  // set for EVALSHA / EVAL
  bool asEval = false;
  char keyCount[12] = {};
  std::string words;                 // the keys then the arguments, back to back
  std::vector<std::size_t> lengths;  // of each word
};

namespace {

// client.h's KeySpace: the prefix, and the first 16 bytes of SHA-256("gatewayd redis keys v1" ||
// key secret) as the digest key.
KeySpace keySpaceOf(const config::RedisConfig& config) {
  KeySpace keys;
  keys.prefix = config.key_prefix;
  const std::string input = "gatewayd redis keys v1" + config.key_secret;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(), nullptr);
  std::memcpy(keys.digestKey.data(), digest, keys.digestKey.size());
  return keys;
}

}  // namespace

Connection::Connection(event_base* base, const config::RedisConfig& config, std::string name,
                       observability::RedisMetrics& metrics, StateBoard* board, std::size_t worker)
    : base_(base),
      config_(config),
      keySpace_(keySpaceOf(config)),
      name_(std::move(name)),
      metrics_(metrics),
      board_(board),
      worker_(worker),
      breaker_({config.breaker_errors, config.half_open_probes, config.reconnect_initial.count(),
                config.reconnect_max.count()},
               core::FastRandom().next()),
      connectTimer_(evtimer_new(base, &Connection::onConnectTimer, this)),
      commandTimer_(evtimer_new(base, &Connection::onCommandTimer, this)),
      reconnectTimer_(evtimer_new(base, &Connection::onReconnectTimer, this)) {
  connect();
}

Connection::~Connection() {
  retired_ = true;
  // Null first: waiters called during the free get Down for any new command.
  if (redisAsyncContext* ac = ac_) {
    ac_ = nullptr;
    redisAsyncFree(ac);
  }
}

void Connection::retire() {
  retired_ = true;
  board_ = nullptr;
  evtimer_del(reconnectTimer_.get());
}

// ---- connecting ----

void Connection::connect() {
  if (connectedOnce_) ++metrics_.reconnects;
  connectedOnce_ = true;
  breaker_.connecting();
  setState(State::Connecting);
  redisAsyncContext* ac = config_.unix_path.empty()
                              ? redisAsyncConnect(config_.host.c_str(), config_.port)
                              : redisAsyncConnectUnix(config_.unix_path.c_str());
  if (ac == nullptr || ac->err) {
    const std::string why = ac ? ac->errstr : "out of memory";
    if (ac) redisAsyncFree(ac);
    metrics_.countError(RedisError::ConnectFailed);
    enterOpen(why);
    return;
  }
  ac->data = this;
  redisLibeventAttach(ac, base_);
  redisAsyncSetConnectCallback(ac, &Connection::onConnect);
  redisAsyncSetDisconnectCallback(ac, &Connection::onDisconnect);
  ac_ = ac;
  const timeval timeout = toTimeval(config_.connect_timeout);
  evtimer_add(connectTimer_.get(), &timeout);
  sendHandshake();
}

// Pipelined behind the connect: AUTH, SELECT, CLIENT SETNAME, SCRIPT LOAD; the connection is
// half-open when the last of them answered.
void Connection::sendHandshake() {
  handshakeLeft_ = 0;
  const auto sendStep = [&](std::span<const std::string_view> argv, const void* step) {
    if (sendArgv(argv, &Connection::onHandshakeReply, const_cast<void*>(step))) ++handshakeLeft_;
  };
  if (!config_.password.empty()) {
    if (config_.username.empty()) {
      const std::string_view auth[] = {"AUTH", config_.password};
      sendStep(auth, &kAuthStep);
    } else {
      const std::string_view auth[] = {"AUTH", config_.username, config_.password};
      sendStep(auth, &kAuthStep);
    }
  }
  if (config_.database != 0) {
    const std::string database = std::to_string(config_.database);
    const std::string_view select[] = {"SELECT", database};
    sendStep(select, &kSetupStep);
  }
  const std::string_view setName[] = {"CLIENT", "SETNAME", name_};
  sendStep(setName, &kSetupStep);
  for (const LoadedScript& loaded : scripts_) {
    const std::string_view load[] = {"SCRIPT", "LOAD", loaded.script->source()};
    sendStep(load, loaded.script);
  }
}

void Connection::onConnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Connection*>(ac->data);
  if (ac != self->ac_ || status == REDIS_OK) return;
  // hiredis frees the context after this call.
  self->metrics_.countError(RedisError::ConnectFailed);
  self->lost(ac->errstr);
}

void Connection::onDisconnect(const redisAsyncContext* ac, int /*status*/) {
  auto* self = static_cast<Connection*>(ac->data);
  // Ours only when nothing was pending (a pending command's null reply comes first).
  if (ac == self->ac_) self->lost("Redis closed the connection");
}

void Connection::onHandshakeReply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<Connection*>(ac->data);
  if (ac != self->ac_) return;  // a context we dropped: its handshake no longer matters
  const auto* answer = static_cast<const redisReply*>(reply);
  if (answer == nullptr) {
    self->metrics_.countError(RedisError::ConnectFailed);
    self->lost("the connection was lost during the handshake");
    return;
  }
  std::string problem;
  if (privdata == &kAuthStep && isError(answer)) {
    self->metrics_.countError(RedisError::AuthFailed);
    problem = "AUTH failed: " + std::string(answer->str, answer->len);
  } else if (isError(answer)) {
    self->metrics_.countError(RedisError::ConnectFailed);
    problem = "the handshake failed: " + std::string(answer->str, answer->len);
  } else if (privdata != &kSetupStep && privdata != &kAuthStep) {
    const auto* script = static_cast<const Script*>(privdata);
    if (std::string_view(answer->str, answer->len) != script->sha1()) {
      self->metrics_.countError(RedisError::ConnectFailed);
      problem = "SCRIPT LOAD of " + script->name() + " answered another SHA-1";
    }
  }
  if (!problem.empty()) {
    self->drop(problem);
    return;
  }
  if (--self->handshakeLeft_ > 0) return;
  evtimer_del(self->connectTimer_.get());
  self->breaker_.connected();
  self->setState(State::HalfOpen);
}

void Connection::onConnectTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  self->metrics_.countError(RedisError::ConnectFailed);
  self->drop("no connection and handshake within connect_timeout");
}

void Connection::onReconnectTimer(evutil_socket_t, short, void* arg) {
  static_cast<Connection*>(arg)->connect();
}

// ---- commands ----

void Connection::use(const Script& script) {
  if (loaded(script)) return;
  scripts_.push_back({&script, false});
  if (ac_ == nullptr) return;  // loaded by the next handshake
  const std::string_view load[] = {"SCRIPT", "LOAD", script.source()};
  if (state() == State::Connecting) {
    if (sendArgv(load, &Connection::onHandshakeReply, const_cast<Script*>(&script))) {
      ++handshakeLeft_;
    }
    return;
  }
  // Connected already: EVALSHA's NOSCRIPT path covers a load that fails.
  PendingOp* op = takeOp(nullptr, RedisCommand::Other);
  if (!send(load, op)) releaseOp(op);
}

void Connection::useScriptsOf(const Connection& other) {
  for (const LoadedScript& entry : other.scripts_) use(*entry.script);
}

Failure Connection::admit() {
  const State now = state();
  if (ac_ == nullptr || (now != State::Closed && now != State::HalfOpen)) {
    metrics_.countRejection(RedisRejection::Down);
    return Failure::Down;
  }
  if (pendingCount_ >= config_.max_pending) {
    metrics_.countRejection(RedisRejection::Overloaded);
    return Failure::Overloaded;
  }
  if (!breaker_.admit()) {
    metrics_.countRejection(RedisRejection::Down);
    return Failure::Down;
  }
  return Failure::None;
}

Failure Connection::eval(const Script& script, std::span<const std::string_view> keys,
                         std::span<const std::string_view> args, Waiter& waiter) {
  if (const Failure refused = admit(); refused != Failure::None) return refused;
  PendingOp* op = takeOp(&waiter, kindOf(script));
  op->script = &script;
  std::to_chars(op->keyCount, op->keyCount + sizeof op->keyCount - 1, keys.size());
  for (const auto words : {keys, args}) {
    for (std::string_view word : words) {
      op->words.append(word);
      op->lengths.push_back(word.size());
    }
  }
  const LoadedScript* entry = loaded(script);
  if (!sendEval(op, entry && entry->useEval)) {
    releaseOp(op);
    metrics_.countRejection(RedisRejection::Down);
    return Failure::Down;
  }
  return Failure::None;
}

Failure Connection::command(std::span<const std::string_view> argv, Waiter* waiter) {
  if (const Failure refused = admit(); refused != Failure::None) return refused;
  PendingOp* op = takeOp(waiter, kindOf(argv));
  if (!send(argv, op)) {
    releaseOp(op);
    metrics_.countRejection(RedisRejection::Down);
    return Failure::Down;
  }
  return Failure::None;
}

bool Connection::sendEval(PendingOp* op, bool useEval) {
  op->asEval = useEval;
  words_.clear();
  words_.push_back(useEval ? "EVAL" : "EVALSHA");
  words_.push_back(useEval ? op->script->source() : op->script->sha1());
  words_.push_back(op->keyCount);
  std::size_t at = 0;
  for (const std::size_t length : op->lengths) {
    words_.push_back(std::string_view(op->words).substr(at, length));
    at += length;
  }
  return send(words_, op);
}

bool Connection::sendArgv(std::span<const std::string_view> argv,
                          void (*callback)(redisAsyncContext*, void*, void*), void* privdata) {
  argv_.clear();
  argvLengths_.clear();
  for (std::string_view word : argv) {
    argv_.push_back(word.data());
    argvLengths_.push_back(word.size());
  }
  // hiredis copies the command into its output buffer here: the words need not outlive the call.
  return redisAsyncCommandArgv(ac_, callback, privdata, static_cast<int>(argv.size()), argv_.data(),
                               argvLengths_.data()) == REDIS_OK;
}

bool Connection::send(std::span<const std::string_view> argv, PendingOp* op) {
  if (!sendArgv(argv, &Connection::onCommandReply, op)) return false;
  op->sentUs = core::monotonicUs();
  op->next = nullptr;
  op->previous = tail_;
  (tail_ ? tail_->next : head_) = op;
  tail_ = op;
  ++pendingCount_;
  ++metrics_.pending;
  armCommandTimer();
  return true;
}

Connection::PendingOp* Connection::takeOp(Waiter* waiter, RedisCommand kind) {
  PendingOp* op;
  if (free_.empty()) {
    op = ops_.emplace_back(std::make_unique<PendingOp>()).get();
  } else {
    op = free_.back();
    free_.pop_back();
  }
  if (waiter) op->attach(*waiter);
  op->kind = kind;
  return op;
}

void Connection::releaseOp(PendingOp* op) {
  op->detach();
  op->script = nullptr;
  op->asEval = false;
  op->words.clear();
  op->lengths.clear();
  free_.push_back(op);
}

void Connection::onCommandReply(redisAsyncContext* ac, void* reply, void* privdata) {
  static_cast<Connection*>(ac->data)->commandReply(ac, static_cast<PendingOp*>(privdata),
                                                   static_cast<const redisReply*>(reply));
}

void Connection::commandReply(redisAsyncContext* ac, PendingOp* op, const redisReply* reply) {
  (op->previous ? op->previous->next : head_) = op->next;
  (op->next ? op->next->previous : tail_) = op->previous;
  --pendingCount_;
  --metrics_.pending;
  const int64_t now = core::monotonicUs();
  const bool current = ac_ != nullptr && ac == ac_;
  Failure failure = Failure::None;
  if (reply == nullptr) {
    if (current) lost("the connection was lost");
    const bool late = now - op->sentUs >= config_.command_timeout.count() * 1000;
    failure = late ? Failure::Timeout : Failure::Disconnected;
    metrics_.countError(late ? RedisError::Timeout : RedisError::Disconnected);
  } else {
    metrics_.round_trip[static_cast<std::size_t>(op->kind)].observe(
        static_cast<uint64_t>(now - op->sentUs));
    if (!isError(reply)) {
      if (op->asEval) loaded(*op->script)->useEval = false;
      if (current) {
        breaker_.succeeded();
        setState(breaker_.state());
      }
    } else if (op->script && !op->asEval && current && startsWith(reply, "NOSCRIPT")) {
      // The script cache was flushed (SCRIPT FLUSH, a restart behind the same connection):
      // the same command again as EVAL, which also caches the script anew.
      metrics_.countError(RedisError::NoScript);
      if (!loaded(*op->script)) scripts_.push_back({op->script, false});
      loaded(*op->script)->useEval = true;
      if (sendEval(op, true)) return;
      failure = Failure::Disconnected;
    } else {
      failure = Failure::ServerError;
      metrics_.countError(RedisError::ServerError);
      if (current && breaker_.failed()) {
        drop("error replies: " + std::string(reply->str, reply->len));
      }
    }
  }
  Waiter* waiter = op->detach();
  releaseOp(op);
  // Nothing of this connection's state is touched after the waiter's call: it may issue commands
  // (here), resume its exchange, or cancel other waiters.
  if (waiter) waiter->onReply(reply, failure);
}

void Connection::armCommandTimer() {
  // Lazily: the timer is set for the oldest command; when it fires it moves on to the oldest
  // still pending (deadlines only grow along the queue).
  if (head_ == nullptr || evtimer_pending(commandTimer_.get(), nullptr)) return;
  const int64_t leftUs = std::max<int64_t>(
      0, head_->sentUs + config_.command_timeout.count() * 1000 - core::monotonicUs());
  const timeval left{static_cast<time_t>(leftUs / 1'000'000),
                     static_cast<suseconds_t>(leftUs % 1'000'000)};
  evtimer_add(commandTimer_.get(), &left);
}

void Connection::onCommandTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->head_ == nullptr) return;
  if (core::monotonicUs() - self->head_->sentUs < self->config_.command_timeout.count() * 1000) {
    self->armCommandTimer();
    return;
  }
  // Redis answers in order: everything behind the late reply is late too. Drop the connection
  // (hiredis 1.x does the same on a command timeout).
  self->drop("no reply within command_timeout");
}

// ---- the breaker's transitions ----

void Connection::lost(std::string_view why) {
  ac_ = nullptr;  // hiredis frees it
  enterOpen(why);
}

void Connection::drop(std::string_view why) {
  redisAsyncContext* ac = ac_;
  ac_ = nullptr;
  enterOpen(why);
  // Runs the pending callbacks with null replies, now or when the callback on the stack returns.
  if (ac) redisAsyncFree(ac);
}

void Connection::enterOpen(std::string_view why) {
  evtimer_del(connectTimer_.get());
  evtimer_del(commandTimer_.get());
  const int64_t delayMs = breaker_.opened();
  if (!retired_) {
    const timeval delay = toTimeval(config::Duration(delayMs));
    evtimer_add(reconnectTimer_.get(), &delay);
  }
  if (setState(State::Open)) {
    const std::string retry = std::to_string(delayMs);
    core::log::warn("redis unreachable",
                    {{"address", config_.address}, {"reason", why}, {"retry_ms", retry}});
  }
}

bool Connection::setState(State state) {
  if (reported_ == state) return false;
  reported_ = state;
  if (board_) board_->set(worker_, state);
  if (state == State::Closed) core::log::info("redis connected", {{"address", config_.address}});
  return true;
}

Connection::LoadedScript* Connection::loaded(const Script& script) {
  for (LoadedScript& entry : scripts_) {
    if (entry.script == &script) return &entry;
  }
  return nullptr;
}

}  // namespace gw::redis
