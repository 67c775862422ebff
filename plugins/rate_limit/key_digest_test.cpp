#include "plugins/rate_limit/key_digest.h"

#include <doctest.h>

#include <string>

namespace gw::plugins::rate_limit {
namespace {

// The reference key 00 01 .. 0f.
constexpr SipKey kReferenceKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

// Bytes 0, 1, .. n - 1: the reference implementation's test messages.
std::string counting(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i));
  return s;
}

// The digest as the reference prints it: lo then hi, each little-endian, in hex.
std::string hex(const Digest& d) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint64_t word : {d.lo, d.hi}) {
    for (int i = 0; i < 8; ++i, word >>= 8) {
      out.push_back(kDigits[(word >> 4) & 0xf]);
      out.push_back(kDigits[word & 0xf]);
    }
  }
  return out;
}

Digest digestOf(std::string_view bytes, const SipKey& key = kReferenceKey) {
  SipHasher h(key);
  h.update(bytes);
  return h.finish();
}

TEST_CASE("key_digest: SipHash-2-4-128 matches the reference vectors") {
  // From the reference implementation's vectors.h; also what
  // `openssl mac -macopt hexkey:000102030405060708090a0b0c0d0e0f -macopt size:16 SIPHASH` prints.
  CHECK(hex(digestOf(counting(0))) == "a3817f04ba25a8e66df67214c7550293");
  CHECK(hex(digestOf(counting(1))) == "da87c1d86b99af44347659119b22fc45");
  CHECK(hex(digestOf(counting(8))) == "3b62a9ba6258f5610f83e264f31497b4");
  CHECK(hex(digestOf(counting(15))) == "5493e99933b0a8117e08ec0f97cfc3d9");
  CHECK(hex(digestOf(counting(64))) == "1eaf077dc0d4cd3f8cad4d383658a74b");
}

TEST_CASE("key_digest: fed in pieces, the digest is that of the concatenation") {
  const std::string message = counting(64);
  for (std::size_t first = 0; first <= message.size(); ++first) {
    for (std::size_t second : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{9}}) {
      if (first + second > message.size()) continue;
      SipHasher h(kReferenceKey);
      h.update(std::string_view(message).substr(0, first));
      h.update(std::string_view(message).substr(first, second));
      h.update(std::string_view(message).substr(first + second));
      CHECK(h.finish() == digestOf(message));
    }
  }
}

TEST_CASE("key_digest: the secret key changes every digest; random keys differ") {
  const SipKey a = SipKey::random();
  const SipKey b = SipKey::random();
  CHECK_FALSE((a.k0 == b.k0 && a.k1 == b.k1));
  CHECK_FALSE(digestOf("api-key", a) == digestOf("api-key", b));
  CHECK(digestOf("api-key", a) == digestOf("api-key", a));
}

}  // namespace
}  // namespace gw::plugins::rate_limit

namespace gw::plugins::rate_limit {

TEST_CASE("key_digest: a salted digest hash is stable per table and differs between tables") {
  const SaltedDigestHash a;
  const SaltedDigestHash b;
  const Digest d{0x1234, 0x5678};
  CHECK(a(d) == a(d));
  CHECK(a(d) != b(d));                       // 2^-64 to fail
  CHECK(a(d) != a(Digest{0x1234, 0x5679}));  // the high word counts too
}

}  // namespace gw::plugins::rate_limit
