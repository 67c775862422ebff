#include "gateway/observability/process_metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <string_view>

namespace gw::observability {

namespace {

bool readSmallFile(const std::string& path, std::string& out) {
  out.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[4096];
  ssize_t got = 0;
  while ((got = ::read(fd, buffer, sizeof buffer)) > 0) {
    out.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return got == 0;
}

bool parseUnsigned(std::string_view text, uint64_t& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

// Field N (1-based, as in proc(5)) of /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself contain spaces and ')', so counting starts after the LAST ')'.
std::string_view statField(std::string_view stat, int field) {
  const std::size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return {};
  std::string_view rest = stat.substr(close + 1);
  for (int current = 3;; ++current) {
    const std::size_t begin = rest.find_first_not_of(" \n");
    if (begin == std::string_view::npos) return {};
    rest.remove_prefix(begin);
    const std::size_t end = std::min(rest.find_first_of(" \n"), rest.size());
    if (current == field) return rest.substr(0, end);
    rest.remove_prefix(end);
  }
}

uint64_t bootTimeSeconds(const std::string& procRoot) {
  std::string stat;
  if (!readSmallFile(procRoot + "/stat", stat)) return 0;
  constexpr std::string_view kKey = "\nbtime ";
  const std::size_t at = stat.find(kKey);
  if (at == std::string::npos) return 0;
  std::string_view value = std::string_view(stat).substr(at + kKey.size());
  value = value.substr(0, value.find('\n'));
  uint64_t seconds = 0;
  return parseUnsigned(value, seconds) ? seconds : 0;
}

uint64_t countOpenFds(const std::string& procRoot) {
  DIR* dir = ::opendir((procRoot + "/self/fd").c_str());
  if (dir == nullptr) return 0;
  const int own = ::dirfd(dir);  // open only because we are counting; not the process's own fd
  uint64_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    uint64_t fd = 0;
    if (parseUnsigned(entry->d_name, fd) && static_cast<int>(fd) != own) ++count;
  }
  ::closedir(dir);
  return count;
}

}  // namespace

ProcessSample sampleProcess(const std::string& procRoot) {
  ProcessSample sample;
  const auto ticksPerSecond = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
  const auto pageBytes = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const auto ticksToMicros = [&](uint64_t ticks) {
    return ticks / ticksPerSecond * 1'000'000 + ticks % ticksPerSecond * 1'000'000 / ticksPerSecond;
  };

  std::string stat;
  if (readSmallFile(procRoot + "/self/stat", stat)) {
    uint64_t utime = 0, stime = 0, starttime = 0, vsize = 0, rssPages = 0;
    if (parseUnsigned(statField(stat, 14), utime) && parseUnsigned(statField(stat, 15), stime)) {
      sample.cpu_micros = ticksToMicros(utime + stime);
    }
    if (parseUnsigned(statField(stat, 23), vsize)) sample.virtual_memory_bytes = vsize;
    if (parseUnsigned(statField(stat, 24), rssPages)) {
      sample.resident_memory_bytes = rssPages * pageBytes;
    }
    const uint64_t btime = bootTimeSeconds(procRoot);
    if (btime != 0 && parseUnsigned(statField(stat, 22), starttime)) {
      sample.start_time_micros = btime * 1'000'000 + ticksToMicros(starttime);
    }
  }
  sample.open_fds = countOpenFds(procRoot);
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) sample.max_fds = limit.rlim_cur;
  return sample;
}

}  // namespace gw::observability
