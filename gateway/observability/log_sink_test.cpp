#include "gateway/observability/log_sink.h"
#include "test/support/files.h"

#include <doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace obs = gw::observability;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using gw::test::readFile;
using gw::test::splitLines;
using gw::test::TempDir;

namespace {

// Polls a condition the sink's writer thread will make true; bounded, never a bare sleep.
bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::string drainFd(int fd) {
  std::string all;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
    all.append(buf, static_cast<std::size_t>(n));
  return all;
}

// `lines` lines of exactly `width` bytes each (newline included), tagged so they can be checked.
std::string makeBatch(int tag, std::size_t lines, std::size_t width = 64) {
  std::string batch;
  for (std::size_t i = 0; i < lines; ++i) {
    std::string line = "batch " + std::to_string(tag) + " line " + std::to_string(i) + " ";
    line.resize(width - 1, 'x');
    batch += line;
    batch += '\n';
  }
  return batch;
}

std::unique_ptr<obs::LogSink> openFile(const std::string& path,
                                       std::size_t cap = obs::LogSink::kDefaultMaxQueuedBytes) {
  auto sink = obs::LogSink::toFile(path, cap);
  REQUIRE_MESSAGE(sink.ok(), (sink.ok() ? "" : sink.error().message));
  return std::move(*sink);
}

}  // namespace

TEST_CASE("LogSink writes whole batches from many threads to a file") {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  auto sink = openFile(path);

  constexpr int kThreads = 4;
  constexpr int kBatches = 200;
  constexpr std::size_t kLines = 10;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::string batch = sink->takeSpare();
        batch += makeBatch(t * kBatches + b, kLines);
        sink->submit(std::move(batch), kLines);
      }
    });
  }
  for (auto& producer : producers) producer.join();
  sink->stop();

  CHECK(sink->writtenLines() == kThreads * kBatches * kLines);
  CHECK(sink->droppedLines() == 0);
  const auto lines = splitLines(readFile(path));
  REQUIRE(lines.size() == kThreads * kBatches * kLines);
  for (const std::string& line : lines) {
    REQUIRE(line.size() == 63);
    REQUIRE(line.rfind("batch ", 0) == 0);
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777 & ~0640) == 0);  // never wider than 0640 (umask may narrow it)
}

TEST_CASE("LogSink hands back emptied batch strings") {
  TempDir dir;
  auto sink = openFile(dir.path + "/a.log");
  CHECK(sink->takeSpare().capacity() < 1000);  // nothing recycled yet
  std::string batch = makeBatch(1, 100);
  REQUIRE(sink->submit(std::move(batch), 100));
  REQUIRE(waitFor([&] { return sink->writtenLines() == 100; }));
  // The writer recycles just after counting; wait for the spare instead of assuming it is there.
  std::string spare;
  REQUIRE(waitFor([&] {
    spare = sink->takeSpare();
    return spare.capacity() >= 6400;
  }));
  CHECK(spare.empty());
}

TEST_CASE("LogSink::reopen moves writing to a new file at the path (logrotate)") {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  const std::string rotated = dir.path + "/access.log.1";
  auto sink = openFile(path);

  REQUIRE(sink->submit(makeBatch(1, 5), 5));
  REQUIRE(waitFor([&] { return sink->writtenLines() == 5; }));
  REQUIRE(::rename(path.c_str(), rotated.c_str()) == 0);
  REQUIRE(sink->submit(makeBatch(2, 3), 3));  // before reopen(): still the renamed file
  REQUIRE(waitFor([&] { return sink->writtenLines() == 8; }));
  sink->reopen();
  REQUIRE(sink->submit(makeBatch(3, 7), 7));
  sink->stop();

  CHECK(sink->writtenLines() == 15);
  const auto old = splitLines(readFile(rotated));
  const auto fresh = splitLines(readFile(path));
  REQUIRE(old.size() == 8);
  REQUIRE(fresh.size() == 7);
  CHECK(old.front().rfind("batch 1 ", 0) == 0);
  CHECK(old.back().rfind("batch 2 ", 0) == 0);
  for (const std::string& line : fresh) CHECK(line.rfind("batch 3 ", 0) == 0);
}

TEST_CASE("LogSink::reopen keeps the old file when the path cannot be opened") {
  TempDir dir;
  const std::string sub = dir.path + "/logs";
  REQUIRE(::mkdir(sub.c_str(), 0700) == 0);
  const std::string path = sub + "/access.log";
  const std::string moved = dir.path + "/moved.log";
  auto sink = openFile(path);
  REQUIRE(sink->submit(makeBatch(1, 2), 2));
  REQUIRE(waitFor([&] { return sink->writtenLines() == 2; }));
  REQUIRE(::rename(path.c_str(), moved.c_str()) == 0);
  REQUIRE(::rmdir(sub.c_str()) == 0);  // the path's directory is gone: reopen must fail
  sink->reopen();
  REQUIRE(sink->submit(makeBatch(2, 3), 3));
  sink->stop();
  CHECK(sink->writtenLines() == 5);
  CHECK(splitLines(readFile(moved)).size() == 5);
}

TEST_CASE("LogSink drops instead of blocking when a pipe nobody reads is full") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  constexpr std::size_t kCap = 256 * 1024;
  auto sink = openFile("/proc/self/fd/" + std::to_string(fds[1]), kCap);

  constexpr int kBatches = 200;
  constexpr std::size_t kLines = 128;  // 128 x 64 B = 8 KiB per batch
  uint64_t rejected = 0;
  auto slowest = Clock::duration::zero();
  const auto start = Clock::now();
  for (int b = 0; b < kBatches; ++b) {
    std::string batch = makeBatch(b, kLines);
    const auto before = Clock::now();
    const bool accepted = sink->submit(std::move(batch), kLines);
    slowest = std::max(slowest, Clock::now() - before);
    if (!accepted) {
      rejected += kLines;
      CHECK(batch.size() == kLines * 64);  // a rejected batch stays with the caller
    }
  }
  CHECK(Clock::now() - start < 5s);
  CHECK(slowest < 1s);  // generous for loaded CI; a blocking submit would never return
  // 64 KiB pipe + 256 KiB queue hold at most ~41 of the 200 batches.
  CHECK(rejected >= 150 * kLines);
  CHECK(sink->droppedLines() == rejected);
  CHECK(sink->writtenLines() <= 64 * 1024 / 64);

  // stop() cannot flush into the stalled pipe: it gives up after its timeout and counts the rest.
  const auto stopStart = Clock::now();
  sink->stop(50ms);
  CHECK(Clock::now() - stopStart < 2s);
  CHECK(sink->writtenLines() + sink->droppedLines() == kBatches * kLines);
  CHECK_FALSE(sink->submit(makeBatch(0, 1), 1));
  CHECK(sink->writtenLines() + sink->droppedLines() == kBatches * kLines + 1);

  REQUIRE(::fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
  const std::string piped = drainFd(fds[0]);
  CHECK(piped.size() >= sink->writtenLines() * 64);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("LogSink counts batches as dropped when the pipe reader goes away (EPIPE)") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  auto sink = openFile("/proc/self/fd/" + std::to_string(fds[1]));
  ::close(fds[1]);  // the sink has its own open file description
  constexpr int kBatches = 40;
  constexpr std::size_t kLines = 128;
  for (int b = 0; b < kBatches; ++b) REQUIRE(sink->submit(makeBatch(b, kLines), kLines));
  ::close(fds[0]);  // reader gone while the writer is blocked or mid-queue: no SIGPIPE death
  REQUIRE(
      waitFor([&] { return sink->writtenLines() + sink->droppedLines() == kBatches * kLines; }));
  CHECK(sink->droppedLines() > 0);
  sink->stop();
}

TEST_CASE("LogSink counts write errors (ENOSPC on /dev/full) as dropped and carries on") {
  auto sink = openFile("/dev/full");
  for (int b = 0; b < 3; ++b) REQUIRE(sink->submit(makeBatch(b, 10), 10));
  sink->stop();
  CHECK(sink->writtenLines() == 0);
  CHECK(sink->droppedLines() == 30);
}

TEST_CASE("LogSink::toFile reports an unopenable path") {
  auto sink = obs::LogSink::toFile("/nonexistent-dir/access.log");
  REQUIRE_FALSE(sink.ok());
  CHECK(sink.error().message.find("/nonexistent-dir/access.log") != std::string::npos);
}

namespace {

void checkStdoutSink(bool useSocket) {
  int fds[2];
  if (useSocket) {
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  } else {
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  }
  const int readEnd = fds[0];
  const int writeEnd = fds[1];

  // No doctest assertion may print while fd 1 is redirected.
  std::cout.flush();
  std::fflush(stdout);
  const int savedStdout = ::dup(STDOUT_FILENO);
  REQUIRE(savedStdout >= 0);
  const bool redirected = ::dup2(writeEnd, STDOUT_FILENO) == STDOUT_FILENO;
  uint64_t written = 0;
  bool stillOpen = false;
  if (redirected) {
    auto sink = obs::LogSink::toStdout();
    sink->submit(makeBatch(7, 4), 4);
    sink->stop();
    written = sink->writtenLines();
    sink.reset();
    stillOpen = ::write(STDOUT_FILENO, "end\n", 4) == 4;
  }
  ::dup2(savedStdout, STDOUT_FILENO);
  ::close(savedStdout);
  ::close(writeEnd);

  REQUIRE(redirected);
  CHECK(written == 4);
  CHECK(stillOpen);
  const auto lines = splitLines(drainFd(readEnd));
  ::close(readEnd);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].rfind("batch 7 line 0 ", 0) == 0);
  CHECK(lines[4] == "end");
}

}  // namespace

TEST_CASE("LogSink::toStdout writes to fd 1 and leaves it open") {
  SUBCASE("stdout is a pipe") { checkStdoutSink(false); }
  SUBCASE("stdout is a socket (journald)") { checkStdoutSink(true); }
}
