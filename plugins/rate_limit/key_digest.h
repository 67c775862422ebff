#pragma once
// What the rate-limit table stores instead of a key: a 128-bit SipHash-2-4 digest under a secret
// key drawn from getrandom() when the table is made. SipHash is a pseudo-random function built for
// short inputs such as hash-table keys (Aumasson & Bernstein, 2012; Python's str hash, Rust's
// HashMap and the Linux kernel use it): it needs no allocation or library context, and a two-part
// key of 33 bytes costs about 560 instructions (callgrind), less than software SHA-256 spends on
// its one 64-byte block. Without the secret a client can neither find two keys with the
// same digest nor pick keys that crowd one shard or bucket (hash flooding).
//
// Two distinct keys share a digest with probability about n^2 / 2^129 among n keys (1e-23 for
// 1e8 keys); the table then treats them as one key, so the two clients share one window.

#include <endian.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace gw::plugins::rate_limit {

struct Digest {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const Digest&) const = default;
};

// For hash tables keyed by digests under a secret key: such a digest is pseudo-random already,
// its low word is a hash.
struct DigestHash {
  std::size_t operator()(const Digest& d) const noexcept { return d.lo; }
};

struct SipKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
  static SipKey random();  // from getrandom() (see core::FastRandom)
};

// SipHash-2-4 with its 128-bit output, fed in pieces: the digest of the pieces' concatenation.
class SipHasher {
 public:
  explicit SipHasher(const SipKey& key);
  void update(std::string_view bytes);
  Digest finish();  // once; lo and hi are the two output words, little-endian on the wire

 private:
  void compress(uint64_t word);
  template <int kRounds>
  void rounds();

  uint64_t v0_, v1_, v2_, v3_;
  uint64_t tail_ = 0;          // bytes not yet compressed, little-endian
  std::size_t tailBytes_ = 0;  // 0..7
  uint64_t length_ = 0;
};

// Inline: the hot path hashes a few dozen bytes per request in several pieces, and keeping the
// state in registers across them cuts the cost by 30% (callgrind, 790 -> 560 instructions).

inline SipHasher::SipHasher(const SipKey& key)
    : v0_(key.k0 ^ 0x736f6d6570736575ULL),
      v1_(key.k1 ^ 0x646f72616e646f6dULL ^ 0xee),  // 0xee: the 128-bit output variant
      v2_(key.k0 ^ 0x6c7967656e657261ULL),
      v3_(key.k1 ^ 0x7465646279746573ULL) {}

template <int kRounds>
inline void SipHasher::rounds() {
  for (int i = 0; i < kRounds; ++i) {
    v0_ += v1_;
    v1_ = std::rotl(v1_, 13) ^ v0_;
    v0_ = std::rotl(v0_, 32);
    v2_ += v3_;
    v3_ = std::rotl(v3_, 16) ^ v2_;
    v0_ += v3_;
    v3_ = std::rotl(v3_, 21) ^ v0_;
    v2_ += v1_;
    v1_ = std::rotl(v1_, 17) ^ v2_;
    v2_ = std::rotl(v2_, 32);
  }
}

inline void SipHasher::compress(uint64_t word) {
  v3_ ^= word;
  rounds<2>();
  v0_ ^= word;
}

namespace key_digest_detail {

inline uint64_t loadWord(const char* p) {
  uint64_t word = 0;
  std::memcpy(&word, p, sizeof word);
  return le64toh(word);
}

// Fewer than 8 bytes as a little-endian word: byte by byte, as a call to memcpy with a variable
// length would cost more than the hashing of a short key.
inline uint64_t loadPartial(const char* p, std::size_t n) {
  uint64_t word = 0;
  for (std::size_t i = n; i-- > 0;) word = word << 8 | static_cast<uint8_t>(p[i]);
  return word;
}

}  // namespace key_digest_detail

inline void SipHasher::update(std::string_view bytes) {
  length_ += bytes.size();
  if (tailBytes_ > 0) {
    const std::size_t take = std::min(8 - tailBytes_, bytes.size());
    tail_ |= key_digest_detail::loadPartial(bytes.data(), take) << (8 * tailBytes_);
    tailBytes_ += take;
    bytes.remove_prefix(take);
    if (tailBytes_ < 8) return;
    compress(tail_);
    tail_ = 0;
    tailBytes_ = 0;
  }
  for (; bytes.size() >= 8; bytes.remove_prefix(8)) {
    compress(key_digest_detail::loadWord(bytes.data()));
  }
  tail_ = key_digest_detail::loadPartial(bytes.data(), bytes.size());
  tailBytes_ = bytes.size();
}

inline Digest SipHasher::finish() {
  compress(tail_ | (length_ << 56));
  v2_ ^= 0xee;
  rounds<4>();
  Digest d;
  d.lo = v0_ ^ v1_ ^ v2_ ^ v3_;
  v1_ ^= 0xdd;
  rounds<4>();
  d.hi = v0_ ^ v1_ ^ v2_ ^ v3_;
  return d;
}

// For hash tables keyed by digests whose key may be known (Redis key names: the key secret is
// optional): hashed again under a key of this table's own, so that nobody can pick keys that
// crowd one bucket.
class SaltedDigestHash {
 public:
  std::size_t operator()(const Digest& d) const noexcept {
    SipHasher hasher(salt_);
    char bytes[2 * sizeof(uint64_t)];
    const uint64_t words[] = {htole64(d.lo), htole64(d.hi)};
    std::memcpy(bytes, words, sizeof bytes);
    hasher.update({bytes, sizeof bytes});
    return hasher.finish().lo;
  }

 private:
  SipKey salt_ = SipKey::random();
};

}  // namespace gw::plugins::rate_limit
