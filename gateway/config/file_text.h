#pragma once
// Reads a configuration input whole (the configuration file, a plugin's schema file) within a
// size and a time bound, so that a path naming a directory, a device such as /dev/zero, a huge
// file or a FIFO nobody writes to is an error message, never a crash, an exhausted memory or a
// hang. A pipe (`-c <(envsubst < gateway.yaml.in)`) still works: it is read to its end.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace gw::config {

// How long a FIFO, a pipe or a terminal may take to deliver everything (a regular file never
// waits).
inline constexpr std::chrono::milliseconds kReadTimeout{5000};

// Reads the file at `path` into `out`, at most `maxBytes`. On failure returns why, in words that
// follow the path ("is a directory", "is larger than 4194304 bytes", "No such file or
// directory"), and `out` is unspecified.
std::optional<std::string> readFileBounded(const std::string& path, std::size_t maxBytes,
                                           std::string& out);

}  // namespace gw::config
