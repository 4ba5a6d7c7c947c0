// SPDX-License-Identifier: MIT
// The eBPF backend's ring buffer (amlfw_events): denied connections, datagrams and packets
// (and, in audit mode, the would-be-denied ones) as plain structs, for the event loop.
//
//   auto ev = EbpfEvents::open(kEbpfPinDir, [](const EbpfEvent& e) { ... });
//   loop.add_fd((*ev)->fd(), EPOLLIN, [&] { (*ev)->drain(); });
//
// fd() is an epoll descriptor that becomes readable when records wait; drain() hands each
// waiting record to the callback, in order, and returns how many. Opening the pinned map
// works from any process (a restarted daemon, a test), once a policy was applied.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "bpf/amlfw_abi.h"
#include "policy/catalog.h"
#include "policy/net.h"
#include "policy/result.h"

struct ring_buffer;

namespace amlfw {

struct EbpfEvent {
  uint64_t ts_ns = 0;          // CLOCK_MONOTONIC
  uint64_t cgroup_id = 0;
  uint64_t generation = 0;     // the policy generation that decided
  uint32_t pid = 0;            // 0 from the packet hooks
  std::string comm;            // "" from the packet hooks
  IpAddr addr;                 // remote: destination (egress) or source (ingress)
  uint16_t port = 0;           // destination port
  uint8_t proto = 0;           // IP protocol number
  uint8_t hook = 0;            // enum amlfw_hook
  uint32_t reason = 0;         // enum amlfw_reason
  bool audit = false;          // audit mode: it went through
  Direction direction = Direction::kEgress;
};

EbpfEvent ebpf_decode_event(const amlfw_event& raw);
// Stable names of the reason codes and hooks ("no-match", "connect4", ...).
std::string_view ebpf_reason_name(uint32_t reason);
std::string_view ebpf_hook_name(uint8_t hook);
// One line: "deny connect4 pid=12 comm=curl cgroup=77 tcp 192.0.2.7:443 reason=no-match gen=3".
std::string ebpf_event_text(const EbpfEvent& e);

class EbpfEvents {
 public:
  using Callback = std::function<void(const EbpfEvent&)>;
  static Result<std::unique_ptr<EbpfEvents>> open(const std::string& pin_dir, Callback cb);
  // The same on an amlfw_events map descriptor (duplicated; tests, a loaded EbpfObject).
  static Result<std::unique_ptr<EbpfEvents>> open_fd(int map_fd, Callback cb);
  ~EbpfEvents();
  EbpfEvents(const EbpfEvents&) = delete;
  EbpfEvents& operator=(const EbpfEvents&) = delete;

  int fd() const;
  Result<size_t> drain();
  // Waits up to timeout_ms for records, then drains.
  Result<size_t> poll(int timeout_ms);

 private:
  EbpfEvents() = default;
  static int on_sample(void* ctx, void* data, size_t size);
  ::ring_buffer* rb_ = nullptr;
  int map_fd_ = -1;
  Callback cb_;
  size_t seen_ = 0;
};

}  // namespace amlfw
