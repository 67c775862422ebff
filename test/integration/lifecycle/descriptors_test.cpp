// Running out of file descriptors: with more idle clients than the descriptor limit allows,
// gatewayd pauses accepting (proxy workers and admin listener alike) instead of spinning on a
// listening socket that stays readable, logs the condition once instead of per attempt, and
// serves again as soon as descriptors are free.
#include <dirent.h>
#include <doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

int openDescriptors(pid_t pid) {
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  REQUIRE(dir != nullptr);
  int count = 0;
  while (dirent* entry = ::readdir(dir)) count += entry->d_name[0] != '.';
  ::closedir(dir);
  return count;
}

// User + system CPU time of the whole process (every thread), in milliseconds.
long cpuMs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start at the last ')'.
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string skip;
  for (int field = 3; field < 14; ++field) fields >> skip;  // state .. cmajflt
  long utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) * 1000 / ::sysconf(_SC_CLK_TCK);
}

std::size_t countOf(const std::string& text, std::string_view what) {
  std::size_t count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

}  // namespace

TEST_CASE(
    "descriptors: out of descriptors, accepting pauses without spinning or flooding the log") {
  Backend b;
  Gateway gw(simpleConfig({&b}, {}, {}, /*workers=*/2));
  const pid_t pid = gw.process().pid();
  REQUIRE(Client(gw.port()).roundTrip(get("/echo")).status == 200);

  // A few descriptors to spare, then 40 idle clients (and 4 on the admin port) to use them up.
  const rlim_t limit = openDescriptors(pid) + 12;
  const rlimit low{limit, limit};
  REQUIRE(::prlimit(pid, RLIMIT_NOFILE, &low, nullptr) == 0);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 40; ++i) idle.push_back(std::make_unique<Client>(gw.port()));
  REQUIRE_MESSAGE(
      waitFor([&] { return gw.log().find("Too many open files") != std::string::npos; }, 5000ms),
      "gatewayd never ran out of descriptors:\n"
          << gw.log());
  // Now the admin listener too has clients waiting that it cannot accept.
  for (int i = 0; i < 4; ++i) idle.push_back(std::make_unique<Client>(gw.adminPort()));
  for (const auto& client : idle) REQUIRE(client->connected());
  CHECK(waitFor([&] { return countOf(gw.log(), R"("listener":"admin")") > 0; }, 2000ms));

  // The measurement window: every worker still has clients waiting in its listen queue.
  const long cpuBefore = cpuMs(pid);
  const std::size_t logBefore = gw.log().size();
  const auto windowStart = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1000ms);
  const auto window = std::chrono::steady_clock::now() - windowStart;
  const long cpuUsed = cpuMs(pid) - cpuBefore;
  const std::string logged = gw.log().substr(logBefore);
  MESSAGE("while out of descriptors: " << cpuUsed << " ms CPU in "
                                       << std::chrono::duration_cast<Millis>(window).count()
                                       << " ms, " << logged.size() << " bytes of log");
  CHECK_MESSAGE(cpuUsed < 100, "gatewayd spins while out of descriptors");
  CHECK(countOf(logged, "\n") <= 2);
  // One line when each listener paused, however many times accepting was retried.
  const std::string log = gw.log();
  CHECK(countOf(log, "cannot accept connections: pausing the listener") <= 3);
  CHECK(countOf(log, R"("listener":"admin")") == 1);

  // Descriptors come back: the waiting clients are taken, and new ones are served.
  idle.clear();
  Response answered;
  CHECK_MESSAGE(waitFor(
                    [&] {
                      answered = Client(gw.port()).roundTrip(get("/echo"), 1000ms);
                      return answered.complete;
                    },
                    5000ms),
                answered.error);
  CHECK(answered.status == 200);
  CHECK(adminRequest(gw, "/health").status == 200);
  CHECK(waitFor([&] { return gw.log().find("accepting connections again") != std::string::npos; },
                2000ms));
}
