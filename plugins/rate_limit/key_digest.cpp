#include "plugins/rate_limit/key_digest.h"

#include <endian.h>

#include <bit>
#include <cstring>

#include "gateway/core/fast_random.h"

namespace gw::plugins::rate_limit {

SipKey SipKey::random() {
  core::FastRandom random;
  return {random.next(), random.next()};
}

SipHasher::SipHasher(const SipKey& key)
    : v0_(key.k0 ^ 0x736f6d6570736575ULL),
      v1_(key.k1 ^ 0x646f72616e646f6dULL ^ 0xee),  // 0xee: the 128-bit output variant
      v2_(key.k0 ^ 0x6c7967656e657261ULL),
      v3_(key.k1 ^ 0x7465646279746573ULL) {}

void SipHasher::rounds(int n) {
  for (int i = 0; i < n; ++i) {
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

void SipHasher::compress(uint64_t word) {
  v3_ ^= word;
  rounds(2);
  v0_ ^= word;
}

void SipHasher::update(std::string_view bytes) {
  length_ += bytes.size();
  const auto takeByte = [&] {
    tail_ |= static_cast<uint64_t>(static_cast<uint8_t>(bytes.front())) << (8 * tailBytes_++);
    bytes.remove_prefix(1);
  };
  if (tailBytes_ > 0) {
    while (!bytes.empty() && tailBytes_ < 8) takeByte();
    if (tailBytes_ < 8) return;
    compress(tail_);
    tail_ = 0;
    tailBytes_ = 0;
  }
  for (; bytes.size() >= 8; bytes.remove_prefix(8)) {
    uint64_t word = 0;
    std::memcpy(&word, bytes.data(), sizeof word);
    compress(le64toh(word));
  }
  while (!bytes.empty()) takeByte();
}

Digest SipHasher::finish() {
  compress(tail_ | (length_ << 56));
  v2_ ^= 0xee;
  rounds(4);
  Digest d;
  d.lo = v0_ ^ v1_ ^ v2_ ^ v3_;
  v1_ ^= 0xdd;
  rounds(4);
  d.hi = v0_ ^ v1_ ^ v2_ ^ v3_;
  return d;
}

}  // namespace gw::plugins::rate_limit
