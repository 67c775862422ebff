// Signals other than SIGTERM/SIGINT (drain), SIGHUP (reload, lifecycle/reload_test.cpp), SIGUSR1
// (reopen the access log) and SIGUSR2 (an upgrade, lifecycle/upgrade_test.cpp) must not end
// gatewayd: each is ignored deliberately, with one log line naming it, or silently where the
// kernel raises it as a side effect of a write.
#include <doctest.h>
#include <signal.h>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

struct Case {
  int signal;
  const char* logged;  // the log line's text, or null when ignored silently
};

}  // namespace

TEST_CASE("signals: stray signals are ignored, each with one log line; gatewayd keeps serving") {
  Backend b;
  Gateway gw(simpleConfig({&b}));
  // The port accepts before the start-up line is written; on a slow build (ThreadSanitizer) that
  // line would otherwise land among the first signal's.
  REQUIRE(waitFor([&] { return gw.log().find("gatewayd started") != std::string::npos; }, 5000ms));
  const std::vector<Case> cases = {
      {SIGALRM, R"("msg":"signal ignored","signal":"SIGALRM")"},
      {SIGVTALRM, R"("msg":"signal ignored","signal":"SIGVTALRM")"},
      {SIGPROF, R"("msg":"signal ignored","signal":"SIGPROF")"},
      {SIGIO, R"("msg":"signal ignored","signal":"SIGPOLL")"},  // glibc's name for SIGIO
      {SIGPWR, R"("msg":"signal ignored","signal":"SIGPWR")"},
      {SIGSTKFLT, R"("msg":"signal ignored","signal":"SIGSTKFLT")"},
      {SIGTSTP, R"("msg":"signal ignored","signal":"SIGTSTP")"},
      {SIGXFSZ, R"("msg":"signal ignored","signal":"SIGXFSZ")"},
      {SIGRTMIN, R"("msg":"signal ignored","signal":"SIGRTMIN")"},
      {SIGRTMIN + 5, R"("msg":"signal ignored","signal":"SIGRTMIN+5")"},
      {SIGRTMAX, R"("msg":"signal ignored","signal":"SIGRTMIN+)"},
      {SIGPIPE, nullptr},
      {SIGTTIN, nullptr},
      {SIGTTOU, nullptr},
  };
  for (const Case& c : cases) {
    CAPTURE(c.signal);
    const std::size_t logBefore = gw.log().size();
    gw.process().signal(c.signal);
    if (c.logged) {
      CHECK(
          waitFor([&] { return gw.log().find(c.logged, logBefore) != std::string::npos; }, 2000ms));
    }
    // Serving, not stopped: a request is answered at once.
    Response r = Client(gw.port()).roundTrip(get("/echo"), 2000ms);
    CHECK_MESSAGE(r.complete, r.error);
    CHECK(r.status == 200);
    REQUIRE(gw.process().running());
    const std::string logged = gw.log().substr(logBefore);
    CHECK(std::count(logged.begin(), logged.end(), '\n') == (c.logged ? 1 : 0));
  }
}
