#include "plugins/ip_filter/ip_filter.h"

#include <doctest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "plugins/ip_filter/ip_filter_config.h"
#include "test/support/plugin_config.h"
#include "test/support/plugin_context.h"

namespace gw::plugins::ip_filter {
namespace {

using Lines = std::vector<std::string>;

std::shared_ptr<const plugin::RouteConfig> load(const std::string& yaml) {
  std::vector<plugin::ConfigError> errors;
  auto config = Factory().parse(YAML::Load(yaml), errors);
  CHECK(errors.empty());
  return config;
}

// Whether a request from `client` passes the filter configured by `yaml`.
bool passes(const std::string& yaml, std::string_view client) {
  const auto config = load(yaml);
  REQUIRE(config);
  test::TestContext ctx;
  ctx.info.clientIp = client;
  const plugin::Status status = Factory().create(*config, nullptr)->onRequestHeaders(ctx);
  if (status == plugin::Status::Continue) {
    CHECK(!ctx.failedWith);
    return true;
  }
  CHECK(status == plugin::Status::Respond);
  REQUIRE(ctx.failedWith);
  CHECK(ctx.failedWith->code == kForbidden);
  CHECK(core::httpStatus(ctx.failedWith->code) == 403);
  CHECK(core::wireCode(ctx.failedWith->code) == "FORBIDDEN");
  return false;
}

Lines errorsOf(const std::string& yaml) { return test::configErrors(Factory(), yaml); }

TEST_CASE("ip_filter: IPv4 allow list") {
  const std::string yaml = "allow: [10.0.0.0/8, 192.168.1.7]";
  CHECK(passes(yaml, "10.0.0.0"));
  CHECK(passes(yaml, "10.255.255.255"));
  CHECK(passes(yaml, "192.168.1.7"));
  CHECK_FALSE(passes(yaml, "11.0.0.1"));
  CHECK_FALSE(passes(yaml, "9.255.255.255"));
  CHECK_FALSE(passes(yaml, "192.168.1.8"));  // a bare address is a /32
  CHECK_FALSE(passes(yaml, "::1"));
  CHECK_FALSE(passes(yaml, "2001:db8::1"));
}

TEST_CASE("ip_filter: IPv6 allow and deny") {
  const std::string allow = "allow: ['2001:db8::/32', '::1']";
  CHECK(passes(allow, "2001:db8::1"));
  CHECK(passes(allow, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK(passes(allow, "::1"));
  CHECK_FALSE(passes(allow, "2001:db9::1"));
  CHECK_FALSE(passes(allow, "::2"));  // a bare address is a /128
  CHECK_FALSE(passes(allow, "127.0.0.1"));

  const std::string deny = "deny: ['fe80::/10']";
  CHECK_FALSE(passes(deny, "fe80::1"));
  CHECK_FALSE(passes(deny, "febf:ffff::1"));
  CHECK(passes(deny, "fec0::1"));
  CHECK(passes(deny, "10.1.2.3"));  // no allow list: anything not denied passes
}

TEST_CASE("ip_filter: edge prefixes /0, /32, /128") {
  CHECK(passes("allow: [0.0.0.0/0]", "1.2.3.4"));
  CHECK(passes("allow: [0.0.0.0/0]", "255.255.255.255"));
  CHECK_FALSE(passes("allow: [0.0.0.0/0]", "2001:db8::1"));  // /0 of IPv4 is all of IPv4 only
  CHECK(passes("allow: ['::/0']", "2001:db8::1"));
  CHECK(passes("allow: ['::/0']", "10.0.0.1"));  // all of IPv6 includes the mapped IPv4
  CHECK(passes("allow: [10.1.2.3/32]", "10.1.2.3"));
  CHECK_FALSE(passes("allow: [10.1.2.3/32]", "10.1.2.2"));
  CHECK(passes("allow: ['2001:db8::7/128']", "2001:db8::7"));
  CHECK_FALSE(passes("allow: ['2001:db8::7/128']", "2001:db8::6"));
  CHECK(passes("allow: [10.1.2.3/31]", "10.1.2.2"));  // host bits are ignored
  CHECK_FALSE(passes("allow: [10.1.2.3/31]", "10.1.2.4"));
  CHECK(passes("allow: [128.0.0.0/1]", "200.1.1.1"));
  CHECK_FALSE(passes("allow: [128.0.0.0/1]", "127.255.255.255"));
}

TEST_CASE("ip_filter: IPv4-mapped IPv6 clients and networks") {
  CHECK(passes("allow: [10.0.0.0/8]", "::ffff:10.1.2.3"));
  CHECK_FALSE(passes("allow: [10.0.0.0/8]", "::ffff:11.1.2.3"));
  CHECK_FALSE(passes("deny: [127.0.0.1]", "::ffff:127.0.0.1"));
  CHECK(passes("allow: ['::ffff:10.0.0.0/104']", "10.200.0.1"));
  CHECK_FALSE(passes("allow: ['::ffff:10.0.0.0/104']", "11.0.0.1"));
}

TEST_CASE("ip_filter: deny wins over allow") {
  const std::string yaml = "{allow: [10.0.0.0/8], deny: [10.1.0.0/16, 10.2.3.4]}";
  CHECK(passes(yaml, "10.0.0.1"));
  CHECK(passes(yaml, "10.2.3.5"));
  CHECK_FALSE(passes(yaml, "10.1.200.1"));
  CHECK_FALSE(passes(yaml, "10.2.3.4"));
  CHECK_FALSE(passes(yaml, "172.16.0.1"));
  CHECK_FALSE(passes("{allow: [10.0.0.1], deny: [10.0.0.1]}", "10.0.0.1"));
}

TEST_CASE("ip_filter: an unreadable client address is refused") {
  CHECK_FALSE(passes("deny: [10.0.0.0/8]", ""));
  CHECK_FALSE(passes("deny: [10.0.0.0/8]", "not-an-ip"));
  CHECK_FALSE(passes("deny: [10.0.0.0/8]", "fe80::1%eth0"));
}

TEST_CASE("ip_filter: configuration errors carry line and column") {
  CHECK(errorsOf("allow: [10.0.0.0/33]") ==
        Lines{"1:9: ip_filter allow: '10.0.0.0/33': prefix /33 is longer than 32 bits"});
  CHECK(errorsOf("deny:\n  - 10.0.0.0/8\n  - '::1/129'") ==
        Lines{"3:5: ip_filter deny: '::1/129': prefix /129 is longer than 128 bits"});
  CHECK(errorsOf("allow: [10.0.0.300]") ==
        Lines{"1:9: ip_filter allow: '10.0.0.300': not an IPv4 or IPv6 address"});
  CHECK(errorsOf("allow: [10.0.0.0/, 10.0.0.0/-1, 10.0.0.0/8x, 10.0.0.0/0008]") ==
        Lines{"1:9: ip_filter allow: '10.0.0.0/': the prefix length after '/' must be a number",
              "1:20: ip_filter allow: '10.0.0.0/-1': the prefix length after '/' must be a number",
              "1:33: ip_filter allow: '10.0.0.0/8x': the prefix length after '/' must be a number",
              "1:46: ip_filter allow: '10.0.0.0/0008': the prefix length after '/' must be a "
              "number"});
  CHECK(errorsOf("allow: []") ==
        Lines{"1:8: ip_filter allow must be a non-empty list of addresses or CIDR blocks such as "
              "10.0.0.0/8 or 2001:db8::/32, got a list"});
  CHECK(errorsOf("deny: 10.0.0.0/8") ==
        Lines{"1:7: ip_filter deny must be a non-empty list of addresses or CIDR blocks such as "
              "10.0.0.0/8 or 2001:db8::/32, got '10.0.0.0/8'"});
  CHECK(errorsOf("allow: [[10.0.0.0/8]]") ==
        Lines{"1:9: ip_filter allow: each entry must be an address or CIDR block, got a list"});
  CHECK(errorsOf("{}") == Lines{"1:1: ip_filter needs an allow list, a deny list, or both"});
  CHECK(errorsOf("{allow: [::1], denny: [::2]}").size() == 1);
}

}  // namespace
}  // namespace gw::plugins::ip_filter
