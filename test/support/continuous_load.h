#pragma once
// Load that keeps running while a test restarts or upgrades gatewayd: client threads sending one
// request after another until stopped (bounded in count and time), half of them on keep-alive
// connections, half on a new connection per request. Every request that does not get its 200 is
// recorded with the reason. No doctest assertion is made on the client threads.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gw::it {

class ContinuousLoad {
 public:
  struct Options {
    uint16_t port = 0;
    int keepAliveClients = 2;
    int newConnectionClients = 2;
    // Taken in turn; each must be answered 200 with a Content-Length body.
    std::vector<std::string> targets = {"/bytes/64", "/delay/20"};
    int requestsPerConnection = 50;  // keep-alive clients then open a new one
    int maxRequestsPerClient = 20000;
    std::chrono::milliseconds maxDuration{120000};
    std::chrono::milliseconds responseTimeout{10000};
  };

  explicit ContinuousLoad(Options options);
  ~ContinuousLoad() { stop(); }
  ContinuousLoad(const ContinuousLoad&) = delete;
  ContinuousLoad& operator=(const ContinuousLoad&) = delete;

  void stop();
  uint64_t answered() const { return answered_; }
  // Sent again on a new connection because the server closed a reused keep-alive connection
  // before any byte of the answer, as HTTP clients do (RFC 9112, 9.3.1): not a failure.
  uint64_t retried() const { return retried_; }
  uint64_t failed() const { return failed_; }
  // "answered 720, sent again 3, failed 1: client 2, new connection, /bytes/64: connect:
  // Connection refused; ..." with the reasons of the first failures.
  std::string report() const;
  // Waits until `more` requests beyond those answered now have been answered.
  bool waitAnsweredMore(uint64_t more, std::chrono::milliseconds timeout) const;

 private:
  void run(int client, bool keepAlive);
  void fail(std::string why);

  Options options_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> answered_{0};
  std::atomic<uint64_t> retried_{0};
  std::atomic<uint64_t> failed_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> failures_;
  std::vector<std::thread> clients_;
};

}  // namespace gw::it
