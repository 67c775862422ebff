#include "gateway/runtime/passed_sockets.h"

#include <doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace gw::runtime {
namespace {

TEST_CASE("takePassedSockets: nothing passed, or passed to another process, is no socket") {
  std::string error;
  ::unsetenv("LISTEN_FDS");
  auto none = takePassedSockets(error);
  REQUIRE(none.has_value());
  CHECK(none->empty());
  // LISTEN_PID names another process (ours passed them on to a child that did not take them):
  // not ours, whatever the fds are.
  ::setenv("LISTEN_FDS", "2", 1);
  ::setenv("LISTEN_PID", std::to_string(::getpid() + 1).c_str(), 1);
  auto others = takePassedSockets(error);
  REQUIRE(others.has_value());
  CHECK(others->empty());
  CHECK(::getenv("LISTEN_FDS") == nullptr);  // taken out, so nothing we start sees them
  ::unsetenv("LISTEN_PID");
}

TEST_CASE("takeSocketBoundTo takes the socket of an address out of the list") {
  std::string error;
  auto any = net::resolve("127.0.0.1", 0, error);
  REQUIRE(any.has_value());
  auto fd = net::listenOn(*any, net::PortSharing::Exclusive, error);
  REQUIRE(fd.has_value());
  const int raw = fd->get();
  const auto address = *net::localAddress(raw);
  std::vector<InheritedSocket> sockets;
  sockets.push_back({address, std::move(*fd)});
  CHECK_FALSE(takeSocketBoundTo(sockets, *any).valid());  // port 0: not the bound one
  CHECK(sockets.size() == 1);
  net::Fd taken = takeSocketBoundTo(sockets, address);
  CHECK(taken.get() == raw);
  CHECK(sockets.empty());
}

}  // namespace
}  // namespace gw::runtime
