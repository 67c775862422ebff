#include "gateway/upstream/maglev.h"

#include <doctest.h>

#include <cmath>
#include <string>
#include <vector>

namespace gw::upstream {
namespace {

std::vector<std::string> names(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back("10.0.0." + std::to_string(i + 1) + ":80");
  return out;
}

// Entries each backend owns.
std::vector<std::size_t> shares(const MaglevTable& table, std::size_t backends) {
  std::vector<std::size_t> out(backends);
  for (uint64_t slot = 0; slot < table.size(); ++slot) ++out[table.backendFor(slot)];
  return out;
}

TEST_CASE("balanceHash is a fixed function: every worker and instance maps a key alike") {
  // Pinned values: changing the function would move every sticky client at the next upgrade.
  CHECK(balanceHash("") == 0xf52a15e9a9b5e89bULL);
  CHECK(balanceHash("user-1") == balanceHash(std::string("user-") + "1"));
  CHECK(balanceHash("user-1") != balanceHash("user-2"));
  CHECK(rehash(1) != rehash(2));
}

TEST_CASE("Maglev: equal weights own equal shares of the table, within 1%") {
  const MaglevTable table(names(5), {1, 1, 1, 1, 1});
  const double fair = static_cast<double>(table.size()) / 5;
  for (std::size_t owned : shares(table, 5)) {
    CHECK(std::abs(static_cast<double>(owned) - fair) / fair < 0.01);
  }
}

TEST_CASE("Maglev: weights 1:2:3 own entries in that proportion, within 2%") {
  const MaglevTable table(names(3), {1, 2, 3});
  const std::vector<std::size_t> owned = shares(table, 3);
  for (std::size_t i = 0; i < 3; ++i) {
    const double expected = static_cast<double>(table.size()) * static_cast<double>(i + 1) / 6;
    CHECK(std::abs(static_cast<double>(owned[i]) - expected) / expected < 0.02);
  }
}

TEST_CASE("Maglev: a table depends on the backends' names, not their order") {
  std::vector<std::string> forward = names(4);
  std::vector<std::string> backward(forward.rbegin(), forward.rend());
  const MaglevTable a(forward, {1, 1, 1, 1});
  const MaglevTable b(backward, {1, 1, 1, 1});
  for (uint64_t key = 0; key < 10'000; ++key) {
    const uint64_t hash = balanceHash(std::to_string(key));
    REQUIRE(forward[a.backendFor(hash)] == backward[b.backendFor(hash)]);
  }
}

TEST_CASE("Maglev: a small prime table is filled completely, every entry a backend") {
  const MaglevTable table(names(3), {5, 1, 2}, 101);
  const std::vector<std::size_t> owned = shares(table, 3);
  CHECK(owned[0] + owned[1] + owned[2] == 101);
  CHECK(owned[0] > owned[2]);
  CHECK(owned[2] > owned[1]);
}

}  // namespace
}  // namespace gw::upstream
