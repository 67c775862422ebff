#pragma once
// Upstream fetches no client waits for: a plugin asks for one through
// plugin::Context::fetchInBackground (the cache refreshing a stale entry while the client is
// answered from it, RFC 5861 §3). Each is one GET of the exchange's target, built like any
// forwarded request, sent on the route's upstream through the worker's pool, and bounded in
// time (a deadline over the whole fetch besides the route's timeouts), body bytes and number per
// worker. Nothing here knows what the plugin does with the answer. A fetch is not an exchange:
// it writes no access log line and counts neither for nor against a backend's health, so
// clients cannot eject a backend through it.

#include <cstddef>
#include <list>
#include <memory>
#include <span>

#include "gateway/core/graveyard.h"
#include "gateway/plugin/plugin.h"

namespace gw::proxy {

class Exchange;

class BackgroundFetches {
 public:
  // Fetches running at once on one worker; past it a plugin's request is refused.
  static constexpr std::size_t kMaxPerWorker = 64;

  explicit BackgroundFetches(core::Graveyard& graveyard);
  ~BackgroundFetches();  // aborts what still runs
  BackgroundFetches(const BackgroundFetches&) = delete;
  BackgroundFetches& operator=(const BackgroundFetches&) = delete;

  // Starts `request` for `exchange` (which may end at once: the fetch keeps nothing of it). False, and `request.done` never runs, when it cannot start: too many running, no usable
  // backend, or a connect that failed at once.
  bool start(Exchange& exchange, plugin::BackgroundRequest request);
  // Ends every running fetch, each `done` getting no response (the worker is going away).
  void abortAll();
  std::size_t running() const { return fetches_.size(); }

 private:
  class Fetch;
  friend class Fetch;
  // Takes a fetch that has ended out of the running list; freed after the callbacks unwind.
  void retire(Fetch& fetch);

  core::Graveyard& graveyard_;
  std::list<std::unique_ptr<Fetch>> fetches_;
};

}  // namespace gw::proxy
