#pragma once
// What every fuzz target shares. An invariant that does not hold is a finding like a crash: it
// names itself on stderr and aborts, and libFuzzer keeps the input that did it.

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string_view>

// FUZZ_REQUIRE(condition, what): `what` says in words what broke (printed with the condition).
#define FUZZ_REQUIRE(condition, what)                                         \
  do {                                                                        \
    if (!(condition)) ::gw::fuzz::fail(#condition, what, __FILE__, __LINE__); \
  } while (false)

namespace gw::fuzz {

// What a target prints after a broken invariant, to show how it came about (each peer's bytes).
inline std::function<void()>& failureContext() {
  static std::function<void()> context;
  return context;
}

[[noreturn]] inline void fail(const char* condition, std::string_view what, const char* file,
                              int line) {
  std::fprintf(stderr, "fuzz invariant broken at %s:%d: %.*s\n  (%s)\n", file, line,
               static_cast<int>(what.size()), what.data(), condition);
  if (failureContext()) failureContext()();
  std::abort();
}

}  // namespace gw::fuzz
