#include "gateway/admin/admin_target.h"

#include <doctest.h>

#include <string>

using gw::admin::parseAdminTarget;

namespace {

// "path|query" of an accepted target, or "refused: MESSAGE".
std::string parsed(std::string_view target) {
  auto result = parseAdminTarget(target);
  if (!result) {
    CHECK(result.error().code == gw::core::ErrorCode::BadRequest);
    return "refused: " + result.error().message;
  }
  return std::string(result->path) + "|" + std::string(result->query);
}

}  // namespace

TEST_CASE("admin_target: origin-form") {
  CHECK(parsed("/metrics") == "/metrics|");
  CHECK(parsed("/cache?prefix=/a&host=x") == "/cache|prefix=/a&host=x");
  CHECK(parsed("/status?") == "/status|");
}

TEST_CASE("admin_target: absolute-form takes the path and query, ignores the authority") {
  CHECK(parsed("http://127.0.0.1:9901/metrics") == "/metrics|");
  CHECK(parsed("HTTP://Admin.Example/cache?path=/x") == "/cache|path=/x");
  CHECK(parsed("http://admin.example") == "/|");
  CHECK(parsed("http://admin.example?x=1") == "/|x=1");
  CHECK(parsed("http://[::1]:9901/ready") == "/ready|");
}

TEST_CASE("admin_target: fragments, other schemes and forms are refused") {
  CHECK(parsed("/health#top") == "refused: a request target has no fragment ('#')");
  CHECK(parsed("/cache#x?prefix=/") == "refused: a request target has no fragment ('#')");
  CHECK(parsed("http://a/health#x") == "refused: a request target has no fragment ('#')");
  const std::string notAdmin =
      "refused: an admin request target is a path such as /metrics, or an http:// URI";
  for (const char* target :
       {"*", "admin.example:443", "https://a/health", "ftp://a/health", "http:/health", "health"}) {
    CAPTURE(target);
    CHECK(parsed(target) == notAdmin);
  }
  const std::string badAuthority =
      "refused: the request target's authority is empty or has userinfo";
  CHECK(parsed("http:///health") == badAuthority);
  CHECK(parsed("http://user:pw@a/health") == badAuthority);
}
