#pragma once
// What a plugin sees of Redis: one connection per worker on the worker's own event loop, reached
// through plugin::Dispatcher::redis() (null without a `redis:` block). Commands never block: a
// command is queued and its reply comes later on the same worker, or it is refused at once when
// Redis is known to be unreachable, so a request never waits on a Redis that is down (the
// circuit breaker). Implemented on hiredis's async API (redis/connection.h); plugin unit tests use
// test::FakeRedis.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

struct redisReply;  // hiredis; only the implementation and the reply decoders include it

namespace gw::redis {

class Script;

// Why a command got no reply. Anything but None means the caller applies its own failure policy.
enum class Failure : uint8_t {
  None,
  Down,          // the breaker is open (or half-open and its probes are taken): nothing was sent
  Overloaded,    // max_pending commands are in flight on this worker: nothing was sent
  Timeout,       // sent, no reply within command_timeout (the connection is dropped)
  Disconnected,  // sent, the connection was lost before the reply
  ServerError,   // Redis answered with an error reply
  BadReply,      // a reply the caller could not decode (set by decoders, never by the client)
};

// The circuit breaker's state, one per worker connection.
enum class State : uint8_t {
  Connecting,  // connect and handshake in progress: commands get Down
  Closed,      // healthy: commands go out
  HalfOpen,    // reconnected: a few probe commands go out, the rest get Down
  Open,        // unreachable: commands get Down until the next reconnect attempt
};

std::string_view stateName(State state);
std::string_view failureName(Failure failure);

// A command's reply handler, embedded in whatever waits (the per-request plugin object). At most
// one command per waiter at a time.
class Waiter {
 public:
  Waiter() = default;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;
  virtual ~Waiter() { cancel(); }

  // Exactly once per accepted command. `reply` (null unless failure is None or ServerError) is
  // valid during the call only. The waiter is detached before the call: it may issue another
  // command, resume or end its exchange, or be destroyed inside onReply.
  virtual void onReply(const redisReply* reply, Failure failure) = 0;
  // Detaches from the command in flight: its reply, when it comes, is dropped (still timed and
  // counted). Harmless when not waiting. Call it before the waiter's owner goes away.
  void cancel() noexcept;
  bool waiting() const noexcept { return pending_ != nullptr; }

 private:
  friend class PendingCommand;
  class PendingCommand* pending_ = nullptr;
};

// The link between a command in flight and its waiter; the client owns it (a free list), the
// waiter points at it so that cancel() can cut the link.
class PendingCommand {
 public:
  void attach(Waiter& waiter) noexcept {
    waiter_ = &waiter;
    waiter.pending_ = this;
  }
  // The waiter to call, detached from this command (null: cancelled or fire and forget).
  Waiter* detach() noexcept {
    Waiter* waiter = waiter_;
    if (waiter) waiter->pending_ = nullptr;
    waiter_ = nullptr;
    return waiter;
  }

 private:
  friend class Waiter;
  Waiter* waiter_ = nullptr;
};

inline void Waiter::cancel() noexcept {
  if (pending_) pending_->detach();
}

// How every plugin names its keys, from the `redis:` block: all instances sharing a Redis must
// agree on it, so it is configuration, never drawn at random.
struct KeySpace {
  std::string prefix = "gw:";  // key_prefix, before every key
  // Keys the digests that stand for client identities in key names (SipHash-2-4), so Redis
  // never holds raw IPs or API keys: the first 16 bytes of SHA-256("gatewayd redis keys v1" ||
  // key secret), the secret from key_secret_file / key_secret_env ("" when none).
  std::array<uint8_t, 16> digestKey{};
};

class Client {
 public:
  virtual ~Client() = default;
  virtual State state() const = 0;
  virtual const KeySpace& keySpace() const = 0;
  // Loads `script` (SCRIPT LOAD) now and on every reconnect, so EVALSHA finds it. The script must
  // outlive the client (scripts are static objects).
  virtual void use(const Script& script) = 0;
  // None: queued; waiter.onReply runs exactly once later, never inside this call. Anything else:
  // nothing was sent and onReply will not run; the caller applies its policy at once.
  virtual Failure eval(const Script& script, std::span<const std::string_view> keys,
                       std::span<const std::string_view> args, Waiter& waiter) = 0;
  // Any other command; `waiter` null: fire and forget (the reply is counted and dropped).
  virtual Failure command(std::span<const std::string_view> argv, Waiter* waiter) = 0;
};

}  // namespace gw::redis
