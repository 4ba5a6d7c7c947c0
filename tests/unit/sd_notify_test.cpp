// SPDX-License-Identifier: MIT
#include "daemon/sd_notify.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "daemon/fd.h"

namespace amlfw {
namespace {

// A datagram socket the test binds, as systemd would.
class NotifySocket {
 public:
  explicit NotifySocket(bool abstract) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::string name = "amlfw-notify-test-" + std::to_string(::getpid()) + (abstract ? "-abs" : "");
    socklen_t len;
    if (abstract) {
      address_ = "@" + name;
      std::memcpy(sun.sun_path + 1, name.data(), name.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    } else {
      address_ = "/tmp/" + name + ".sock";
      ::unlink(address_.c_str());
      std::memcpy(sun.sun_path, address_.data(), address_.size());
      len = static_cast<socklen_t>(sizeof sun);
      path_ = address_;
    }
    ok_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sun), len) == 0;
  }
  ~NotifySocket() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  bool ok() const { return ok_; }
  const std::string& address() const { return address_; }
  // Next datagram, or "<none>".
  std::string read() {
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    return n < 0 ? std::string("<none>") : std::string(buf, static_cast<size_t>(n));
  }

 private:
  Fd fd_;
  std::string address_, path_;
  bool ok_ = false;
};

TEST(SdNotify, PathSocketReceivesEachMessage) {
  NotifySocket sock(false);
  ASSERT_TRUE(sock.ok());
  SdNotifier n(sock.address());
  ASSERT_TRUE(n.enabled());
  ASSERT_TRUE(n.ready().ok());
  EXPECT_EQ(sock.read(), "READY=1");
  ASSERT_TRUE(n.ready("enforcing 42 rules").ok());
  EXPECT_EQ(sock.read(), "READY=1\nSTATUS=enforcing 42 rules");
  ASSERT_TRUE(n.status("line one\nline two").ok());
  EXPECT_EQ(sock.read(), "STATUS=line one line two");  // one line, no injected assignment
  ASSERT_TRUE(n.stopping().ok());
  EXPECT_EQ(sock.read(), "STOPPING=1");
  ASSERT_TRUE(n.watchdog().ok());
  EXPECT_EQ(sock.read(), "WATCHDOG=1");
  ASSERT_TRUE(n.notify("ERRNO=5\nSTATUS=x").ok());
  EXPECT_EQ(sock.read(), "ERRNO=5\nSTATUS=x");
  EXPECT_EQ(sock.read(), "<none>");
}

TEST(SdNotify, ReloadingCarriesMonotonicTime) {
  NotifySocket sock(false);
  ASSERT_TRUE(sock.ok());
  SdNotifier n(sock.address());
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t before = static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  ASSERT_TRUE(n.reloading("reloading config").ok());
  std::string msg = sock.read();
  ASSERT_EQ(msg.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << msg;
  size_t at = std::strlen("RELOADING=1\nMONOTONIC_USEC=");
  size_t nl = msg.find('\n', at);
  ASSERT_NE(nl, std::string::npos);
  uint64_t usec = std::stoull(msg.substr(at, nl - at));
  EXPECT_GE(usec, before);
  EXPECT_LT(usec - before, 5000000u);
  EXPECT_EQ(msg.substr(nl), "\nSTATUS=reloading config");
}

TEST(SdNotify, AbstractSocket) {
  NotifySocket sock(true);
  ASSERT_TRUE(sock.ok());
  SdNotifier n(sock.address());
  ASSERT_TRUE(n.ready().ok());
  EXPECT_EQ(sock.read(), "READY=1");
}

TEST(SdNotify, FromEnvironmentAndNoop) {
  NotifySocket sock(false);
  ASSERT_TRUE(sock.ok());
  ::setenv("NOTIFY_SOCKET", sock.address().c_str(), 1);
  auto n = SdNotifier::from_environment();
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_EQ(n.address(), sock.address());
  ASSERT_TRUE(n.ready().ok());
  EXPECT_EQ(sock.read(), "READY=1");

  auto off = SdNotifier::from_environment();
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(off.ready().ok());  // no-op
  EXPECT_EQ(sock.read(), "<none>");
}

TEST(SdNotify, Errors) {
  EXPECT_FALSE(SdNotifier("/nonexistent/amlfw/notify.sock").ready().ok());
  auto r = SdNotifier("vsock:2:1234").ready();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("NOTIFY_SOCKET"), std::string::npos);
  EXPECT_FALSE(SdNotifier("/" + std::string(200, 'x')).ready().ok());
}

TEST(SdNotify, WatchdogInterval) {
  using std::chrono::microseconds;
  EXPECT_EQ(watchdog_interval(nullptr, nullptr, 10), std::nullopt);
  EXPECT_EQ(watchdog_interval("30000000", nullptr, 10), microseconds(30000000));
  EXPECT_EQ(watchdog_interval("30000000", "10", 10), microseconds(30000000));
  EXPECT_EQ(watchdog_interval("30000000", "11", 10), std::nullopt);  // meant for another process
  EXPECT_EQ(watchdog_interval("0", nullptr, 10), std::nullopt);
  EXPECT_EQ(watchdog_interval("abc", nullptr, 10), std::nullopt);
  EXPECT_EQ(watchdog_interval("12x", nullptr, 10), std::nullopt);
  EXPECT_EQ(watchdog_interval("-5", nullptr, 10), std::nullopt);
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  EXPECT_EQ(watchdog_interval(), microseconds(2000000));
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  EXPECT_EQ(watchdog_interval(), std::nullopt);
}

}  // namespace
}  // namespace amlfw
