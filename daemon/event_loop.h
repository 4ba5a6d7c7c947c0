// SPDX-License-Identifier: MIT
// EventLoop: the daemon's one single-threaded epoll loop.
//
//  - file descriptors with read/write interest and a callback (add_fd, modify_fd, remove_fd);
//  - timers on CLOCK_MONOTONIC, one-shot or periodic, re-armable, multiplexed on one timerfd
//    (an ordered queue of deadlines; the timerfd is always armed for the earliest one);
//  - signals through one signalfd (add_signal blocks the signal for the process and
//    restores the previous mask when the loop is destroyed);
//  - run() until stop().
//
// Every callback may add, modify or remove any registration, its own included (removal
// from inside a callback is safe: the callback object stays alive until it returns, and no
// event already collected for a removed descriptor or timer is delivered afterwards).
// No threads: every method must be called from the thread that runs the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "daemon/fd.h"
#include "policy/result.h"

namespace amlfw {

// Interest and readiness bits for descriptors.
inline constexpr uint32_t kIoRead = 1u << 0;
inline constexpr uint32_t kIoWrite = 1u << 1;
inline constexpr uint32_t kIoError = 1u << 2;   // readiness only: EPOLLERR
inline constexpr uint32_t kIoHangup = 1u << 3;  // readiness only: EPOLLHUP / EPOLLRDHUP

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux
  using Duration = std::chrono::nanoseconds;
  using IoCallback = std::function<void(uint32_t events)>;
  using TimerCallback = std::function<void()>;
  using SignalCallback = std::function<void(int signo)>;
  using TimerId = uint64_t;

  // Opens the epoll, timer and signal descriptors.
  static Result<std::unique_ptr<EventLoop>> create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // ---- descriptors (the loop does not own them) -----------------------------------
  // `interest` is a mask of kIoRead | kIoWrite (0 is allowed: errors and hangups only).
  // Errors and hangups are always reported. Adding a descriptor twice is an error.
  Status add_fd(int fd, uint32_t interest, IoCallback cb);
  Status modify_fd(int fd, uint32_t interest);
  // Unregisters `fd`; a no-op when it is not registered. Call it before closing the fd.
  void remove_fd(int fd);
  bool has_fd(int fd) const { return fds_.count(fd) != 0; }
  size_t fd_count() const { return fds_.size(); }

  // ---- timers ----------------------------------------------------------------------
  // Creates a disarmed timer. Arm it with arm_timer(); it stays until remove_timer().
  TimerId add_timer(TimerCallback cb);
  // (Re)arms: first expiry after `delay` (negative counts as zero), then every `interval`
  // when it is positive (periodic), else once. Re-arming an armed timer moves it.
  // Timers due at the same time fire in the order they were armed. Returns false for an
  // unknown id.
  bool arm_timer(TimerId id, Duration delay, Duration interval = Duration::zero());
  bool disarm_timer(TimerId id);
  void remove_timer(TimerId id);
  bool timer_armed(TimerId id) const;
  // One-shot convenience: fires once after `delay`, then removes itself.
  TimerId call_after(Duration delay, TimerCallback cb);
  size_t timer_count() const { return timers_.size(); }

  // ---- signals ---------------------------------------------------------------------
  // Blocks `signo` for the process and delivers it through the signalfd to `cb`.
  // Replaces an earlier callback for the same signal.
  Status add_signal(int signo, SignalCallback cb);
  // Stops watching `signo` and unblocks it if add_signal blocked it.
  void remove_signal(int signo);

  // ---- running ---------------------------------------------------------------------
  // Dispatches events until stop(). Returns an error only when epoll itself fails.
  Status run();
  // Waits at most `timeout` (negative: forever) for events and dispatches one batch.
  Status run_once(Duration timeout);
  // Makes run() return after the current callback; callable from callbacks.
  void stop() { stop_ = true; }
  bool stopped() const { return stop_; }

  static Clock::time_point now() { return Clock::now(); }

 private:
  struct FdEntry {
    int fd = -1;
    uint32_t interest = 0;
    uint64_t token = 0;  // epoll data: unique per registration
    std::shared_ptr<IoCallback> cb;
  };
  struct Timer {
    std::shared_ptr<TimerCallback> cb;
    Clock::time_point deadline{};
    Duration interval{};
    uint64_t seq = 0;  // arm order; key in queue_ with deadline
    bool armed = false;
    bool one_shot_auto_remove = false;
  };

  EventLoop() = default;
  Status init();
  void dispatch_timers();
  void dispatch_signals();
  void rearm_timerfd();
  void queue_erase(Timer& t);

  Fd epoll_;
  Fd timerfd_;
  Fd signalfd_;
  bool stop_ = false;

  std::unordered_map<int, FdEntry> fds_;
  std::unordered_map<uint64_t, int> token_to_fd_;
  uint64_t next_token_ = 16;  // 1 and 2 are the timerfd and the signalfd

  std::unordered_map<TimerId, Timer> timers_;
  std::set<std::tuple<Clock::time_point, uint64_t, TimerId>> queue_;  // (deadline, seq, id)
  TimerId next_timer_ = 1;
  uint64_t next_seq_ = 1;
  Clock::time_point timerfd_deadline_{};  // what the timerfd is armed for (zero: disarmed)

  std::map<int, std::shared_ptr<SignalCallback>> signals_;
  std::set<int> blocked_by_us_;
};

}  // namespace amlfw
