#pragma once

#include <string_view>

namespace gw::http {

// Standard reason phrase for a status code ("" when unknown).
std::string_view reasonPhrase(int status);

}  // namespace gw::http
