#include "gateway/core/timeouts.h"

namespace gw::core {

const timeval* TimeoutCache::get(std::chrono::milliseconds duration) {
  long long ms = duration.count();
  auto found = cache_.find(ms);
  if (found != cache_.end()) return &found->second;
  timeval plain{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  const timeval* common = event_base_init_common_timeout(base_, &plain);
  return &cache_.emplace(ms, common ? *common : plain).first->second;
}

}  // namespace gw::core
