#pragma once
// Minimal JSON string escaping for the few JSON documents the core writes itself (error bodies,
// log lines). Escapes quotes, backslashes and every control byte; passes UTF-8 through.

#include <string>
#include <string_view>

namespace gw::core {

void appendJsonEscaped(std::string& out, std::string_view text);

}  // namespace gw::core
