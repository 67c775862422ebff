#pragma once
// Files for unit tests: the repository root (for the shipped conf/ files), a temporary directory
// removed afterwards, whole-file reads, and what a piece of code wrote to stderr.

#include <doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace gw::test {

// test/meson.build defines GW_SOURCE_ROOT for the unit test binary.
inline std::filesystem::path sourceRoot() { return GW_SOURCE_ROOT; }

struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/gw-unit-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream all;
  all << in.rdbuf();
  return all.str();
}

inline std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Runs fn with stderr (the error log) sent to a temporary file; returns what was written, also
// by other threads meanwhile.
template <typename Fn>
std::string captureStderr(Fn fn) {
  char path[] = "/tmp/gw-stderr-XXXXXX";
  const int file = ::mkstemp(path);
  REQUIRE(file >= 0);
  ::unlink(path);
  std::fflush(stderr);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(file, STDERR_FILENO);
  fn();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string text;
  char buf[4096];
  ssize_t n;
  ::lseek(file, 0, SEEK_SET);
  while ((n = ::read(file, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  ::close(file);
  return text;
}

}  // namespace gw::test
