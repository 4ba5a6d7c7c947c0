// SPDX-License-Identifier: MIT
#include "daemon/event_loop.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace amlfw {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<EventLoop> make_loop() {
  auto r = EventLoop::create();
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return std::move(r).value();
}

// Runs the loop until `done` or `limit` passes (a guard so a broken loop fails, not hangs).
void run_until(EventLoop& loop, const std::function<bool()>& done, std::chrono::milliseconds limit = 2s) {
  auto end = EventLoop::now() + limit;
  while (!done() && EventLoop::now() < end) ASSERT_TRUE(loop.run_once(10ms).ok());
}

struct SocketPair {
  Fd a, b;
  SocketPair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    a.reset(sv[0]);
    b.reset(sv[1]);
  }
};

TEST(Fd, ClosesOnDestructionAndMoves) {
  int raw = -1;
  {
    Fd f(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(f.valid());
    raw = f.get();
    Fd g(std::move(f));
    EXPECT_FALSE(f.valid());
    EXPECT_EQ(g.get(), raw);
    EXPECT_GE(fcntl(raw, F_GETFD), 0);
    EXPECT_TRUE(fcntl(raw, F_GETFD) & FD_CLOEXEC);
    Fd h;
    h = std::move(g);
    EXPECT_EQ(h.get(), raw);
  }
  EXPECT_EQ(fcntl(raw, F_GETFD), -1);  // closed
  EXPECT_EQ(errno, EBADF);
  Fd r(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int fd = r.release();
  EXPECT_FALSE(r.valid());
  EXPECT_GE(fcntl(fd, F_GETFD), 0);  // release does not close
  ::close(fd);
}

TEST(EventLoop, TimersFireInDeadlineOrder) {
  auto loop = make_loop();
  std::vector<int> order;
  loop->call_after(30ms, [&] { order.push_back(3); });
  loop->call_after(10ms, [&] { order.push_back(1); });
  loop->call_after(20ms, [&] { order.push_back(2); });
  loop->call_after(40ms, [&] {
    order.push_back(4);
    loop->stop();
  });
  auto start = EventLoop::now();
  ASSERT_TRUE(loop->run().ok());
  auto took = EventLoop::now() - start;
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_GE(took, 40ms);
  EXPECT_LT(took, 1s);
  EXPECT_EQ(loop->timer_count(), 0u);  // one-shots remove themselves
}

TEST(EventLoop, SameDeadlineFiresInArmOrder) {
  auto loop = make_loop();
  std::vector<int> order;
  std::vector<EventLoop::TimerId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(loop->add_timer([&order, i] { order.push_back(i); }));
  // Arm in reverse; all due immediately.
  for (int i = 4; i >= 0; --i) loop->arm_timer(ids[static_cast<size_t>(i)], -5ms);
  run_until(*loop, [&] { return order.size() == 5; });
  EXPECT_EQ(order, (std::vector<int>{4, 3, 2, 1, 0}));
}

TEST(EventLoop, TimerDoesNotFireEarly) {
  auto loop = make_loop();
  EventLoop::Clock::time_point fired{};
  auto start = EventLoop::now();
  loop->call_after(50ms, [&] { fired = EventLoop::now(); });
  run_until(*loop, [&] { return fired != EventLoop::Clock::time_point{}; });
  EXPECT_GE(fired - start, 50ms);
}

TEST(EventLoop, PeriodicRearmDisarmAndRemove) {
  auto loop = make_loop();
  int ticks = 0;
  auto id = loop->add_timer([&] { ++ticks; });
  EXPECT_FALSE(loop->timer_armed(id));
  ASSERT_TRUE(loop->arm_timer(id, 5ms, 5ms));
  run_until(*loop, [&] { return ticks >= 3; });
  EXPECT_GE(ticks, 3);
  EXPECT_TRUE(loop->timer_armed(id));  // periodic stays armed
  ASSERT_TRUE(loop->disarm_timer(id));
  int seen = ticks;
  ASSERT_TRUE(loop->run_once(30ms).ok());
  EXPECT_EQ(ticks, seen);
  // Re-arm as one-shot, then move it later before it fires.
  ASSERT_TRUE(loop->arm_timer(id, 5ms));
  ASSERT_TRUE(loop->arm_timer(id, 500ms));
  ASSERT_TRUE(loop->run_once(40ms).ok());
  EXPECT_EQ(ticks, seen);
  ASSERT_TRUE(loop->arm_timer(id, 0ms));
  run_until(*loop, [&] { return ticks == seen + 1; });
  EXPECT_EQ(ticks, seen + 1);
  EXPECT_FALSE(loop->timer_armed(id));
  loop->remove_timer(id);
  EXPECT_FALSE(loop->arm_timer(id, 0ms));
  EXPECT_EQ(loop->timer_count(), 0u);
}

TEST(EventLoop, TimerRemovingAnotherDueTimerPreventsIt) {
  auto loop = make_loop();
  bool second = false, first = false;
  EventLoop::TimerId b = 0;
  auto a = loop->add_timer([&] {
    first = true;
    loop->remove_timer(b);
  });
  b = loop->add_timer([&] { second = true; });
  loop->arm_timer(a, 0ms);
  loop->arm_timer(b, 0ms);
  run_until(*loop, [&] { return first; });
  ASSERT_TRUE(loop->run_once(20ms).ok());
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);
}

TEST(EventLoop, TimerRemovingItselfAndZeroDelayRearmDoNotSpin) {
  auto loop = make_loop();
  int self_removed = 0, rearmed = 0;
  EventLoop::TimerId t1 = 0, t2 = 0;
  t1 = loop->add_timer([&] {
    ++self_removed;
    loop->remove_timer(t1);  // the running callable stays alive until it returns
  });
  t2 = loop->add_timer([&] {
    if (++rearmed < 3) loop->arm_timer(t2, 0ms);
  });
  loop->arm_timer(t1, 0ms);
  loop->arm_timer(t2, 0ms);
  run_until(*loop, [&] { return rearmed == 3; });
  EXPECT_EQ(self_removed, 1);
  EXPECT_EQ(rearmed, 3);
}

TEST(EventLoop, FdReadCallbackAndModify) {
  auto loop = make_loop();
  SocketPair sp;
  std::string got;
  int writable = 0;
  ASSERT_TRUE(loop->add_fd(sp.a.get(), kIoRead, [&](uint32_t ev) {
                    if (ev & kIoRead) {
                      char buf[64];
                      ssize_t n = ::read(sp.a.get(), buf, sizeof buf);
                      if (n > 0) got.append(buf, static_cast<size_t>(n));
                    }
                    if (ev & kIoWrite) ++writable;
                  }).ok());
  EXPECT_TRUE(loop->has_fd(sp.a.get()));
  EXPECT_FALSE(loop->add_fd(sp.a.get(), kIoRead, [](uint32_t) {}).ok());  // twice is an error
  ASSERT_TRUE(loop->run_once(20ms).ok());
  EXPECT_EQ(got, "");
  EXPECT_EQ(writable, 0);
  ASSERT_EQ(::write(sp.b.get(), "hello", 5), 5);
  run_until(*loop, [&] { return got == "hello"; });
  EXPECT_EQ(got, "hello");
  ASSERT_TRUE(loop->modify_fd(sp.a.get(), kIoRead | kIoWrite).ok());
  run_until(*loop, [&] { return writable > 0; });
  EXPECT_GT(writable, 0);
  EXPECT_FALSE(loop->modify_fd(12345, kIoRead).ok());
}

TEST(EventLoop, HangupIsReported) {
  auto loop = make_loop();
  SocketPair sp;
  uint32_t seen = 0;
  ASSERT_TRUE(loop->add_fd(sp.a.get(), 0, [&](uint32_t ev) {
                    seen |= ev;
                    loop->remove_fd(sp.a.get());
                  }).ok());
  sp.b.reset();
  run_until(*loop, [&] { return seen != 0; });
  EXPECT_TRUE(seen & kIoHangup);
}

TEST(EventLoop, RemoveInsideOwnCallbackAndOthersInSameBatch) {
  auto loop = make_loop();
  SocketPair p1, p2;
  int calls1 = 0, calls2 = 0;
  // Each callback removes both registrations: whichever runs first, the other one's
  // already-collected event must not be delivered.
  auto both = [&] {
    loop->remove_fd(p1.a.get());
    loop->remove_fd(p2.a.get());
  };
  ASSERT_TRUE(loop->add_fd(p1.a.get(), kIoRead, [&](uint32_t) {
                    ++calls1;
                    both();
                  }).ok());
  ASSERT_TRUE(loop->add_fd(p2.a.get(), kIoRead, [&](uint32_t) {
                    ++calls2;
                    both();
                  }).ok());
  ASSERT_EQ(::write(p1.b.get(), "x", 1), 1);
  ASSERT_EQ(::write(p2.b.get(), "y", 1), 1);
  ASSERT_TRUE(loop->run_once(200ms).ok());
  ASSERT_TRUE(loop->run_once(20ms).ok());
  EXPECT_EQ(calls1 + calls2, 1);
  EXPECT_EQ(loop->fd_count(), 0u);
}

TEST(EventLoop, RemoveAndReAddSameFdInsideCallback) {
  auto loop = make_loop();
  SocketPair sp;
  int old_calls = 0, new_calls = 0;
  ASSERT_TRUE(loop->add_fd(sp.a.get(), kIoRead, [&](uint32_t) {
                    ++old_calls;
                    loop->remove_fd(sp.a.get());
                    ASSERT_TRUE(loop->add_fd(sp.a.get(), kIoRead, [&](uint32_t) {
                                      ++new_calls;
                                      char c;
                                      (void)::read(sp.a.get(), &c, 1);
                                    }).ok());
                  }).ok());
  ASSERT_EQ(::write(sp.b.get(), "z", 1), 1);
  run_until(*loop, [&] { return new_calls > 0; });
  EXPECT_EQ(old_calls, 1);
  EXPECT_EQ(new_calls, 1);
}

TEST(EventLoop, StopFromCallbackEndsRun) {
  auto loop = make_loop();
  int after = 0;
  loop->call_after(1ms, [&] { loop->stop(); });
  loop->call_after(200ms, [&] { ++after; });
  auto start = EventLoop::now();
  ASSERT_TRUE(loop->run().ok());
  EXPECT_LT(EventLoop::now() - start, 150ms);
  EXPECT_EQ(after, 0);
  EXPECT_TRUE(loop->stopped());
}

class SignalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Start from SIGUSR1/SIGUSR2/SIGHUP unblocked, whatever earlier tests did.
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    sigaddset(&s, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &s, nullptr);
  }
  static bool blocked(int signo) {
    sigset_t cur;
    sigprocmask(SIG_BLOCK, nullptr, &cur);
    return sigismember(&cur, signo) == 1;
  }
};

TEST_F(SignalTest, RaisedSignalsReachCallbacks) {
  auto loop = make_loop();
  std::vector<int> got;
  ASSERT_TRUE(loop->add_signal(SIGUSR1, [&](int s) { got.push_back(s); }).ok());
  ASSERT_TRUE(loop->add_signal(SIGHUP, [&](int s) { got.push_back(s); }).ok());
  EXPECT_TRUE(blocked(SIGUSR1));
  EXPECT_TRUE(blocked(SIGHUP));
  ASSERT_EQ(raise(SIGUSR1), 0);  // blocked: stays pending until the signalfd reads it
  run_until(*loop, [&] { return got.size() == 1; });
  ASSERT_EQ(raise(SIGHUP), 0);
  run_until(*loop, [&] { return got.size() == 2; });
  EXPECT_EQ(got, (std::vector<int>{SIGUSR1, SIGHUP}));
  // Replacing the callback.
  int replaced = 0;
  ASSERT_TRUE(loop->add_signal(SIGUSR1, [&](int) { ++replaced; }).ok());
  ASSERT_EQ(raise(SIGUSR1), 0);
  run_until(*loop, [&] { return replaced == 1; });
  EXPECT_EQ(replaced, 1);
  EXPECT_EQ(got.size(), 2u);
}

TEST_F(SignalTest, RemoveAndDestroyRestoreTheMask) {
  {
    auto loop = make_loop();
    ASSERT_TRUE(loop->add_signal(SIGUSR2, [](int) {}).ok());
    ASSERT_TRUE(loop->add_signal(SIGUSR1, [](int) {}).ok());
    EXPECT_TRUE(blocked(SIGUSR2));
    loop->remove_signal(SIGUSR2);
    EXPECT_FALSE(blocked(SIGUSR2));
    ASSERT_EQ(raise(SIGUSR1), 0);  // pending at destruction: consumed, not delivered
  }
  EXPECT_FALSE(blocked(SIGUSR1));
}

TEST_F(SignalTest, StopOnSigterm) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &s, nullptr);
  auto loop = make_loop();
  ASSERT_TRUE(loop->add_signal(SIGTERM, [&](int) { loop->stop(); }).ok());
  loop->call_after(5ms, [] { raise(SIGTERM); });
  auto guard = loop->call_after(2s, [&] { loop->stop(); });
  auto start = EventLoop::now();
  ASSERT_TRUE(loop->run().ok());
  EXPECT_LT(EventLoop::now() - start, 1s);
  loop->remove_timer(guard);
}

TEST(EventLoop, RejectsBadRegistrations) {
  auto loop = make_loop();
  EXPECT_FALSE(loop->add_signal(SIGKILL, [](int) {}).ok());
  EXPECT_FALSE(loop->add_signal(0, [](int) {}).ok());
  EXPECT_FALSE(loop->add_fd(-1, kIoRead, [](uint32_t) {}).ok());
  // A regular file cannot be polled: epoll says EPERM.
  Fd f(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  ASSERT_TRUE(f.valid());
  auto st = loop->add_fd(f.get(), kIoRead, [](uint32_t) {});
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(loop->has_fd(f.get()));
}

}  // namespace
}  // namespace amlfw
