#include "gateway/core/out_queue.h"

#include <doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace gw::core {
namespace {

using WriteStatus = OutQueue::WriteStatus;

// A connected pair of non-blocking stream sockets, closed on destruction.
struct SocketPair {
  int writer = -1;
  int reader = -1;
  SocketPair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    writer = fds[0];
    reader = fds[1];
  }
  ~SocketPair() {
    if (writer >= 0) ::close(writer);
    if (reader >= 0) ::close(reader);
  }
  // Everything readable right now (the reader is non-blocking).
  std::string drain() const {
    std::string got;
    char chunk[65536];
    while (true) {
      ssize_t n = ::recv(reader, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      got.append(chunk, static_cast<std::size_t>(n));
    }
    return got;
  }
};

TEST_CASE("owned and borrowed segments go out in order with one flush") {
  SocketPair pair;
  OutQueue out;
  std::string body = "borrowed-body";
  std::string tail = "borrowed-tail";
  out.append("HEAD ");
  out.borrow(body.data(), body.size());
  out.append(" mid ");
  char* raw = out.appendRaw(3);
  std::memcpy(raw, "raw", 3);
  out.borrow(tail.data(), tail.size());
  CHECK(out.pending() == 5 + body.size() + 5 + 3 + tail.size());
  CHECK_FALSE(out.empty());

  CHECK(out.flush(pair.writer) == WriteStatus::Drained);
  CHECK(out.pending() == 0);
  CHECK(out.empty());
  CHECK(pair.drain() == "HEAD borrowed-body mid rawborrowed-tail");
}

TEST_CASE("empty appends and borrows queue nothing; flushing nothing is Drained") {
  SocketPair pair;
  OutQueue out;
  out.append("");
  out.borrow("x", 0);
  CHECK(out.empty());
  CHECK(out.flush(pair.writer) == WriteStatus::Drained);
  CHECK(pair.drain().empty());
}

TEST_CASE("more segments than one sendmsg carries are all written, in order") {
  SocketPair pair;
  OutQueue out;
  // Alternate borrowed and owned so no two segments merge: 150 segments.
  std::string letters;
  for (int i = 0; i < 75; ++i) letters.push_back(static_cast<char>('A' + i % 26));
  std::string expected;
  for (int i = 0; i < 75; ++i) {
    out.borrow(&letters[static_cast<std::size_t>(i)], 1);
    out.append(std::to_string(i));
    expected += letters[static_cast<std::size_t>(i)] + std::to_string(i);
  }
  CHECK(out.pending() == expected.size());
  CHECK(out.flush(pair.writer) == WriteStatus::Drained);
  CHECK(out.empty());
  CHECK(pair.drain() == expected);
}

TEST_CASE("a full socket blocks; retainBorrowed copies what was not sent") {
  SocketPair pair;
  int small = 4096;
  REQUIRE(::setsockopt(pair.writer, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);

  std::string source(512 * 1024, '\0');
  for (std::size_t i = 0; i < source.size(); ++i) source[i] = static_cast<char>('a' + i % 23);
  std::string second(100 * 1024, '\0');
  for (std::size_t i = 0; i < second.size(); ++i) second[i] = static_cast<char>('0' + i % 10);
  const std::string expected = "HEAD\r\n" + source + "--" + second + "\r\nEND";

  OutQueue out;
  out.append("HEAD\r\n");
  out.borrow(source.data(), source.size());
  out.append("--");
  out.borrow(second.data(), second.size());
  out.append("\r\nEND");
  REQUIRE(out.pending() == expected.size());

  CHECK(out.flush(pair.writer) == WriteStatus::Blocked);
  std::size_t left = out.pending();
  CHECK(left > 0);
  CHECK(left < expected.size());  // some of it went out
  // The socket really is full.
  CHECK(::send(pair.writer, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == -1);
  CHECK(errno == EAGAIN);

  out.retainBorrowed();
  CHECK(out.pending() == left);
  // The lender reuses its memory: the queue must not notice.
  std::memset(source.data(), '#', source.size());
  std::memset(second.data(), '#', second.size());

  std::string received;
  int rounds = 0;
  while (true) {
    received += pair.drain();
    WriteStatus status = out.flush(pair.writer);
    REQUIRE(status != WriteStatus::Failed);
    if (status == WriteStatus::Drained) break;
    pollfd p{pair.reader, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
    REQUIRE(++rounds < 100000);
  }
  received += pair.drain();
  CHECK(out.empty());
  CHECK(received.size() == expected.size());
  CHECK(received == expected);
}

TEST_CASE("appending after a partial write keeps order") {
  SocketPair pair;
  int small = 4096;
  REQUIRE(::setsockopt(pair.writer, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  OutQueue out;
  std::string big(256 * 1024, 'b');
  out.append(big);
  REQUIRE(out.flush(pair.writer) == WriteStatus::Blocked);
  out.append("after");
  std::string more = "borrowed";
  out.borrow(more.data(), more.size());
  out.retainBorrowed();
  more.assign(more.size(), '!');
  out.append("last");

  std::string received;
  for (int rounds = 0; rounds < 100000; ++rounds) {
    received += pair.drain();
    if (out.flush(pair.writer) == WriteStatus::Drained) break;
    pollfd p{pair.reader, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
  }
  received += pair.drain();
  CHECK(received == big + "afterborrowedlast");
}

TEST_CASE("several rounds of partial writes and retains keep every byte in order") {
  SocketPair pair;
  int small = 4096;
  REQUIRE(::setsockopt(pair.writer, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  OutQueue out;
  std::string expected;
  std::string lender(64 * 1024, '\0');
  std::string received;
  for (int round = 0; round < 5; ++round) {
    // The lender refills its buffer each round, as a client connection's input buffer would.
    for (std::size_t i = 0; i < lender.size(); ++i) {
      lender[i] = static_cast<char>('a' + (i + static_cast<std::size_t>(round) * 7) % 26);
    }
    std::string marker = "<";
    marker += std::to_string(round);
    marker += '>';
    out.append(marker);
    out.borrow(lender.data(), lender.size());
    expected += marker;
    expected += lender;
    REQUIRE(out.flush(pair.writer) == WriteStatus::Blocked);
    out.retainBorrowed();
    received += pair.drain();  // the peer reads a little between rounds
  }
  std::memset(lender.data(), '#', lender.size());
  for (int rounds = 0; rounds < 100000; ++rounds) {
    received += pair.drain();
    if (out.flush(pair.writer) == WriteStatus::Drained) break;
    pollfd p{pair.reader, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
  }
  received += pair.drain();
  CHECK(received.size() == expected.size());
  CHECK(received == expected);
}

TEST_CASE("retainBorrowed with nothing borrowed changes nothing") {
  SocketPair pair;
  OutQueue out;
  out.append("only owned");
  out.retainBorrowed();
  CHECK(out.pending() == 10);
  CHECK(out.flush(pair.writer) == WriteStatus::Drained);
  CHECK(pair.drain() == "only owned");
}

TEST_CASE("clear drops everything queued; the queue is reusable") {
  SocketPair pair;
  OutQueue out;
  std::string body = "body";
  out.append("head");
  out.borrow(body.data(), body.size());
  out.clear();
  CHECK(out.empty());
  CHECK(out.pending() == 0);
  CHECK(out.flush(pair.writer) == WriteStatus::Drained);
  CHECK(pair.drain().empty());

  out.append("again");
  out.shrink();  // refused while bytes are pending
  CHECK(out.pending() == 5);
  CHECK(out.flush(pair.writer) == WriteStatus::Drained);
  out.shrink();
  CHECK(out.empty());
  out.append("third");
  CHECK(out.flush(pair.writer) == WriteStatus::Drained);
  CHECK(pair.drain() == "againthird");
}

TEST_CASE("shrink without a pool keeps the small buffers an idle connection reuses, drops large ones") {
  SocketPair pair;
  OutQueue out;
  out.append(std::string(200, 'h'));  // a response head
  std::string body = "body";
  out.borrow(body.data(), body.size());
  CHECK(out.flush(pair.writer) == WriteStatus::Drained);
  out.shrink();
  const std::size_t kept = out.retainedBytes();
  CHECK(kept >= 200);  // the next head is written without allocating
  CHECK(kept <= OutQueue::kKeptBytes * 2 + OutQueue::kKeptSegments * 16);

  out.append(std::string(64 * 1024, 'x'));
  CHECK(out.flush(pair.writer) != WriteStatus::Failed);
  while (!out.empty()) {
    pair.drain();
    CHECK(out.flush(pair.writer) != WriteStatus::Failed);
  }
  out.shrink();
  CHECK(out.retainedBytes() <= OutQueue::kKeptBytes * 2 + OutQueue::kKeptSegments * 16);
  CHECK(out.retainedBytes() < 64 * 1024);
}

TEST_CASE("shrink with a pool hands the buffers over; the next busy queue takes them back") {
  SocketPair pair;
  OutQueue::BufferPool pool(4);
  OutQueue out(&pool);
  out.append(std::string(300, 'h'));
  CHECK(out.flush(pair.writer) == WriteStatus::Drained);
  const std::size_t used = out.retainedBytes();
  CHECK(used >= 300);
  out.shrink();
  CHECK(out.retainedBytes() == 0);  // an idle connection holds no output memory

  OutQueue next(&pool);
  next.reserve(16);  // a head about to be written takes the pool's buffers, not new ones
  CHECK(next.retainedBytes() == used);
  next.append("head");
  CHECK(next.retainedBytes() == used);  // the same buffers: no allocation
  CHECK(next.flush(pair.writer) == WriteStatus::Drained);
  CHECK(pair.drain() == std::string(300, 'h') + "head");

  next.append(std::string(64 * 1024, 'x'));  // a large buffer is freed, not pooled
  while (!next.empty()) {
    pair.drain();
    CHECK(next.flush(pair.writer) != WriteStatus::Failed);
  }
  next.shrink();
  CHECK(next.retainedBytes() == 0);
  OutQueue third(&pool);
  third.append("x");
  CHECK(third.retainedBytes() < 64 * 1024);
}

TEST_CASE("discardFront and appendFrom move what follows a prefix to another queue, in order") {
  SocketPair pair;
  OutQueue first;
  const std::string lent = "-borrowed-";
  first.append("OLD HEAD|");
  first.borrow(lent.data(), lent.size());
  first.append("owned tail");
  first.discardFront(9);
  CHECK(first.pending() == lent.size() + 10);
  CHECK_THROWS_AS(first.discardFront(first.pending() + 1), std::logic_error);
  OutQueue second;
  second.append("new head|");
  second.appendFrom(first);
  CHECK(first.empty());
  REQUIRE(second.flush(pair.writer) == WriteStatus::Drained);
  CHECK(pair.drain() == "new head|-borrowed-owned tail");
}

TEST_CASE("truncate takes back unsent bytes queued after a mark, owned and borrowed") {
  SocketPair pair;
  OutQueue q;
  const std::string lent = "BORROWED";
  q.append("keep-");
  REQUIRE(q.flush(pair.writer) == WriteStatus::Drained);
  q.append("also-");
  const uint64_t mark = q.queuedTotal();
  q.append("head ");
  q.borrow(lent.data(), lent.size());
  q.append(" tail");
  CHECK(q.sentTotal() == 5);
  q.truncate(mark);
  CHECK(q.queuedTotal() == mark);
  CHECK(q.pending() == 5);
  q.append("replacement");
  REQUIRE(q.flush(pair.writer) == WriteStatus::Drained);
  CHECK(pair.drain() == "keep-also-replacement");
  CHECK(q.sentTotal() == q.queuedTotal());
}

TEST_CASE("truncate to everything queued changes nothing; a mark already sent is refused") {
  SocketPair pair;
  OutQueue q;
  q.append("abc");
  q.truncate(q.queuedTotal());
  CHECK(q.pending() == 3);
  REQUIRE(q.flush(pair.writer) == WriteStatus::Drained);
  q.append("def");
  CHECK_THROWS_AS(q.truncate(1), std::logic_error);
  q.truncate(3);
  CHECK(q.empty());
  q.append("g");
  REQUIRE(q.flush(pair.writer) == WriteStatus::Drained);
  CHECK(pair.drain() == "abcg");
}

TEST_CASE("a closed peer fails the write with EPIPE and raises no SIGPIPE") {
  SocketPair pair;
  ::close(pair.reader);
  pair.reader = -1;
  OutQueue out;
  out.append("nobody listens");
  // Without MSG_NOSIGNAL the default SIGPIPE action would kill the test binary here.
  CHECK(out.flush(pair.writer) == WriteStatus::Failed);
  CHECK(errno == EPIPE);
  CHECK(out.pending() == 14);
}

}  // namespace
}  // namespace gw::core
