// SPDX-License-Identifier: MIT
#include "daemon/ebpf_events.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace amlfw {

EbpfEvent ebpf_decode_event(const amlfw_event& raw) {
  EbpfEvent e;
  e.ts_ns = raw.ts_ns;
  e.cgroup_id = raw.cgroup_id;
  e.generation = raw.generation;
  e.pid = raw.pid;
  e.comm.assign(reinterpret_cast<const char*>(raw.comm), strnlen(reinterpret_cast<const char*>(raw.comm), sizeof raw.comm));
  e.addr = IpAddr::from_bytes(raw.family == 6, raw.addr);
  e.port = raw.port;
  e.proto = raw.proto;
  e.hook = raw.hook;
  e.reason = raw.reason;
  e.audit = raw.audit != 0;
  e.direction = raw.direction == AMLFW_DIR_INGRESS ? Direction::kIngress : Direction::kEgress;
  return e;
}

std::string_view ebpf_reason_name(uint32_t reason) {
  switch (reason) {
    case AMLFW_REASON_NONE: return "none";
    case AMLFW_REASON_NO_MATCH: return "no-match";
    case AMLFW_REASON_PORT: return "port";
    case AMLFW_REASON_EXPIRED: return "expired";
    case AMLFW_REASON_DNS: return "dns-not-a-resolver";
    case AMLFW_REASON_PROTO: return "protocol";
    case AMLFW_REASON_NO_POLICY: return "no-policy";
    case AMLFW_REASON_MALFORMED: return "malformed";
    default: return "unknown";
  }
}

std::string_view ebpf_hook_name(uint8_t hook) {
  switch (hook) {
    case AMLFW_HOOK_CONNECT4: return "connect4";
    case AMLFW_HOOK_CONNECT6: return "connect6";
    case AMLFW_HOOK_SENDMSG4: return "sendmsg4";
    case AMLFW_HOOK_SENDMSG6: return "sendmsg6";
    case AMLFW_HOOK_EGRESS: return "egress";
    case AMLFW_HOOK_INGRESS: return "ingress";
    default: return "unknown";
  }
}

std::string ebpf_event_text(const EbpfEvent& e) {
  std::string proto = e.proto == 6 ? "tcp" : e.proto == 17 ? "udp" : e.proto == 1 ? "icmp" : e.proto == 58 ? "icmpv6"
                                                                                                            : "proto-" + std::to_string(e.proto);
  std::string addr = e.addr.v6 ? "[" + e.addr.str() + "]" : e.addr.str();
  std::string out = e.audit ? "audit " : "deny ";
  out += std::string(ebpf_hook_name(e.hook));
  out += " pid=" + std::to_string(e.pid) + " comm=" + (e.comm.empty() ? "-" : e.comm);
  out += " cgroup=" + std::to_string(e.cgroup_id) + " " + proto + " " + addr + ":" + std::to_string(e.port);
  out += " reason=" + std::string(ebpf_reason_name(e.reason)) + " gen=" + std::to_string(e.generation);
  return out;
}

int EbpfEvents::on_sample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<EbpfEvents*>(ctx);
  if (size < sizeof(amlfw_event)) return 0;  // not ours: skip
  amlfw_event raw;
  std::memcpy(&raw, data, sizeof raw);
  ++self->seen_;
  if (self->cb_) self->cb_(ebpf_decode_event(raw));
  return 0;
}

Result<std::unique_ptr<EbpfEvents>> EbpfEvents::open(const std::string& pin_dir, Callback cb) {
  const std::string path = pin_dir + "/amlfw_events";
  std::unique_ptr<EbpfEvents> ev(new EbpfEvents);
  ev->cb_ = std::move(cb);
  ev->map_fd_ = bpf_obj_get(path.c_str());
  if (ev->map_fd_ < 0) {
    return sys_error("ebpf: open the event ring buffer " + path + " (apply a policy with backend = \"ebpf\" first)");
  }
  ev->rb_ = ring_buffer__new(ev->map_fd_, &EbpfEvents::on_sample, ev.get(), nullptr);
  if (!ev->rb_) return sys_error("ebpf: map the event ring buffer " + path);
  return ev;
}

Result<std::unique_ptr<EbpfEvents>> EbpfEvents::open_fd(int map_fd, Callback cb) {
  std::unique_ptr<EbpfEvents> ev(new EbpfEvents);
  ev->cb_ = std::move(cb);
  ev->map_fd_ = ::fcntl(map_fd, F_DUPFD_CLOEXEC, 3);
  if (ev->map_fd_ < 0) return sys_error("ebpf: duplicate the event ring buffer descriptor");
  ev->rb_ = ring_buffer__new(ev->map_fd_, &EbpfEvents::on_sample, ev.get(), nullptr);
  if (!ev->rb_) return sys_error("ebpf: map the event ring buffer");
  return ev;
}

EbpfEvents::~EbpfEvents() {
  if (rb_) ring_buffer__free(rb_);
  if (map_fd_ >= 0) ::close(map_fd_);
}

int EbpfEvents::fd() const { return ring_buffer__epoll_fd(rb_); }

Result<size_t> EbpfEvents::drain() {
  size_t before = seen_;
  int n = ring_buffer__consume(rb_);
  if (n < 0 && n != -EINTR) return sys_error("ebpf: read the event ring buffer", -n);
  return seen_ - before;
}

Result<size_t> EbpfEvents::poll(int timeout_ms) {
  size_t before = seen_;
  int n = ring_buffer__poll(rb_, timeout_ms);
  if (n < 0 && n != -EINTR) return sys_error("ebpf: wait for the event ring buffer", -n);
  return seen_ - before;
}

}  // namespace amlfw
