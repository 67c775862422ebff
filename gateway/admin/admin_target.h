#pragma once
// Where an admin request goes: the path and query of its request target. Origin-form
// ("/metrics?x") and absolute-form ("http://host:9901/metrics", which RFC 9112 3.2.2 says a
// server must accept) are taken; the authority is ignored like Host, since the admin listener
// serves one site. Any other form is refused rather than guessed at.

#include <string_view>

#include "gateway/core/error.h"

namespace gw::admin {

struct AdminTarget {
  std::string_view path;   // "/" for an absolute-form target without a path (RFC 9110 4.2.3)
  std::string_view query;  // without the '?'
};

// Views into `target`. BadRequest with a message for the operator on: a fragment ('#' is never
// part of a request target), a scheme other than http, an empty authority or one with userinfo
// (RFC 9110 4.2.4), asterisk-form ("*") and authority-form ("host:port").
core::Result<AdminTarget> parseAdminTarget(std::string_view target);

}  // namespace gw::admin
