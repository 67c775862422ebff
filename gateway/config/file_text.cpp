#include "gateway/config/file_text.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gateway/net/socket.h"

namespace gw::config {

std::optional<std::string> readFileBounded(const std::string& path, std::size_t maxBytes,
                                           std::string& out) {
  // Non-blocking: opening a FIFO for reading would otherwise wait for a writer, forever.
  const net::Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return std::strerror(errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return std::strerror(errno);
  if (S_ISDIR(info.st_mode)) return "is a directory";
  const std::string tooLarge = "is larger than " + std::to_string(maxBytes) + " bytes";
  if (S_ISREG(info.st_mode) && static_cast<std::size_t>(info.st_size) > maxBytes) return tooLarge;

  out.clear();
  const auto deadline = std::chrono::steady_clock::now() + kReadTimeout;
  char buffer[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n > 0) {
      // Devices and growing files report no useful size: the bound is on what was read.
      if (out.size() + static_cast<std::size_t>(n) > maxBytes) return tooLarge;
      out.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return std::nullopt;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return std::strerror(errno);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd readable{fd.get(), POLLIN, 0};
    const int ready = left.count() > 0 ? ::poll(&readable, 1, static_cast<int>(left.count())) : 0;
    if (ready == 0) {
      return "was not read to its end within " + std::to_string(kReadTimeout.count()) +
             "ms (a FIFO or terminal whose writer does not finish)";
    }
    if (ready < 0 && errno != EINTR) return std::strerror(errno);
  }
}

}  // namespace gw::config
