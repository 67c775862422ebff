#include "gateway/net/cidr.h"

#include <arpa/inet.h>
#include <doctest.h>
#include <netinet/in.h>

#include <string>

namespace gw::net {
namespace {

bool inNetwork(std::string_view network, std::string_view address) {
  std::string why;
  const auto n = parseIpNetwork(network, why);
  REQUIRE_MESSAGE(n, why);
  const auto a = parseIpAddress(address);
  REQUIRE(a);
  return n->contains(*a);
}

}  // namespace

TEST_CASE("cidr: IPv4 and IPv6 blocks, host bits ignored, IPv4 kept mapped") {
  CHECK(inNetwork("10.0.0.0/8", "10.200.1.1"));
  CHECK_FALSE(inNetwork("10.0.0.0/8", "11.0.0.1"));
  CHECK(inNetwork("10.1.2.3/31", "10.1.2.2"));
  CHECK(inNetwork("2001:db8::/32", "2001:db8:ffff::1"));
  CHECK_FALSE(inNetwork("2001:db8::/32", "2001:db9::1"));
  CHECK(inNetwork("10.0.0.0/8", "::ffff:10.1.2.3"));
  CHECK_FALSE(inNetwork("0.0.0.0/0", "2001:db8::1"));
  CHECK(inNetwork("::/0", "10.0.0.1"));
  CHECK(inNetwork("127.0.0.1", "127.0.0.1"));
  CHECK_FALSE(inNetwork("127.0.0.1", "127.0.0.2"));
}

TEST_CASE("cidr: malformed blocks say why") {
  std::string why;
  CHECK_FALSE(parseIpNetwork("10.0.0.0/33", why));
  CHECK(why == "prefix /33 is longer than 32 bits");
  CHECK_FALSE(parseIpNetwork("10.0.0.0/x", why));
  CHECK(why == "the prefix length after '/' must be a number");
  CHECK_FALSE(parseIpNetwork("example.com", why));
  CHECK(why == "not an IPv4 or IPv6 address");
}

TEST_CASE("cidr: socket addresses of both families") {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "2001:db8::7", &v6.sin6_addr);
  std::string why;
  const auto net4 = parseIpNetwork("192.0.2.0/24", why);
  const auto net6 = parseIpNetwork("2001:db8::/64", why);
  REQUIRE(net4);
  REQUIRE(net6);
  const auto a4 = ipAddressOf(reinterpret_cast<const sockaddr*>(&v4));
  const auto a6 = ipAddressOf(reinterpret_cast<const sockaddr*>(&v6));
  REQUIRE(a4);
  REQUIRE(a6);
  CHECK(net4->contains(*a4));
  CHECK_FALSE(net4->contains(*a6));
  CHECK(net6->contains(*a6));
  sockaddr unix{};
  unix.sa_family = AF_UNIX;
  CHECK_FALSE(ipAddressOf(&unix));
}

}  // namespace gw::net
