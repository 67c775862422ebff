#include "gateway/runtime/successor.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>

extern char** environ;

namespace gw::runtime {

namespace {

constexpr std::string_view kLinkVariable = "GATEWAYD_UPGRADE_READY_FD";
// Longer than any status line (ServiceNotifier's kMaxStatusBytes): the rest is not waited for.
constexpr std::size_t kMaxReadyLine = 1024;

// "NAME=" followed by room for a pid, filled in by the child (whose pid the parent learns only
// after the fork) with async-signal-safe code.
class PidVariable {
 public:
  explicit PidVariable(std::string_view name) {
    std::memcpy(text_.data(), name.data(), name.size());
    text_[name.size()] = '=';
    valueAt_ = name.size() + 1;
  }
  void fill(pid_t pid) {
    char digits[16];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + pid % 10);
      pid /= 10;
    } while (pid > 0);
    std::size_t at = valueAt_;
    while (n > 0) text_[at++] = digits[--n];
    text_[at] = '\0';
  }
  char* get() { return text_.data(); }

 private:
  std::array<char, 64> text_{};
  std::size_t valueAt_ = 0;
};

std::string describeExit(int status) {
  if (WIFEXITED(status)) return "it exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("it was killed by SIG") + (name ? name : std::to_string(WTERMSIG(status)));
  }
  return "it ended";
}

}  // namespace

Executable Executable::current(int argc, char** argv) {
  Executable executable;
  std::array<char, PATH_MAX> path{};
  const ssize_t length = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
  executable.path = length > 0 ? std::string(path.data(), static_cast<std::size_t>(length))
                               : std::string(argc > 0 ? argv[0] : "");
  for (int i = 1; i < argc; ++i) executable.args.emplace_back(argv[i]);
  return executable;
}

Successor::Successor(event_base* base, Events events, std::chrono::milliseconds readyTimeout)
    : base_(base), events_(std::move(events)), readyTimeout_(readyTimeout) {}

Successor::~Successor() {
  // This process is going away in the middle of an upgrade: the new one must not stay behind.
  if (outcome_ == Outcome::Starting && pid_ > 0) ::kill(pid_, SIGTERM);
}

bool Successor::start(const Executable& executable, const std::vector<HandedSocket>& sockets,
                      std::string& error) {
  const auto fail = [&](std::string_view what) {
    error = std::string(what) + ": " + std::strerror(errno);
    return false;
  };
  const int linkTarget = SD_LISTEN_FDS_START + static_cast<int>(sockets.size());
  // Copies above every target position, so that placing one never overwrites another.
  const int above = linkTarget + 1;
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) return fail("pipe");
  net::Fd readEnd(pipeFds[0]);
  net::Fd writeEnd(pipeFds[1]);
  std::vector<net::Fd> sources;
  for (const HandedSocket& socket : sockets) {
    sources.emplace_back(::fcntl(socket.fd, F_DUPFD_CLOEXEC, above));
    if (!sources.back().valid()) return fail("dup of a listening socket");
  }
  net::Fd linkSource(::fcntl(writeEnd.get(), F_DUPFD_CLOEXEC, above));
  if (!linkSource.valid()) return fail("dup of the pipe");

  std::vector<std::string> argStrings{executable.path};
  argStrings.insert(argStrings.end(), executable.args.begin(), executable.args.end());
  std::vector<char*> argv;
  for (std::string& arg : argStrings) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::string names;
  for (const HandedSocket& socket : sockets) names += (names.empty() ? "" : ":") + socket.name;
  std::vector<std::string> ownVariables{
      "LISTEN_FDS=" + std::to_string(sockets.size()), "LISTEN_FDNAMES=" + names,
      std::string(kLinkVariable) + "=" + std::to_string(linkTarget)};
  PidVariable listenPid("LISTEN_PID");
  // systemd's watchdog is for its main process: the successor becomes it, and pings for it.
  PidVariable watchdogPid("WATCHDOG_PID");
  const bool watchdog = std::getenv("WATCHDOG_USEC") != nullptr;
  std::vector<char*> envp;
  for (char** entry = environ; *entry; ++entry) {
    const std::string_view variable = *entry;
    const std::string_view name = variable.substr(0, variable.find('='));
    if (name == "LISTEN_FDS" || name == "LISTEN_FDNAMES" || name == "LISTEN_PID" ||
        name == kLinkVariable || name == "WATCHDOG_PID") {
      continue;
    }
    envp.push_back(*entry);
  }
  for (std::string& variable : ownVariables) envp.push_back(variable.data());
  envp.push_back(listenPid.get());
  if (watchdog) envp.push_back(watchdogPid.get());
  envp.push_back(nullptr);

  // Signals wait until the child has dropped our handlers: one caught by a handler of ours in
  // the child before execve would be lost (a SIGTERM would not stop it).
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child of a threaded process: async-signal-safe calls only, until execve.
    struct sigaction byDefault {};
    byDefault.sa_handler = SIG_DFL;
    for (int signal = 1; signal < NSIG; ++signal) sigaction(signal, &byDefault, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (std::size_t i = 0; i < sources.size(); ++i) {
      if (::dup2(sources[i].get(), SD_LISTEN_FDS_START + static_cast<int>(i)) < 0) _exit(127);
    }
    if (::dup2(linkSource.get(), linkTarget) < 0) _exit(127);
    ::syscall(SYS_close_range, above, ~0U, 0);  // anything not close-on-exec
    listenPid.fill(::getpid());
    watchdogPid.fill(::getpid());
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  const int forkError = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) {
    errno = forkError;
    return fail("fork");
  }
  pid_ = pid;
  ready_ = std::move(readEnd);
  pidfd_ = net::Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  readyEvent_.reset(
      event_new(base_, ready_.get(), EV_READ | EV_PERSIST, &Successor::onReady, this));
  event_add(readyEvent_.get(), nullptr);
  timeoutEvent_.reset(evtimer_new(base_, &Successor::onTimeout, this));
  const auto ms = readyTimeout_.count();
  const timeval timeout{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
  evtimer_add(timeoutEvent_.get(), &timeout);
  if (pidfd_.valid()) {
    exitEvent_.reset(event_new(base_, pidfd_.get(), EV_READ, &Successor::onExit, this));
    event_add(exitEvent_.get(), nullptr);
  }
  return true;
}

void Successor::onReady(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<Successor*>(arg);
  char buffer[256];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    // Closed without a word: it is exiting (the exit event says how) or misbehaves (the
    // timeout ends the wait).
    self->readyEvent_.reset();
    return;
  }
  self->line_.append(buffer, static_cast<std::size_t>(n));
  const std::size_t end = self->line_.find('\n');
  if (end == std::string::npos) {
    if (self->line_.size() > kMaxReadyLine) self->fail("it wrote no status line on the pipe");
    return;
  }
  std::string status = self->line_.substr(0, end);
  if (!status.starts_with("serving")) {
    self->fail("it wrote '" + status + "' instead of its serving status");
    return;
  }
  self->outcome_ = Outcome::Serving;
  self->readyEvent_.reset();
  self->timeoutEvent_.reset();
  self->exitEvent_.reset();  // its parent is about to exit: not ours to reap
  self->events_.serving(self->pid_, std::move(status));
}

void Successor::onTimeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Successor*>(arg);
  self->fail("it did not say it serves within " + std::to_string(self->readyTimeout_.count()) +
             " ms; asked it to stop (SIGTERM)");
}

void Successor::onExit(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Successor*>(arg);
  int status = 0;
  if (::waitpid(self->pid_, &status, WNOHANG) != self->pid_) return;
  self->exitEvent_.reset();
  if (self->reaping_) {
    self->reaping_ = false;
    return;
  }
  if (self->outcome_ == Outcome::Starting) self->fail(describeExit(status) + " before it served");
}

void Successor::fail(std::string why) {
  outcome_ = Outcome::Failed;
  readyEvent_.reset();
  timeoutEvent_.reset();
  // Still running (it did not exit): stopped, and reaped when it has.
  if (exitEvent_ && ::kill(pid_, SIGTERM) == 0) reaping_ = true;
  events_.failed(std::move(why));
}

net::Fd takePredecessorLink() {
  const char* value = std::getenv(kLinkVariable.data());
  if (!value) return {};
  int fd = -1;
  const std::string_view text = value;
  const auto parsed = std::from_chars(text.data(), text.data() + text.size(), fd);
  ::unsetenv(kLinkVariable.data());
  if (parsed.ec != std::errc() || fd < SD_LISTEN_FDS_START ||
      ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return {};
  }
  return net::Fd(fd);
}

void tellPredecessorServing(net::Fd& link, std::string_view status) {
  if (!link.valid()) return;
  std::string line(status.substr(0, kMaxReadyLine - 1));
  std::replace(line.begin(), line.end(), '\n', ' ');
  line += '\n';
  // A pipe write this short is atomic; a predecessor that is gone gets EPIPE (SIGPIPE ignored).
  [[maybe_unused]] const ssize_t written = ::write(link.get(), line.data(), line.size());
  link.reset();
}

}  // namespace gw::runtime
