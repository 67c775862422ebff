#pragma once
// The standard Prometheus process_* values, sampled from /proc at scrape time (admin thread only).

#include <cstdint>
#include <string>

namespace gw::observability {

struct ProcessSample {
  uint64_t resident_memory_bytes = 0;
  uint64_t virtual_memory_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;            // soft RLIMIT_NOFILE
  uint64_t cpu_micros = 0;         // user + system
  uint64_t start_time_micros = 0;  // since the Unix epoch
};

// Reads PROC_ROOT/self/stat, PROC_ROOT/stat (btime) and PROC_ROOT/self/fd, plus getrlimit.
// A value that cannot be read stays 0; the root is a parameter so tests can feed a fake tree.
ProcessSample sampleProcess(const std::string& procRoot = "/proc");

}  // namespace gw::observability
