#pragma once
// The cache's second tier in Redis (`store: redis`): what its keys are called and what their
// values hold. Every instance sharing a Redis must agree on both, so both are versioned and
// derived only from configuration (redis::KeySpace) and the request key.
//
// Keys, under KeySpace::prefix:
//   c:{D}      the entry of primary key P when it has no Vary names, else a stub listing them
//   c:{D}:V    the entry of one variant: V stands for the stub's generation and the variant key
//              (cache_key.h); a stub written anew (after a miss or an invalidation removed it)
//              has a new generation, so variants stored before can never be found again
// D and V are keyed digests (HMAC-SHA-256 under KeySpace::digestKey, 128 bits in hex), so key
// names reveal neither URLs nor the header values a key may hold; the braces are a Redis Cluster
// hash tag keeping a primary's stub and variants on one slot. The common case (no Vary) costs one
// GET; a varying resource costs two (stub, then its variant).
//
// A value (version 1): "gwc1 R\n" or "gwc1 V\n", the host and path of the entry on a line each
// (what the admin purge matches, kPurgeScript), then binary fields: little-endian integers,
// strings length-prefixed. R: status, request and response time, Age, fields, body. V: the
// generation, the Vary names. Freshness is recomputed from these by the reader's policy, as for a
// fresh response.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gateway/redis/client.h"
#include "plugins/cache/cache_key.h"
#include "plugins/cache/cache_store.h"
#include "plugins/cache/freshness.h"

namespace gw::plugins::cache {

// `c:{D}` for a primary key.
std::string redisEntryKey(const redis::KeySpace& keys, std::string_view primary);
// `c:{D}:V` for one of its variants (`entryKey` as redisEntryKey returned).
std::string redisVariantKey(const redis::KeySpace& keys, std::string_view entryKey,
                            uint64_t generation, std::string_view variantKey);

// A response as Redis keeps it. False when it cannot be kept: a host or path with a line break.
bool encodeRedisEntry(const StoredResponse& response, std::string_view host, std::string_view path,
                      std::string& out);
// The stub of a varying resource.
bool encodeRedisVaryStub(std::span<const std::string> varyNames, uint64_t generation,
                         std::string_view host, std::string_view path, std::string& out);

struct RedisVaryStub {
  std::vector<std::string> varyNames;
  uint64_t generation = 0;
};
// What a value decodes to; nullopt for anything malformed, of another version, or of another
// host or path than the request's (never trusted, never an error).
using RedisValue = std::variant<std::shared_ptr<const StoredResponse>, RedisVaryStub>;
std::optional<RedisValue> decodeRedisValue(std::string_view value, std::string_view host,
                                           std::string_view path, const Policy& policy);

// How long Redis keeps an entry (SET ... PX): its remaining freshness lifetime plus the longest
// stale-while-revalidate / stale-if-error window that may still serve it. 0: not worth storing.
int64_t redisLifetimeMs(const StoredMeta& meta, const Policy& policy, int64_t nowSec);

// The SCAN pattern every cache key of this key space matches (the prefix glob-escaped).
std::string redisScanPattern(const redis::KeySpace& keys);

// Run with EVAL on a batch of keys from SCAN; ARGV: host ("" any), path, "1" for a prefix.
// UNLINKs each key whose value's host and path match; returns how many. Each value's head is
// read with GETRANGE (bounded), never the whole body.
extern const std::string_view kPurgeScript;

}  // namespace gw::plugins::cache
