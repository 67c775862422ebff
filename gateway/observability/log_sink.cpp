#include "gateway/observability/log_sink.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "gateway/core/log.h"

namespace gw::observability {

namespace {

constexpr std::size_t kMaxSpares = 8;

// O_NONBLOCK is on purpose: for regular files it changes nothing, for a FIFO it lets the writer
// wait in poll() where stop() can interrupt it (and a FIFO without a reader fails at startup
// with ENXIO instead of hanging in open()).
int openLogFile(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
}

std::string errnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

}  // namespace

std::unique_ptr<LogSink> LogSink::toStdout(std::size_t maxQueuedBytes) {
  struct stat st {};
  int fd = STDOUT_FILENO;
  bool owns = false;
  if (::fstat(STDOUT_FILENO, &st) == 0 && S_ISFIFO(st.st_mode)) {
    // A private non-blocking open file description of the same pipe: setting O_NONBLOCK on fd 1
    // itself would change it for every process sharing it (the shell, the supervisor).
    int own = ::open("/proc/self/fd/1", O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    if (own >= 0) {
      fd = own;
      owns = true;
    }
  }
  // journald's stdout stream is a socket: send() can be non-blocking per call.
  const Kind kind = S_ISSOCK(st.st_mode) ? Kind::Socket : Kind::Stream;
  return std::unique_ptr<LogSink>(new LogSink(fd, owns, kind, std::string(), maxQueuedBytes));
}

core::Result<std::unique_ptr<LogSink>> LogSink::toFile(std::string path,
                                                       std::size_t maxQueuedBytes) {
  int fd = openLogFile(path);
  if (fd < 0)
    return core::Error::internal("cannot open log file " + path + ": " + errnoText(errno));
  return std::unique_ptr<LogSink>(
      new LogSink(fd, true, Kind::Stream, std::move(path), maxQueuedBytes));
}

LogSink::LogSink(int fd, bool ownsFd, Kind kind, std::string path, std::size_t maxQueuedBytes)
    : fd_(fd),
      ownsFd_(ownsFd),
      kind_(kind),
      path_(std::move(path)),
      maxQueuedBytes_(maxQueuedBytes) {
  wakeFd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  writer_ = std::thread([this] { run(); });
}

LogSink::~LogSink() {
  stop();
  if (wakeFd_ >= 0) ::close(wakeFd_);
  if (ownsFd_) ::close(fd_);
}

bool LogSink::submit(std::string&& batch, std::size_t lines) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && queuedBytes_ + batch.size() <= maxQueuedBytes_) {
      queuedBytes_ += batch.size();
      queue_.push_back({std::move(batch), lines});
      lines = 0;
    }
  }
  if (lines != 0) {
    dropped_.fetch_add(lines, std::memory_order_relaxed);
    return false;
  }
  cv_.notify_one();
  return true;
}

std::string LogSink::takeSpare() {
  std::lock_guard lock(mu_);
  if (spares_.empty()) return {};
  std::string spare = std::move(spares_.back());
  spares_.pop_back();
  return spare;
}

void LogSink::reopen() {
  if (path_.empty()) return;
  {
    std::lock_guard lock(mu_);
    reopenRequested_ = true;
  }
  cv_.notify_one();
}

void LogSink::stop(std::chrono::milliseconds timeout) {
  if (!writer_.joinable()) return;
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
    cv_.notify_one();
    if (!doneCv_.wait_for(lock, timeout, [this] { return writerDone_; })) {
      abandon_.store(true);
      cv_.notify_one();
    }
  }
  if (abandon_.load() && wakeFd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wakeFd_, &one, sizeof one);
  }
  writer_.join();
}

void LogSink::run() {
  // Signals belong to the main thread; a blocked SIGPIPE also turns a vanished pipe reader into
  // EPIPE (a dropped batch) instead of killing the process.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return !queue_.empty() || reopenRequested_ || stopping_; });
    if (abandon_.load()) break;
    if (reopenRequested_) {
      reopenRequested_ = false;
      lock.unlock();
      reopenNow();
      lock.lock();
      continue;
    }
    if (queue_.empty()) break;  // stopping, all written
    Batch batch = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    const bool ok = writeAll(batch.data);
    (ok ? written_ : dropped_).fetch_add(batch.lines, std::memory_order_relaxed);
    lock.lock();
    queuedBytes_ -= batch.data.size();
    recycle(std::move(batch.data));
  }
  for (Batch& batch : queue_) {
    dropped_.fetch_add(batch.lines, std::memory_order_relaxed);
    queuedBytes_ -= batch.data.size();
  }
  queue_.clear();
  writerDone_ = true;
  doneCv_.notify_all();
}

bool LogSink::writeAll(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = kind_ == Kind::Socket
                          ? ::send(fd_, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL)
                          : ::write(fd_, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    const int err = n < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if ((err == EAGAIN || err == EWOULDBLOCK) && waitWritable()) continue;
    if (abandon_.load()) return false;
    if (!failing_) {
      failing_ = true;
      core::log::error("access log write failed; dropping lines until it recovers",
                       {{"path", path_.empty() ? std::string_view("stdout") : path_},
                        {"error", errnoText(err)}});
    }
    return false;
  }
  if (failing_) {
    failing_ = false;
    core::log::info("access log writes recovered");
  }
  return true;
}

// Waits for room in a stalled pipe or socket; false when stop() gave up on the backlog.
bool LogSink::waitWritable() {
  pollfd fds[2] = {{fd_, POLLOUT, 0}, {wakeFd_, POLLIN, 0}};
  for (;;) {
    const int n = ::poll(fds, wakeFd_ >= 0 ? 2 : 1, -1);
    if (abandon_.load()) return false;
    if (n < 0 && errno != EINTR) return false;
    if (n > 0 && fds[0].revents != 0) return true;  // writable, or an error the write will report
  }
}

void LogSink::reopenNow() {
  const int fd = openLogFile(path_);
  if (fd < 0) {
    core::log::error("access log reopen failed; still writing to the old file",
                     {{"path", path_}, {"error", errnoText(errno)}});
    return;
  }
  if (ownsFd_) ::close(fd_);
  fd_ = fd;
  ownsFd_ = true;
}

void LogSink::recycle(std::string&& data) {
  if (spares_.size() >= kMaxSpares) return;
  data.clear();
  spares_.push_back(std::move(data));
}

}  // namespace gw::observability
