// SPDX-License-Identifier: MIT
// Fd: a move-only owner of one file descriptor. Closes it on destruction.
// Every descriptor amlfw opens is opened with O_CLOEXEC / SOCK_CLOEXEC / *_CLOEXEC.
#pragma once

#include <unistd.h>

#include <utility>

namespace amlfw {

class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Gives up ownership without closing.
  int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the current descriptor (if any) and takes ownership of `fd`.
  // close() errors are ignored on purpose: on Linux the descriptor is gone either way,
  // and retrying close() after EINTR could close a descriptor another open() just got.
  void reset(int fd = -1) noexcept {
    int old = std::exchange(fd_, fd);
    if (old >= 0) ::close(old);
  }

 private:
  int fd_ = -1;
};

}  // namespace amlfw
