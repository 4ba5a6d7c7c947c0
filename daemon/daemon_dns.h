// SPDX-License-Identifier: MIT
// The DNS proxy's place in the daemon (Daemon::start_dns / reload_dns / stop_dns, in
// daemon/daemon_dns.cpp): the learner, the proxy, and what keeps them going.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/dns_learned.h"
#include "daemon/dns_proxy.h"
#include "daemon/event_loop.h"

namespace amlfw {

struct DnsRuntime {
  std::unique_ptr<DnsLearner> learner;
  std::unique_ptr<DnsProxy> proxy;
  DnsProxyOptions options;               // what the proxy was (or is to be) opened with
  EventLoop::TimerId retry_timer = 0;    // binding failed: try again
  std::string last_bind_error;           // logged once until it changes
  EventLoop::TimerId prune_timer = 0;
  // The groups that have learned-address sets in the applied policy (by generation).
  uint64_t groups_generation = 0;
  std::vector<std::string> live_groups;
  // Notices (bounds hit): at most kNoticeBurst lines a minute, the rest counted.
  std::chrono::steady_clock::time_point notice_window{};
  unsigned notices = 0;
  unsigned suppressed = 0;
};

}  // namespace amlfw
