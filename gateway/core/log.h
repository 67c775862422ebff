#pragma once
// The error log: one JSON object per line on stderr (journald under systemd). Each line goes out
// in a single write(2) so lines from several workers never interleave. Not for per-request use on
// the happy path.
//
// Every message is rate-limited by its text: at most LineLimiter::kLinesPerSecond lines of one
// message per second; the rest are counted and reported in one line, "suppressed N similar
// messages", when that message is logged again after its second, or at the latest when
// flushSuppressed() runs (the server calls it every second). A condition that repeats thousands
// of times a second (a peer that keeps failing, descriptors running out) cannot fill the disk.

#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw::core::log {

enum class Level { Info, Warn, Error };

using Field = std::pair<std::string_view, std::string_view>;

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Error, m, f);
}

// Writes the summary lines of the messages whose suppressing second has ended.
void flushSuppressed();

// Decides which lines of a message are written: a fixed table of recent messages (bounded memory
// whatever the messages are) behind one mutex, taken once per log call. Thread-safe.
class LineLimiter {
 public:
  static constexpr unsigned kLinesPerSecond = 20;
  static constexpr int64_t kWindowMs = 1000;
  static constexpr std::size_t kSlots = 256;

  // What was held back of one message during a window that has ended.
  struct Suppressed {
    Level level;
    std::string message;
    uint64_t count;
  };

  explicit LineLimiter(unsigned linesPerWindow = kLinesPerSecond)
      : linesPerWindow_(linesPerWindow) {}

  // Whether a line of `message` may be written at `nowMs` (a monotonic clock). When the message
  // had lines held back in a window that has ended, `ended` receives them, to report first.
  bool admit(Level level, std::string_view message, int64_t nowMs, std::vector<Suppressed>& ended);
  // Takes the held-back counts of every window that has ended by `nowMs`.
  std::vector<Suppressed> takeEnded(int64_t nowMs);

 private:
  struct Slot {
    bool used = false;
    uint64_t hash = 0;
    std::string message;
    Level level = Level::Info;
    int64_t windowStartMs = 0;
    unsigned written = 0;     // in this window
    uint64_t suppressed = 0;  // in this window
    int64_t lastUsedMs = 0;
  };
  // Moves a slot's count of held-back lines (if any) into `out` and starts a new window.
  static void endWindow(Slot& slot, int64_t nowMs, std::vector<Suppressed>& out);

  const unsigned linesPerWindow_;
  std::mutex mutex_;
  Slot slots_[kSlots];
};

}  // namespace gw::core::log
