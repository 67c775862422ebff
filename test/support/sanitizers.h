#pragma once

namespace gw::test {

// Whether this build runs under AddressSanitizer, for the tests that size their load or skip a
// measurement by it. GCC says so with __SANITIZE_ADDRESS__; clang 14 (the sanitized build's
// compiler) only through __has_feature.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace gw::test
