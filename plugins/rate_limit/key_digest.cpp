#include "plugins/rate_limit/key_digest.h"

#include "gateway/core/fast_random.h"

namespace gw::plugins::rate_limit {

SipKey SipKey::random() {
  core::FastRandom random;
  return {random.next(), random.next()};
}

}  // namespace gw::plugins::rate_limit
