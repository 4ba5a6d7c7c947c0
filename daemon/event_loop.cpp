// SPDX-License-Identifier: MIT
#include "daemon/event_loop.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>

#include <cerrno>
#include <climits>
#include <string>
#include <vector>

namespace amlfw {
namespace {

constexpr uint64_t kTimerToken = 1;
constexpr uint64_t kSignalToken = 2;

uint32_t to_epoll(uint32_t interest) {
  uint32_t ev = 0;
  if (interest & kIoRead) ev |= EPOLLIN;
  if (interest & kIoWrite) ev |= EPOLLOUT;
  return ev;
}

uint32_t from_epoll(uint32_t ev) {
  uint32_t r = 0;
  if (ev & (EPOLLIN | EPOLLPRI)) r |= kIoRead;
  if (ev & EPOLLOUT) r |= kIoWrite;
  if (ev & EPOLLERR) r |= kIoError;
  if (ev & (EPOLLHUP | EPOLLRDHUP)) r |= kIoHangup;
  return r;
}

timespec to_timespec(EventLoop::Clock::time_point tp) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
  if (ns <= 0) ns = 1;  // an all-zero it_value would disarm the timerfd
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

int to_epoll_timeout(EventLoop::Duration d) {
  if (d < EventLoop::Duration::zero()) return -1;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

// Removes one pending instance of a blocked signal, so unblocking it does not deliver it
// with its default action after the loop stopped watching it.
void consume_pending(int signo) {
  sigset_t pending;
  sigemptyset(&pending);
  if (sigpending(&pending) != 0 || !sigismember(&pending, signo)) return;
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  timespec zero{0, 0};
  while (sigtimedwait(&one, nullptr, &zero) == signo) {
  }
}

}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  std::unique_ptr<EventLoop> loop(new EventLoop());
  AMLFW_TRY(loop->init());
  return loop;
}

Status EventLoop::init() {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return sys_error("event loop: epoll_create1");
  timerfd_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timerfd_) return sys_error("event loop: timerfd_create");
  sigset_t empty;
  sigemptyset(&empty);
  signalfd_.reset(signalfd(-1, &empty, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signalfd_) return sys_error("event loop: signalfd");

  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTimerToken;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, timerfd_.get(), &ev) != 0)
    return sys_error("event loop: epoll_ctl(timerfd)");
  ev.data.u64 = kSignalToken;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signalfd_.get(), &ev) != 0)
    return sys_error("event loop: epoll_ctl(signalfd)");
  return {};
}

EventLoop::~EventLoop() {
  for (int signo : blocked_by_us_) {
    consume_pending(signo);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    sigprocmask(SIG_UNBLOCK, &one, nullptr);
  }
}

// ---- descriptors ------------------------------------------------------------------------

Status EventLoop::add_fd(int fd, uint32_t interest, IoCallback cb) {
  if (fd < 0) return runtime_error("event loop: add_fd: invalid descriptor " + std::to_string(fd));
  if (fds_.count(fd))
    return runtime_error("event loop: add_fd: descriptor " + std::to_string(fd) +
                         " is already registered (use modify_fd)");
  FdEntry e;
  e.fd = fd;
  e.interest = interest & (kIoRead | kIoWrite);
  e.token = next_token_++;
  e.cb = std::make_shared<IoCallback>(std::move(cb));
  epoll_event ev{};
  ev.events = to_epoll(e.interest);
  ev.data.u64 = e.token;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    return sys_error("event loop: epoll_ctl(ADD, fd " + std::to_string(fd) + ")");
  token_to_fd_[e.token] = fd;
  fds_.emplace(fd, std::move(e));
  return {};
}

Status EventLoop::modify_fd(int fd, uint32_t interest) {
  auto it = fds_.find(fd);
  if (it == fds_.end())
    return runtime_error("event loop: modify_fd: descriptor " + std::to_string(fd) + " is not registered");
  interest &= (kIoRead | kIoWrite);
  if (it->second.interest == interest) return {};
  epoll_event ev{};
  ev.events = to_epoll(interest);
  ev.data.u64 = it->second.token;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0)
    return sys_error("event loop: epoll_ctl(MOD, fd " + std::to_string(fd) + ")");
  it->second.interest = interest;
  return {};
}

void EventLoop::remove_fd(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return;
  // EBADF when the caller closed the fd first: the kernel already dropped it.
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  token_to_fd_.erase(it->second.token);
  fds_.erase(it);
}

// ---- timers -------------------------------------------------------------------------------

EventLoop::TimerId EventLoop::add_timer(TimerCallback cb) {
  TimerId id = next_timer_++;
  Timer t;
  t.cb = std::make_shared<TimerCallback>(std::move(cb));
  timers_.emplace(id, std::move(t));
  return id;
}

void EventLoop::queue_erase(Timer& t) {
  if (!t.armed) return;
  for (auto it = queue_.lower_bound({t.deadline, t.seq, 0}); it != queue_.end(); ++it) {
    if (std::get<1>(*it) == t.seq) {
      queue_.erase(it);
      break;
    }
    if (std::get<0>(*it) != t.deadline) break;
  }
  t.armed = false;
}

bool EventLoop::arm_timer(TimerId id, Duration delay, Duration interval) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return false;
  Timer& t = it->second;
  queue_erase(t);
  if (delay < Duration::zero()) delay = Duration::zero();
  t.deadline = now() + delay;
  t.interval = interval > Duration::zero() ? interval : Duration::zero();
  t.seq = next_seq_++;
  t.armed = true;
  queue_.emplace(t.deadline, t.seq, id);
  rearm_timerfd();
  return true;
}

bool EventLoop::disarm_timer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return false;
  queue_erase(it->second);
  rearm_timerfd();
  return true;
}

void EventLoop::remove_timer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  queue_erase(it->second);
  timers_.erase(it);
  rearm_timerfd();
}

bool EventLoop::timer_armed(TimerId id) const {
  auto it = timers_.find(id);
  return it != timers_.end() && it->second.armed;
}

EventLoop::TimerId EventLoop::call_after(Duration delay, TimerCallback cb) {
  TimerId id = add_timer(std::move(cb));
  timers_[id].one_shot_auto_remove = true;
  arm_timer(id, delay);
  return id;
}

void EventLoop::rearm_timerfd() {
  itimerspec its{};
  if (queue_.empty()) {
    if (timerfd_deadline_ == Clock::time_point{}) return;
    timerfd_deadline_ = Clock::time_point{};
  } else {
    auto earliest = std::get<0>(*queue_.begin());
    if (earliest == timerfd_deadline_) return;
    timerfd_deadline_ = earliest;
    its.it_value = to_timespec(earliest);
  }
  // Cannot fail with a valid timerfd and a normalized timespec.
  timerfd_settime(timerfd_.get(), TFD_TIMER_ABSTIME, &its, nullptr);
}

void EventLoop::dispatch_timers() {
  uint64_t expirations = 0;
  while (read(timerfd_.get(), &expirations, sizeof expirations) < 0 && errno == EINTR) {
  }
  timerfd_deadline_ = Clock::time_point{};  // fired (or never armed): arm again below

  // Due timers, collected first: a callback that re-arms a timer (itself included) with
  // a zero delay gets a new sequence number and fires in the next round, not in a loop here.
  const auto t_now = now();
  std::vector<std::pair<uint64_t, TimerId>> due;
  for (const auto& [deadline, seq, id] : queue_) {
    if (deadline > t_now) break;
    due.emplace_back(seq, id);
  }
  for (const auto& [seq, id] : due) {
    if (stop_) break;
    auto it = timers_.find(id);
    if (it == timers_.end() || !it->second.armed || it->second.seq != seq) continue;  // changed meanwhile
    Timer& t = it->second;
    auto deadline = t.deadline;
    queue_erase(t);
    if (t.interval > Duration::zero()) {
      auto late = t_now - deadline;
      auto periods = late / t.interval + 1;  // skip missed periods instead of bursting
      t.deadline = deadline + periods * t.interval;
      t.seq = next_seq_++;
      t.armed = true;
      queue_.emplace(t.deadline, t.seq, id);
    }
    std::shared_ptr<TimerCallback> cb = t.cb;  // keeps the callable alive if it removes itself
    if (t.one_shot_auto_remove) timers_.erase(it);
    (*cb)();
  }
  rearm_timerfd();
}

// ---- signals ------------------------------------------------------------------------------

Status EventLoop::add_signal(int signo, SignalCallback cb) {
  if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP)
    return runtime_error("event loop: add_signal: signal " + std::to_string(signo) + " cannot be watched");
  if (!signals_.count(signo)) {
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, signo);
    if (sigprocmask(SIG_BLOCK, &one, &old) != 0) return sys_error("event loop: sigprocmask");
    if (!sigismember(&old, signo)) blocked_by_us_.insert(signo);
  }
  signals_[signo] = std::make_shared<SignalCallback>(std::move(cb));
  sigset_t mask;
  sigemptyset(&mask);
  for (const auto& [s, c] : signals_) sigaddset(&mask, s);
  if (signalfd(signalfd_.get(), &mask, SFD_NONBLOCK | SFD_CLOEXEC) < 0) {
    int err = errno;
    signals_.erase(signo);
    return sys_error("event loop: signalfd", err);
  }
  return {};
}

void EventLoop::remove_signal(int signo) {
  if (!signals_.erase(signo)) return;
  sigset_t mask;
  sigemptyset(&mask);
  for (const auto& [s, c] : signals_) sigaddset(&mask, s);
  signalfd(signalfd_.get(), &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (blocked_by_us_.erase(signo)) {
    consume_pending(signo);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    sigprocmask(SIG_UNBLOCK, &one, nullptr);
  }
}

void EventLoop::dispatch_signals() {
  signalfd_siginfo info[8];
  for (;;) {
    ssize_t n = read(signalfd_.get(), info, sizeof info);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    size_t count = static_cast<size_t>(n) / sizeof(signalfd_siginfo);
    for (size_t i = 0; i < count; ++i) {
      int signo = static_cast<int>(info[i].ssi_signo);
      auto it = signals_.find(signo);
      if (it == signals_.end()) continue;
      std::shared_ptr<SignalCallback> cb = it->second;
      (*cb)(signo);
    }
    if (count < sizeof info / sizeof info[0]) return;
  }
}

// ---- running ------------------------------------------------------------------------------

Status EventLoop::run() {
  stop_ = false;
  while (!stop_) AMLFW_TRY(run_once(Duration(-1)));
  return {};
}

Status EventLoop::run_once(Duration timeout) {
  epoll_event events[64];
  int n = epoll_wait(epoll_.get(), events, 64, to_epoll_timeout(timeout));
  if (n < 0) {
    if (errno == EINTR) return {};
    return sys_error("event loop: epoll_wait");
  }
  for (int i = 0; i < n && !stop_; ++i) {
    uint64_t token = events[i].data.u64;
    if (token == kTimerToken) {
      dispatch_timers();
      continue;
    }
    if (token == kSignalToken) {
      dispatch_signals();
      continue;
    }
    auto tk = token_to_fd_.find(token);
    if (tk == token_to_fd_.end()) continue;  // removed by an earlier callback of this batch
    auto it = fds_.find(tk->second);
    if (it == fds_.end()) continue;
    std::shared_ptr<IoCallback> cb = it->second.cb;
    (*cb)(from_epoll(events[i].events));
  }
  return {};
}

}  // namespace amlfw
