#include "gateway/proxy/balance_key.h"

#include <doctest.h>

#include "gateway/proxy/upstream_request.h"

namespace gw::proxy {
namespace {

config::LoadBalancing hashOn(config::HashSource source, std::string name = {}) {
  config::LoadBalancing balancing;
  balancing.policy = config::BalancingPolicy::Hash;
  balancing.hash_source = source;
  balancing.hash_name = std::move(name);
  return balancing;
}

TEST_CASE("cookieValue finds one cookie among several, by its exact name") {
  CHECK(cookieValue("sid=abc", "sid") == "abc");
  CHECK(cookieValue("a=1; sid=abc; b=2", "sid") == "abc");
  CHECK(cookieValue("a=1;sid=abc", "sid") == "abc");
  CHECK(cookieValue("xsid=1; sid=2", "sid") == "2");
  CHECK(cookieValue("SID=1", "sid") == std::nullopt);
  CHECK(cookieValue("sid", "sid") == std::nullopt);
  CHECK(cookieValue("sid=", "sid") == "");
  CHECK(cookieValue("", "sid") == std::nullopt);
}

TEST_CASE("balanceKey hashes the named header's first value, whatever its case") {
  FieldList fields;
  fields.add("Accept", "*/*", http::FieldName::Other);
  fields.add("x-user", "alice", http::FieldName::Other);
  fields.add("X-User", "bob", http::FieldName::Other);
  const auto key = balanceKey(hashOn(config::HashSource::Header, "X-User"), ListFields{fields}, "");
  CHECK(key == upstream::balanceHash("alice"));
  CHECK(balanceKey(hashOn(config::HashSource::Header, "X-Tenant"), ListFields{fields}, "") ==
        std::nullopt);
}

TEST_CASE("balanceKey hashes a cookie from any Cookie field, and none without it") {
  FieldList fields;
  fields.add("Cookie", "theme=dark", http::FieldName::Other);
  fields.add("cookie", "lang=en; sid=s-42", http::FieldName::Other);
  const auto key = balanceKey(hashOn(config::HashSource::Cookie, "sid"), ListFields{fields}, "");
  CHECK(key == upstream::balanceHash("s-42"));
  CHECK(balanceKey(hashOn(config::HashSource::Cookie, "cart"), ListFields{fields}, "") ==
        std::nullopt);
}

TEST_CASE("balanceKey hashes the client's address") {
  FieldList fields;
  const auto balancing = hashOn(config::HashSource::ClientIp);
  CHECK(balanceKey(balancing, ListFields{fields}, "192.0.2.7") ==
        upstream::balanceHash("192.0.2.7"));
  CHECK(balanceKey(balancing, ListFields{fields}, "") == std::nullopt);
}

}  // namespace
}  // namespace gw::proxy
