#pragma once
// The input of the targets that play a peer (request: a client; response: a backend): byte 0
// holds the target's options, byte 1 the size of each read (0: everything in one read), and the
// rest is what the peer sends, handed over read by read as a socket would.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace gw::fuzz {

struct PeerInput {
  uint8_t options = 0;
  std::size_t readSize = 0;
  std::string_view bytes;

  static std::optional<PeerInput> of(const uint8_t* data, std::size_t size) {
    if (size < 2) return std::nullopt;
    return PeerInput{data[0], data[1], {reinterpret_cast<const char*>(data) + 2, size - 2}};
  }

  // Calls receive(read) for each read while it returns true (the gateway still reads).
  template <typename Receive>
  void deliver(Receive&& receive) const {
    std::string_view rest = bytes;
    while (!rest.empty()) {
      const std::size_t n = readSize == 0 ? rest.size() : std::min(readSize, rest.size());
      if (!receive(rest.substr(0, n))) return;
      rest.remove_prefix(n);
    }
  }
};

}  // namespace gw::fuzz
