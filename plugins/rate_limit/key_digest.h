#pragma once
// What the rate-limit table stores instead of a key: a 128-bit SipHash-2-4 digest under a secret
// key drawn from getrandom() when the table is made. SipHash is a pseudo-random function built for
// short inputs such as hash-table keys (Aumasson & Bernstein, 2012; Python's str hash, Rust's
// HashMap and the Linux kernel use it): it needs no allocation and, on a 40-byte key, takes about
// a third of the time of SHA-256. Without the secret a client can neither find two keys with the
// same digest nor pick keys that crowd one shard or bucket (hash flooding).
//
// Two distinct keys share a digest with probability about n^2 / 2^129 among n keys (1e-23 for
// 1e8 keys); the table then treats them as one key, so the two clients share one window.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gw::plugins::rate_limit {

struct Digest {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const Digest&) const = default;
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
  void rounds(int n);

  uint64_t v0_, v1_, v2_, v3_;
  uint64_t tail_ = 0;          // bytes not yet compressed, little-endian
  std::size_t tailBytes_ = 0;  // 0..7
  uint64_t length_ = 0;
};

}  // namespace gw::plugins::rate_limit
