#include "gateway/observability/process_metrics.h"

#include <doctest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

using gw::observability::ProcessSample;
using gw::observability::sampleProcess;

TEST_CASE("sampleProcess reads sane values for this process") {
  const ProcessSample sample = sampleProcess();
  CHECK(sample.resident_memory_bytes > 0);
  CHECK(sample.virtual_memory_bytes >= sample.resident_memory_bytes);
  CHECK(sample.open_fds >= 3);  // at least stdin, stdout, stderr
  CHECK(sample.max_fds >= sample.open_fds);
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  CHECK(sample.start_time_micros > 0);
  // btime is whole seconds and starttime has tick resolution, so allow a couple of seconds.
  CHECK(sample.start_time_micros <= static_cast<uint64_t>(now) + 2'000'000);
  CHECK(sample.start_time_micros + 24ull * 3600 * 1'000'000 > static_cast<uint64_t>(now));
}

TEST_CASE("sampleProcess parses a fake /proc, including a command name with ') '") {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("gw_fake_proc_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "self" / "fd");
  for (const char* fd : {"0", "1", "2", "9"}) std::ofstream(root / "self" / "fd" / fd) << "";
  const uint64_t tick = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // Fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14)
  // stime(15) cutime cstime priority nice threads itrealvalue starttime(22) vsize(23) rss(24) ...
  std::ofstream(root / "self" / "stat")
      << "42 (evil) (name) S 1 42 42 0 -1 4194560 100 0 0 0 " << 3 * tick << " " << tick / 2
      << " 0 0 20 0 3 0 " << 10 * tick + tick / 4 << " 123456789 50 18446744073709551615 1 1\n";
  std::ofstream(root / "stat") << "cpu  1 2 3 4\nintr 5\nbtime 1700000000\nprocesses 9\n";

  const ProcessSample sample = sampleProcess(root.string());
  fs::remove_all(root);
  CHECK(sample.cpu_micros == 3'000'000 + (tick / 2) * 1'000'000 / tick);
  CHECK(sample.virtual_memory_bytes == 123456789);
  CHECK(sample.resident_memory_bytes == 50 * page);
  CHECK(sample.open_fds == 4);
  CHECK(sample.start_time_micros == 1'700'000'010'000'000 + (tick / 4) * 1'000'000 / tick);
}

TEST_CASE("sampleProcess leaves unreadable values at 0") {
  const ProcessSample sample = sampleProcess("/nonexistent-proc-root");
  CHECK(sample.resident_memory_bytes == 0);
  CHECK(sample.cpu_micros == 0);
  CHECK(sample.open_fds == 0);
  CHECK(sample.start_time_micros == 0);
  CHECK(sample.max_fds > 0);  // from getrlimit, not /proc
}
