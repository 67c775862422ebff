#pragma once
// One worker's connection to Redis: a Client on hiredis's async API and its libevent adapter, on
// the worker's own event_base. Commands are pipelined (all those issued in one loop turn leave in
// one write); each waits at most `command_timeout`; the Breaker decides what may go out.
//
// hiredis 0.14 has neither a connect nor a command timeout, so both timers are ours. Its
// ownership rules are where the crash risks are, and this class keeps to them:
//  - a context whose connect fails, or that is lost (EOF, reset, protocol error), is freed by
//    hiredis itself: onConnect(error) or the first null reply tells us, and we only forget it;
//  - a context we drop (a timeout, too many errors, retirement, destruction) we free with
//    redisAsyncFree, after this connection already refuses new commands: the free runs every
//    pending callback with a null reply (at once, or when the callback on the stack returns), and
//    onDisconnect when it had connected;
//  - so a callback compares its context with ac_ and ignores a stale one (ac_ is null or newer).
// A pending command's hiredis privdata is its PendingOp, never its waiter: the op is unlinked and
// recycled before the waiter is called, and nothing is touched after the waiter returns (it may
// issue commands, resume or end its exchange, cancel other waiters).

#include <event2/event.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/core/libevent_ptr.h"
#include "gateway/observability/metrics.h"
#include "gateway/redis/breaker.h"
#include "gateway/redis/client.h"
#include "gateway/redis/state_board.h"

struct redisAsyncContext;

namespace gw::redis {

class Connection final : public Client {
 public:
  // Starts connecting at once. `name` goes to CLIENT SETNAME (e.g. "gatewayd-w0"); `metrics` (the
  // worker's, shared by the connections it replaces) and `board` outlive the connection; `worker`
  // is this connection's place on the board.
  Connection(event_base* base, const config::RedisConfig& config, std::string name,
             observability::RedisMetrics& metrics, StateBoard* board, std::size_t worker);
  // Every command still pending gets Disconnected (or Timeout when past its deadline).
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  State state() const override { return breaker_.state(); }
  const KeySpace& keySpace() const override { return keySpace_; }
  void use(const Script& script) override;
  Failure eval(const Script& script, std::span<const std::string_view> keys,
               std::span<const std::string_view> args, Waiter& waiter) override;
  Failure command(std::span<const std::string_view> argv, Waiter* waiter) override;

  // Uses every script `other` uses (a reload replaced `other` with this connection).
  void useScriptsOf(const Connection& other);
  const config::RedisConfig& config() const { return config_; }
  std::size_t pending() const { return pendingCount_; }
  // A reload replaced this connection: it stops reconnecting and leaves the state board to its
  // successor; the commands in flight still get their replies.
  void retire();

 private:
  struct PendingOp;
  struct LoadedScript {
    const Script* script;
    bool useEval;  // NOSCRIPT was seen: send EVAL until one succeeds
  };

  static void onConnect(const redisAsyncContext* ac, int status);
  static void onDisconnect(const redisAsyncContext* ac, int status);
  static void onHandshakeReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onCommandReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onConnectTimer(evutil_socket_t, short, void* arg);
  static void onCommandTimer(evutil_socket_t, short, void* arg);
  static void onReconnectTimer(evutil_socket_t, short, void* arg);

  void connect();
  void sendHandshake();
  void handshakeReply(redisAsyncContext* ac, const struct redisReply* reply, bool scriptLoad);
  void commandReply(redisAsyncContext* ac, PendingOp* op, const struct redisReply* reply);
  // Queues argv on the context; false when hiredis refused it (the context is going away).
  bool sendArgv(std::span<const std::string_view> argv,
                void (*callback)(redisAsyncContext*, void*, void*), void* privdata);
  // Queues a command for `op` and puts the op at the back of the commands in flight.
  bool send(std::span<const std::string_view> argv, PendingOp* op);
  bool sendEval(PendingOp* op, bool useEval);
  // Refuses a command before anything is sent: Down or Overloaded, counted.
  Failure admit();
  PendingOp* takeOp(Waiter* waiter, observability::RedisCommand kind);
  void releaseOp(PendingOp* op);
  void armCommandTimer();
  // The context is gone (hiredis frees it): Open, reconnect later. `why` is logged.
  void lost(std::string_view why);
  // We drop the context: Open first (so that waiters called during the free get Down for new
  // commands), then free it.
  void drop(std::string_view why);
  void enterOpen(std::string_view why);
  // Records a change on the board; false when `state` is what was recorded last.
  bool setState(State state);
  LoadedScript* loaded(const Script& script);

  event_base* base_;
  config::RedisConfig config_;
  KeySpace keySpace_;  // from config_: key_prefix, and the digest key from key_secret
  std::string name_;
  observability::RedisMetrics& metrics_;
  StateBoard* board_;
  std::size_t worker_;
  Breaker breaker_;
  std::optional<State> reported_;
  redisAsyncContext* ac_ = nullptr;  // null while Open (or before the first connect)
  bool retired_ = false;
  bool connectedOnce_ = false;
  std::size_t handshakeLeft_ = 0;
  std::vector<LoadedScript> scripts_;
  // Commands in flight, oldest first (Redis answers in order), and recycled ops.
  PendingOp* head_ = nullptr;
  PendingOp* tail_ = nullptr;
  std::size_t pendingCount_ = 0;
  std::vector<std::unique_ptr<PendingOp>> ops_;  // every op made, for their memory
  std::vector<PendingOp*> free_;
  // Scratch for building a command's argv without allocating per command.
  std::vector<const char*> argv_;
  std::vector<std::size_t> argvLengths_;
  std::vector<std::string_view> words_;
  core::EventPtr connectTimer_;
  core::EventPtr commandTimer_;
  core::EventPtr reconnectTimer_;
};

}  // namespace gw::redis
