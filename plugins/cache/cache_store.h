#pragma once
// The response store shared by all workers, and the gate that coalesces concurrent misses.
// One mutex each, held only for map and LRU operations; entries are shared_ptr<const ...>, so a
// worker serving a hit keeps the bytes alive even if the entry is evicted meanwhile.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "plugins/cache/cache_key.h"
#include "plugins/cache/fields.h"
#include "plugins/cache/freshness.h"

namespace gw::plugins::cache {

struct StoredResponse {
  int status = 0;
  std::vector<Field> fields;  // as stored: see makeStoredResponse
  // Shared so that freshening from a 304 builds a new entry without copying the body.
  std::shared_ptr<const std::string> body;
  StoredMeta meta;
  std::vector<std::string> varyNames;  // see varyNames(): what its variant key is made of

  // Bytes charged to the store (fields + body + a fixed overhead); the store adds the keys.
  std::size_t size() const;
};

// A storable upstream response as the store keeps it: without the fields a cache must not store
// (RFC 9111 §3.1: hop-by-hop, Connection-nominated, Age), and without the fields a shared cache
// must not store (private="..." names, §5.2.2.7). `meta` comes from analyseResponse().
std::shared_ptr<const StoredResponse> makeStoredResponse(int status, const FieldsView& fields,
                                                         std::shared_ptr<const std::string> body,
                                                         StoredMeta meta);

struct StoreOptions {
  std::size_t maxBytes = 64 << 20;      // the whole store
  std::size_t maxEntryBytes = 1 << 20;  // one response; larger ones stream through uncached
};

struct StoreStats {
  std::size_t entries = 0;  // variants stored
  std::size_t bytes = 0;
  uint64_t inserts = 0;
  uint64_t evictions = 0;  // LRU evictions only (not replacements, invalidations, purges)
};

class CacheStore {
 public:
  explicit CacheStore(StoreOptions options) : options_(options) {}
  CacheStore(const CacheStore&) = delete;
  CacheStore& operator=(const CacheStore&) = delete;

  // Whether a response of this many bytes (so far) can ever be stored; check it before
  // buffering and while accumulating the body. No lock.
  bool admits(std::size_t bytes) const { return bytes <= entryLimit(); }
  std::size_t entryLimit() const { return std::min(options_.maxEntryBytes, options_.maxBytes); }

  // The stored response for the primary key whose variant matches this request (its values for
  // the stored response's Vary names), or null. Marks it recently used. Freshness is the
  // caller's business: a stale entry is returned too. `otherVariants`, if given, tells a miss
  // on an unknown key from one where only other variants are stored (RFC 9211 vary-miss).
  std::shared_ptr<const StoredResponse> lookup(std::string_view primary, const FieldsView& request,
                                               bool* otherVariants = nullptr);

  // Stores the response fetched for `request` under `key`, replacing the same variant. A
  // response whose Vary names differ from the stored variants' replaces them all (the origin
  // changed what it varies on). Evicts least recently used variants to fit. False if it does
  // not fit under the per-entry cap.
  bool insert(const RequestKey& key, const FieldsView& request,
              std::shared_ptr<const StoredResponse> response);

  // Drops every variant of a primary key; returns how many.
  std::size_t invalidate(std::string_view primary);
  // Drops every primary key whose URL part (RequestKey::url) is `url`, whatever the method or
  // configured request header values: RFC 9111 §4.4 after an unsafe method. Returns variants.
  std::size_t invalidateUrl(std::string_view url);
  // Admin purge: every entry whose host equals `host` (empty: any host) and whose path equals
  // `path` (any query, header values or variant), or starts with it when `prefix`. Returns
  // variants dropped. Walks the whole store (admin only).
  std::size_t purge(std::string_view host, std::string_view path, bool prefix);

  StoreStats stats() const;

 private:
  struct Node {
    std::string primary;
    std::string variantKey;
    std::shared_ptr<const StoredResponse> response;
    std::size_t bytes = 0;
  };
  using Lru = std::list<Node>;  // front: most recently used
  struct Primary {
    std::string url;
    std::string host;
    std::string path;
    std::vector<Lru::iterator> variants;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  using PrimaryMap = std::unordered_map<std::string, Primary, Hash, std::equal_to<>>;

  // All below: with mu_ held.
  void eraseVariant(PrimaryMap::iterator primary, std::size_t index);
  std::size_t erasePrimary(PrimaryMap::iterator primary);
  void evictToFit();

  const StoreOptions options_;
  mutable std::mutex mu_;
  PrimaryMap primaries_;
  std::unordered_map<std::string, std::vector<std::string>, Hash, std::equal_to<>> byUrl_;
  Lru lru_;
  StoreStats stats_;
};

// Request coalescing: concurrent misses on one key make one upstream fetch. The first caller
// leads and fetches; the others register a callback, run (on the leader's thread, outside the
// lock) when the leader finishes, which should post onto the waiter's own worker to look the
// store up again (and fetch itself if the leader's answer was not stored). A leader that gives
// up without an answer (its client left) tells the waiters so: they begin again, and one of
// them leads for the rest. Waiting time is the caller's to bound: on its timeout or death a
// waiter cancels.
class FetchGate {
 public:
  enum class Role : uint8_t {
    Leader,  // fetch, then finishFetch(key, ...) whatever happens (also when the request dies)
    Waiter,  // wait for the callback; cancel(key, id) if the request goes away first
    Alone,   // too many waiters already: fetch yourself, do not call finishFetch
  };
  enum class End : uint8_t {
    Answered,   // the leader has its answer: stored if it could be
    Abandoned,  // the leader gave up with nothing: waiters should beginFetch() again
  };
  using OnDone = std::function<void(End)>;
  struct Ticket {
    Role role = Role::Leader;
    uint64_t id = 0;  // Waiter: for cancel()
  };

  explicit FetchGate(std::size_t maxWaitersPerKey) : maxWaiters_(maxWaitersPerKey) {}

  // The callback is registered atomically with the decision, so a leader finishing at the same
  // moment cannot be missed; it is dropped unless the role is Waiter.
  Ticket beginFetch(std::string_view key, OnDone onDone);
  // True if the waiter was removed before its callback was taken; false if the callback has run
  // or is running (the waiter must then ignore what it posts).
  bool cancel(std::string_view key, uint64_t id);
  // Leader only: ends the fetch and runs every waiter's callback on this thread.
  void finishFetch(std::string_view key, End end = End::Answered);

  std::size_t inFlight() const;

 private:
  struct Waiter {
    uint64_t id;
    OnDone onDone;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  const std::size_t maxWaiters_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<Waiter>, Hash, std::equal_to<>> fetches_;
  uint64_t nextId_ = 1;
};

}  // namespace gw::plugins::cache
