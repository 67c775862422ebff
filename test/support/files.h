#pragma once
// Files for unit tests: the repository root (for the shipped conf/ files), a temporary directory
// removed afterwards, and whole-file reads.

#include <doctest.h>
#include <stdlib.h>

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

}  // namespace gw::test
