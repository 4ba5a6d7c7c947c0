// SPDX-License-Identifier: MIT
#include "daemon/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "daemon/fd.h"

namespace amlfw {
namespace {

// STATUS= is one line: newlines would start new assignments.
std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  return out;
}

std::string with_status(std::string state, std::string_view status) {
  if (!status.empty()) state += "\nSTATUS=" + one_line(status);
  return state;
}

}  // namespace

SdNotifier SdNotifier::from_environment() {
  const char* e = std::getenv("NOTIFY_SOCKET");
  return SdNotifier(e ? std::string(e) : std::string());
}

Status SdNotifier::notify(std::string_view state) const {
  if (!enabled()) return {};
  const std::string where = "sd_notify to '" + address_ + "'";
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  socklen_t len = 0;
  if (address_[0] == '/' || address_[0] == '@') {
    if (address_.size() >= sizeof sun.sun_path)
      return runtime_error(where + ": socket path too long (check NOTIFY_SOCKET)");
    std::memcpy(sun.sun_path, address_.data(), address_.size());
    if (address_[0] == '@') sun.sun_path[0] = '\0';  // abstract namespace: no trailing NUL
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() + (address_[0] == '/' ? 1 : 0));
  } else {
    return runtime_error(where + ": unsupported address (NOTIFY_SOCKET must be a path or @abstract)");
  }
  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return sys_error(where + ": socket");
  iovec iov{const_cast<char*>(state.data()), state.size()};
  msghdr msg{};
  msg.msg_name = &sun;
  msg.msg_namelen = len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  for (;;) {
    ssize_t n = ::sendmsg(fd.get(), &msg, MSG_NOSIGNAL);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    return sys_error(where);
  }
  return {};
}

Status SdNotifier::ready(std::string_view status) const { return notify(with_status("READY=1", status)); }

Status SdNotifier::reloading(std::string_view status) const {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  return notify(with_status("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec), status));
}

Status SdNotifier::stopping(std::string_view status) const { return notify(with_status("STOPPING=1", status)); }

Status SdNotifier::status(std::string_view status) const { return notify("STATUS=" + one_line(status)); }

Status SdNotifier::watchdog() const { return notify("WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_interval(const char* usec, const char* pid, long self_pid) {
  if (!usec || !*usec) return std::nullopt;
  unsigned long long u = 0;
  const char* end = usec + std::strlen(usec);
  auto [p, ec] = std::from_chars(usec, end, u);
  if (ec != std::errc() || p != end || u == 0) return std::nullopt;
  if (pid && *pid) {
    long v = 0;
    const char* pend = pid + std::strlen(pid);
    auto [pp, pec] = std::from_chars(pid, pend, v);
    if (pec != std::errc() || pp != pend || v != self_pid) return std::nullopt;
  }
  return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(u));
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  return watchdog_interval(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), static_cast<long>(::getpid()));
}

}  // namespace amlfw
