#include "plugins/cache/redis_tier.h"

#include <doctest.h>

#include <string>
#include <vector>

namespace gw::plugins::cache {
namespace {

using Fields = std::vector<Field>;
constexpr int64_t kT = 1795000000;

std::shared_ptr<const StoredResponse> response(const Fields& fields, std::string body,
                                               int64_t receivedAt = kT) {
  FieldSpan view(fields);
  return makeStoredResponse(200, view, std::make_shared<const std::string>(std::move(body)),
                            analyseResponse(200, view, receivedAt, receivedAt, Policy()));
}

std::string encoded(const StoredResponse& stored, std::string_view host = "h.test",
                    std::string_view path = "/p") {
  std::string out;
  REQUIRE(encodeRedisEntry(stored, host, path, out));
  return out;
}

std::shared_ptr<const StoredResponse> decodedResponse(std::string_view value,
                                                      std::string_view host = "h.test",
                                                      std::string_view path = "/p") {
  auto decoded = decodeRedisValue(value, host, path, Policy());
  if (!decoded) return nullptr;
  auto* stored = std::get_if<std::shared_ptr<const StoredResponse>>(&*decoded);
  return stored ? *stored : nullptr;
}

bool isHex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

TEST_CASE("redis tier: key names are keyed digests under the prefix, variants on the entry's tag") {
  redis::KeySpace keys;
  keys.prefix = "app:";
  const std::string entry = redisEntryKey(keys, "GET\x03host/secret-path?token=abc");
  REQUIRE(entry.size() == std::string("app:c:{}").size() + 32);
  CHECK(entry.starts_with("app:c:{"));
  CHECK(entry.ends_with("}"));
  CHECK(isHex(entry.substr(7, 32)));
  CHECK(entry.find("secret") == std::string::npos);
  CHECK(redisEntryKey(keys, "GET\x03host/secret-path?token=abc") == entry);
  CHECK(redisEntryKey(keys, "GET\x03host/secret-path?token=abd") != entry);

  const std::string variant = redisVariantKey(keys, entry, 7, "\x01gzip");
  CHECK(variant.starts_with(entry + ":"));
  CHECK(isHex(variant.substr(entry.size() + 1)));
  CHECK(variant.size() == entry.size() + 33);
  CHECK(redisVariantKey(keys, entry, 7, "\x02br") != variant);
  // The same variant under a stub of another generation is another key.
  CHECK(redisVariantKey(keys, entry, 8, "\x01gzip") != variant);

  // Another key secret names every key differently: digests cannot be guessed without it.
  redis::KeySpace other = keys;
  other.digestKey[0] = 1;
  CHECK(redisEntryKey(other, "GET\x03host/secret-path?token=abc") != entry);
}

TEST_CASE("redis tier: an entry round-trips with its status, fields, body and age") {
  // Received 30 s ago with Age: 10, so it is 40 s old out of max-age=100.
  const auto stored = response({{"Cache-Control", "max-age=100"},
                                {"ETag", "\"e\""},
                                {"Age", "10"},
                                {"X-Custom", "a\r\nb is not here, just bytes: \x01\xff"}},
                               std::string("body\0with nul", 13), kT - 30);
  const auto back = decodedResponse(encoded(*stored));
  REQUIRE(back);
  CHECK(back->status == 200);
  CHECK(*back->body == std::string("body\0with nul", 13));
  REQUIRE(back->fields.size() == stored->fields.size());
  for (std::size_t i = 0; i < back->fields.size(); ++i) {
    CHECK(back->fields[i].name == stored->fields[i].name);
    CHECK(back->fields[i].value == stored->fields[i].value);
  }
  CHECK(back->meta.etag == "\"e\"");
  CHECK(back->meta.lifetime == 100);
  CHECK(currentAge(back->meta, kT) == 40);
  CHECK(currentAge(back->meta, kT) == currentAge(stored->meta, kT));
}

TEST_CASE("redis tier: a Vary stub round-trips its names") {
  const std::vector<std::string> names{"accept-encoding", "accept-language"};
  std::string value;
  REQUIRE(encodeRedisVaryStub(names, 0x1122334455667788, "h.test", "/p", value));
  const auto decoded = decodeRedisValue(value, "h.test", "/p", Policy());
  REQUIRE(decoded);
  const auto* stub = std::get_if<RedisVaryStub>(&*decoded);
  REQUIRE(stub);
  CHECK(stub->varyNames == names);
  CHECK(stub->generation == 0x1122334455667788);
}

TEST_CASE("redis tier: a malformed, truncated, foreign or mis-keyed value is refused") {
  const auto stored = response({{"Cache-Control", "max-age=100"}}, "payload");
  const std::string good = encoded(*stored);
  REQUIRE(decodedResponse(good));
  CHECK_FALSE(decodedResponse(""));
  CHECK_FALSE(decodedResponse("garbage"));
  CHECK_FALSE(decodedResponse("gwc2" + good.substr(4)));  // another version
  for (std::size_t cut : {std::size_t{8}, good.size() / 2, good.size() - 1}) {
    CHECK_FALSE(decodedResponse(good.substr(0, cut)));
  }
  CHECK_FALSE(decodedResponse(good + "x"));  // trailing bytes
  // A value under the right key but written for another URL is no answer to this one.
  CHECK_FALSE(decodedResponse(good, "other.test", "/p"));
  CHECK_FALSE(decodedResponse(good, "h.test", "/q"));
  // A length that claims more than there is.
  std::string huge = good;
  const std::size_t fieldCount = std::string("gwc1 R\nh.test\n/p\n").size() + 2 + 24;
  huge[fieldCount + 3] = '\x7f';
  CHECK_FALSE(decodedResponse(huge));
  // A host or path with a line break cannot be written: the head would be ambiguous.
  std::string out;
  CHECK_FALSE(encodeRedisEntry(*stored, "h.test", "/a\nb", out));
  CHECK_FALSE(encodeRedisVaryStub(std::vector<std::string>{"x"}, 1, "h\n", "/p", out));
}

TEST_CASE("redis tier: PX covers the remaining freshness and the stale windows") {
  const int64_t now = kT;
  CHECK(redisLifetimeMs(response({{"Cache-Control", "max-age=100"}}, "")->meta, Policy(), now) ==
        100000);
  CHECK(redisLifetimeMs(response({{"Cache-Control", "max-age=100"}}, "", kT - 40)->meta, Policy(),
                        now) == 60000);
  CHECK(redisLifetimeMs(response({{"Cache-Control", "max-age=100"}}, "", kT - 100)->meta, Policy(),
                        now) == 0);
  CHECK(redisLifetimeMs(
            response({{"Cache-Control", "max-age=10, stale-while-revalidate=50"}}, "")->meta,
            Policy(), now) == 60000);
  Policy withStaleIfError;
  withStaleIfError.staleIfErrorDefault = 20;
  CHECK(redisLifetimeMs(response({{"Cache-Control", "max-age=10"}}, "")->meta, withStaleIfError,
                        now) == 30000);
}

TEST_CASE("redis tier: the SCAN pattern escapes the prefix's glob characters") {
  redis::KeySpace keys;
  CHECK(redisScanPattern(keys) == "gw:c:{*");
  keys.prefix = "a*b?[c]\\:";
  CHECK(redisScanPattern(keys) == "a\\*b\\?\\[c\\]\\\\:c:{*");
}

}  // namespace
}  // namespace gw::plugins::cache
