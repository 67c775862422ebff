#include "gateway/core/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "gateway/core/json.h"

namespace gw::core::log {

namespace {
// Slots a message may take, from its hash on: a table this sparse rarely needs more than one.
constexpr std::size_t kProbes = 8;

std::string_view levelName(Level level) {
  switch (level) {
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
  }
  return "error";
}

void appendTimestamp(std::string& out) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm parts;
  gmtime_r(&tv.tv_sec, &parts);
  char buf[40];
  std::size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &parts);
  n += std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(tv.tv_usec / 1000));
  out.append(buf, n);
}

uint64_t hashOf(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;  // FNV-1a
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

// The coarse clock costs no system call, and a window is a second long.
int64_t monotonicMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
}

void writeLine(Level level, std::string_view message, std::initializer_list<Field> fields) {
  std::string line = "{\"time\":\"";
  appendTimestamp(line);
  line += "\",\"level\":\"";
  line += levelName(level);
  line += "\",\"msg\":\"";
  appendJsonEscaped(line, message);
  line += '"';
  for (const auto& [key, value] : fields) {
    line += ",\"";
    appendJsonEscaped(line, key);
    line += "\":\"";
    appendJsonEscaped(line, value);
    line += '"';
  }
  line += "}\n";
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

void writeSummaries(const std::vector<LineLimiter::Suppressed>& summaries) {
  for (const LineLimiter::Suppressed& s : summaries) {
    const std::string text = "suppressed " + std::to_string(s.count) + " similar messages";
    writeLine(s.level, text, {{"message", s.message}});
  }
}

LineLimiter& limiter() {
  static LineLimiter instance;
  return instance;
}
}  // namespace

bool LineLimiter::admit(Level level, std::string_view message, int64_t nowMs,
                        std::vector<Suppressed>& ended) {
  const uint64_t hash = hashOf(message);
  std::lock_guard lock(mutex_);
  Slot* slot = nullptr;
  Slot* oldest = nullptr;
  for (std::size_t i = 0; i < kProbes && slot == nullptr; ++i) {
    Slot& candidate = slots_[(hash + i) % kSlots];
    if (!candidate.used) {
      slot = &candidate;
      slot->used = true;
      slot->hash = hash;
      slot->message = message;
      slot->windowStartMs = nowMs;
    } else if (candidate.hash == hash && candidate.message == message) {
      slot = &candidate;
    } else if (oldest == nullptr || candidate.lastUsedMs < oldest->lastUsedMs) {
      oldest = &candidate;
    }
  }
  if (slot == nullptr) {
    // Every probed slot holds another message: the least recently used one gives way.
    slot = oldest;
    endWindow(*slot, nowMs, ended);
    slot->hash = hash;
    slot->message = message;
  }
  if (nowMs - slot->windowStartMs >= kWindowMs) endWindow(*slot, nowMs, ended);
  slot->level = level;
  slot->lastUsedMs = nowMs;
  if (slot->written < linesPerWindow_) {
    ++slot->written;
    return true;
  }
  ++slot->suppressed;
  return false;
}

std::vector<LineLimiter::Suppressed> LineLimiter::takeEnded(int64_t nowMs) {
  std::vector<Suppressed> ended;
  std::lock_guard lock(mutex_);
  for (Slot& slot : slots_) {
    if (slot.suppressed > 0 && nowMs - slot.windowStartMs >= kWindowMs) {
      endWindow(slot, nowMs, ended);
    }
  }
  return ended;
}

void LineLimiter::endWindow(Slot& slot, int64_t nowMs, std::vector<Suppressed>& out) {
  if (slot.suppressed > 0) out.push_back({slot.level, slot.message, slot.suppressed});
  slot.windowStartMs = nowMs;
  slot.written = 0;
  slot.suppressed = 0;
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  std::vector<LineLimiter::Suppressed> ended;
  const bool admitted = limiter().admit(level, message, monotonicMs(), ended);
  writeSummaries(ended);
  if (admitted) writeLine(level, message, fields);
}

void flushSuppressed() { writeSummaries(limiter().takeEnded(monotonicMs())); }

}  // namespace gw::core::log
