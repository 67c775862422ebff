#pragma once
// The error log: one JSON object per line on stderr (journald under systemd). Each line goes out
// in a single write(2) so lines from several workers never interleave. Not for per-request use on
// the happy path.

#include <initializer_list>
#include <string_view>
#include <utility>

namespace gw::core::log {

enum class Level { Info, Warn, Error };

using Field = std::pair<std::string_view, std::string_view>;

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Info, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Warn, m, f); }
inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Error, m, f); }

}  // namespace gw::core::log
