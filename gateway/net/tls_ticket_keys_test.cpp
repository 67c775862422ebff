#include "gateway/net/tls_ticket_keys.h"

#include <doctest.h>

#include <cstring>

namespace gw::net {
namespace {

TEST_CASE("TicketKeys: a new key every lifetime, the previous one still opens tickets") {
  using Clock = TicketKeys::Clock;
  const Clock::time_point start{};
  TicketKeys keys(start);
  const TicketKeys::Key first = keys.current(start);
  bool renew = true;
  REQUIRE(keys.find(first.name, start + std::chrono::minutes(59), renew));
  CHECK_FALSE(renew);
  CHECK(std::memcmp(keys.current(start + std::chrono::minutes(59)).name, first.name, 16) == 0);

  const auto later = start + TicketKeys::kLifetime;
  const TicketKeys::Key second = keys.current(later);
  CHECK(std::memcmp(second.name, first.name, 16) != 0);
  const auto opened = keys.find(first.name, later, renew);
  REQUIRE(opened);
  CHECK(renew);  // sealed with the previous key: the client gets a fresh ticket
  CHECK(std::memcmp(opened->aes, first.aes, sizeof first.aes) == 0);

  // One lifetime later the first key is gone, the second is the previous one.
  const auto muchLater = later + TicketKeys::kLifetime;
  CHECK_FALSE(keys.find(first.name, muchLater, renew));
  CHECK(keys.find(second.name, muchLater, renew));
  CHECK(renew);
  // Unused for two lifetimes: nothing old opens.
  CHECK_FALSE(
      keys.find(keys.current(muchLater).name, muchLater + 2 * TicketKeys::kLifetime, renew));
}

}  // namespace
}  // namespace gw::net
