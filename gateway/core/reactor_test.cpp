#include "gateway/core/reactor.h"

#include <doctest.h>

#include <chrono>
#include <future>
#include <thread>
#include <vector>

namespace gw::core {
namespace {

constexpr auto kWait = std::chrono::seconds(5);

TEST_CASE("post from another thread runs on the loop thread; stop then join") {
  Reactor reactor;
  REQUIRE(reactor.base() != nullptr);
  reactor.start();

  std::promise<std::thread::id> ran;
  auto ranOn = ran.get_future();
  reactor.post([&] { ran.set_value(std::this_thread::get_id()); });
  REQUIRE(ranOn.wait_for(kWait) == std::future_status::ready);
  std::thread::id loopThread = ranOn.get();
  CHECK(loopThread != std::this_thread::get_id());

  std::promise<std::thread::id> again;
  auto againOn = again.get_future();
  reactor.post([&] { again.set_value(std::this_thread::get_id()); });
  REQUIRE(againOn.wait_for(kWait) == std::future_status::ready);
  CHECK(againOn.get() == loopThread);

  reactor.post([&] { reactor.stop(); });
  reactor.join();
  // Joined: a second join is harmless (the destructor joins too).
  reactor.join();
}

TEST_CASE("posts from many threads all run, each thread's in its order") {
  Reactor reactor;
  reactor.start();
  constexpr int kThreads = 4;
  constexpr int kPosts = 2000;
  // Touched only on the loop thread.
  std::vector<int> last(kThreads, -1);
  int outOfOrder = 0;
  int total = 0;
  std::promise<void> done;
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPosts; ++i) {
        reactor.post([&, t, i] {
          if (i != last[t] + 1) ++outOfOrder;
          last[t] = i;
          if (++total == kThreads * kPosts) done.set_value();
        });
      }
    });
  }
  for (auto& poster : posters) poster.join();
  REQUIRE(done.get_future().wait_for(kWait) == std::future_status::ready);
  std::promise<void> checked;
  int seenTotal = 0, seenOutOfOrder = -1;
  reactor.post([&] {
    seenTotal = total;
    seenOutOfOrder = outOfOrder;
    reactor.stop();
    checked.set_value();
  });
  REQUIRE(checked.get_future().wait_for(kWait) == std::future_status::ready);
  reactor.join();
  CHECK(seenTotal == kThreads * kPosts);
  CHECK(seenOutOfOrder == 0);
}

TEST_CASE("run() drives the loop on the calling thread; work posted before it runs") {
  Reactor reactor;
  std::vector<int> ran;
  reactor.post([&] { ran.push_back(1); });
  reactor.post([&] { ran.push_back(2); });
  std::thread poster([&] {
    reactor.post([&] {
      ran.push_back(3);
      reactor.stop();
    });
  });
  poster.join();
  reactor.run();  // returns because the last post stops it
  CHECK(ran == std::vector<int>{1, 2, 3});
}

TEST_CASE("the loop runs timers while it waits for posts") {
  Reactor reactor;
  int fired = 0;
  struct Ctx {
    Reactor* reactor;
    int* fired;
  } ctx{&reactor, &fired};
  EventPtr timer(event_new(
      reactor.base(), -1, 0,
      [](evutil_socket_t, short, void* arg) {
        auto* c = static_cast<Ctx*>(arg);
        ++*c->fired;
        c->reactor->stop();
      },
      &ctx));
  timeval tenMs{0, 10000};
  event_add(timer.get(), &tenMs);
  reactor.start();
  reactor.join();
  CHECK(fired == 1);
}

}  // namespace
}  // namespace gw::core
