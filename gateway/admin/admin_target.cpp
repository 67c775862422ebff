#include "gateway/admin/admin_target.h"

#include "gateway/http/headers.h"
#include "gateway/http/path.h"

namespace gw::admin {

core::Result<AdminTarget> parseAdminTarget(std::string_view target) {
  auto badRequest = [](std::string message) {
    return core::Error::downstream(core::ErrorCode::BadRequest, std::move(message));
  };
  if (target.find('#') != std::string_view::npos) {
    return badRequest("a request target has no fragment ('#')");
  }
  if (!target.starts_with('/')) {
    constexpr std::string_view kHttp = "http://";
    if (target.size() < kHttp.size() || !http::iequals(target.substr(0, kHttp.size()), kHttp)) {
      return badRequest("an admin request target is a path such as /metrics, or an http:// URI");
    }
    target.remove_prefix(kHttp.size());
    const std::size_t pathStart = target.find_first_of("/?");
    const std::string_view authority = target.substr(0, pathStart);
    if (authority.empty() || authority.find('@') != std::string_view::npos) {
      return badRequest("the request target's authority is empty or has userinfo");
    }
    target = pathStart == std::string_view::npos ? std::string_view() : target.substr(pathStart);
  }
  const http::TargetParts parts = http::splitTarget(target);
  return AdminTarget{parts.path.empty() ? std::string_view("/") : parts.path, parts.query};
}

}  // namespace gw::admin
