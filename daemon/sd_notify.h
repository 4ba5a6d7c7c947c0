// SPDX-License-Identifier: MIT
// SdNotifier: systemd's notification protocol (sd_notify(3)) for Type=notify services.
// Datagrams go to $NOTIFY_SOCKET (a path, or an abstract socket written "@name") with
// sendmsg(); when the variable is unset every call is a no-op that succeeds.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "policy/result.h"

namespace amlfw {

class SdNotifier {
 public:
  // From $NOTIFY_SOCKET (disabled when unset or empty).
  static SdNotifier from_environment();
  // An explicit socket address ("" disables), e.g. for tests.
  explicit SdNotifier(std::string socket_address = {}) : address_(std::move(socket_address)) {}

  bool enabled() const { return !address_.empty(); }
  const std::string& address() const { return address_; }

  // Sends `state` as is: newline-separated VAR=VALUE assignments.
  Status notify(std::string_view state) const;
  // READY=1 (plus STATUS= when `status` is not empty).
  Status ready(std::string_view status = {}) const;
  // RELOADING=1 and MONOTONIC_USEC=now (what systemd 253+ wants for Type=notify-reload).
  Status reloading(std::string_view status = {}) const;
  Status stopping(std::string_view status = {}) const;
  Status status(std::string_view status) const;
  Status watchdog() const;

 private:
  std::string address_;
};

// Watchdog keep-alive period asked by systemd: WATCHDOG_USEC when WATCHDOG_PID is unset or
// is this process. Send watchdog() at about half of it. std::nullopt: no watchdog.
std::optional<std::chrono::microseconds> watchdog_interval();
// The same from explicit values (nullptr for unset), for tests.
std::optional<std::chrono::microseconds> watchdog_interval(const char* usec, const char* pid, long self_pid);

}  // namespace amlfw
