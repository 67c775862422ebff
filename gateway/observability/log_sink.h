#pragma once
// The process-wide destination of log batches (stdout or a file). Workers hand over whole
// batches of lines; one writer thread does the write(2) calls, so a slow disk or a stalled pipe
// never blocks a worker: when the queue is full the batch is dropped and counted instead.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gateway/core/error.h"

namespace gw::observability {

class LogSink {
 public:
  static constexpr std::size_t kDefaultMaxQueuedBytes = 8 * 1024 * 1024;

  // Writes to fd 1, which is never closed. Cannot fail.
  static std::unique_ptr<LogSink> toStdout(std::size_t maxQueuedBytes = kDefaultMaxQueuedBytes);
  // Opens path (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0640) now, so a bad path fails at
  // startup rather than in the writer thread.
  static core::Result<std::unique_ptr<LogSink>> toFile(
      std::string path, std::size_t maxQueuedBytes = kDefaultMaxQueuedBytes);

  ~LogSink();  // stop(kDefaultStopTimeout) if not stopped yet
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  // Queues a batch of complete lines. Never waits for I/O: if the queued bytes (including the
  // batch being written) would exceed the cap, or the sink is stopped, the batch is left in the
  // caller's string, its lines are counted as dropped and false is returned.
  bool submit(std::string&& batch, std::size_t lines);

  // An emptied string from an earlier batch (capacity kept), or an empty one; lets a producer
  // swap buffers without allocating.
  std::string takeSpare();

  // The writer reopens the path before its next write (log rotation; SIGUSR1). No-op for stdout.
  void reopen();

  // Writes what is queued, for at most `timeout`; what is still queued (or blocked in a write)
  // then is dropped and counted. Joins the writer. Idempotent; call from one thread. A write to
  // a blocking stdout (tty, regular file) cannot be interrupted and is waited for.
  static constexpr std::chrono::milliseconds kDefaultStopTimeout{2000};
  void stop(std::chrono::milliseconds timeout = kDefaultStopTimeout);

  uint64_t writtenLines() const { return written_.load(std::memory_order_relaxed); }
  uint64_t droppedLines() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Batch {
    std::string data;
    std::size_t lines = 0;
  };
  enum class Kind : uint8_t { Stream, Socket };  // Socket: send(MSG_DONTWAIT|MSG_NOSIGNAL)

  LogSink(int fd, bool ownsFd, Kind kind, std::string path, std::size_t maxQueuedBytes);
  void run();
  bool writeAll(std::string_view data);
  bool waitWritable();
  void reopenNow();
  void recycle(std::string&& data);

  int fd_;  // writer thread only (reopen swaps it)
  bool ownsFd_;
  const Kind kind_;
  const std::string path_;  // empty for stdout
  const std::size_t maxQueuedBytes_;
  int wakeFd_ = -1;  // eventfd: interrupts a writer waiting for a stalled fd when stop() gives up

  std::mutex mu_;
  std::condition_variable cv_;      // writer: work arrived / reopen / stop
  std::condition_variable doneCv_;  // stop(): writer finished
  std::deque<Batch> queue_;
  std::vector<std::string> spares_;
  std::size_t queuedBytes_ = 0;  // queued + the batch in write
  bool reopenRequested_ = false;
  bool stopping_ = false;
  bool writerDone_ = false;
  std::atomic<bool> abandon_{false};  // stop() timed out: drop everything, exit now

  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  bool failing_ = false;  // writer-only: log a write error once per streak
  std::thread writer_;
};

}  // namespace gw::observability
