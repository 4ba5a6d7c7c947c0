// SPDX-License-Identifier: MIT
// The system around the eBPF backend: kernel feature probes, the cgroup v2 mount and the
// configured cgroup, bpffs and the pin directory, and its lock. No logging; errors are
// one line naming the place and the fix.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/fd.h"
#include "policy/result.h"

namespace amlfw {

inline constexpr std::string_view kEbpfPinDir = "/sys/fs/bpf/amlfw";
inline constexpr std::string_view kBpffsMount = "/sys/fs/bpf";
// The environment variable that moves the pin directory (tests, several installations on
// one machine): an absolute path on a bpffs, e.g. /sys/fs/bpf/amlfw-test.
inline constexpr const char* kEbpfPinDirEnv = "AMLFW_EBPF_PIN_DIR";
// The pin directory of this process: $AMLFW_EBPF_PIN_DIR when it is set and not empty,
// else kEbpfPinDir. (EbpfBackend::create refuses one that is not absolute.)
std::string ebpf_pin_dir();

// What the programs need from the kernel: program types, map types, helpers per program
// type. Each missing item is one string ("map type BPF_MAP_TYPE_RINGBUF (Linux 5.8)").
struct EbpfProbe {
  std::vector<std::string> missing;
  bool denied = false;  // the probes themselves were refused (not root)
};
EbpfProbe ebpf_probe_kernel();
// An error naming everything the kernel lacks (or the missing privilege), or success.
Status ebpf_check_kernel();

// The cgroup v2 mount point from /proc/self/mountinfo ("" when there is none).
// `mountinfo` is the file's text (tests pass their own).
std::string cgroup2_mount_from(std::string_view mountinfo);
Result<std::string> cgroup2_mount();

// The directory of the configured cgroup ([ebpf] cgroup): "" = the cgroup v2 root; an
// absolute path inside the cgroup2 mount; or a path relative to the cgroup2 root
// ("system.slice/x.service", "/system.slice/x.service" when that is not a directory itself).
Result<std::string> resolve_cgroup(const std::string& configured);

// The cgroup id (kernfs node id) of a cgroup directory, as bpf_link_info reports it.
Result<uint64_t> cgroup_id_of(const std::string& dir);

// Mounts bpffs at /sys/fs/bpf when `pin_dir` lies under it and it is not a bpffs yet, then
// creates `pin_dir` (mode 0700). `pin_dir`'s parent must be on a bpffs afterwards.
Status ensure_pin_dir(const std::string& pin_dir);
// True when `path` is a directory on a bpffs.
bool is_bpffs_dir(const std::string& path);

// An exclusive flock(2) on the pin directory: one amlfw process changes the maps at a time.
class PinDirLock {
 public:
  static Result<PinDirLock> acquire(const std::string& pin_dir);
  PinDirLock() = default;
  PinDirLock(PinDirLock&&) noexcept = default;
  PinDirLock& operator=(PinDirLock&&) noexcept = default;

 private:
  explicit PinDirLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;  // closing it releases the lock
};

}  // namespace amlfw
