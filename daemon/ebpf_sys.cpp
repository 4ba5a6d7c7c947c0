// SPDX-License-Identifier: MIT
#include "daemon/ebpf_sys.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace amlfw {
namespace {

struct ProgProbe {
  bpf_prog_type type;
  const char* name;
  const char* since;
};
struct MapProbe {
  bpf_map_type type;
  const char* name;
  const char* since;
};
struct HelperProbe {
  bpf_prog_type prog;
  const char* prog_name;
  bpf_func_id id;
  const char* name;
};

constexpr ProgProbe kProgs[] = {
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "BPF_PROG_TYPE_CGROUP_SOCK_ADDR", "Linux 4.17"},
    {BPF_PROG_TYPE_CGROUP_SKB, "BPF_PROG_TYPE_CGROUP_SKB", "Linux 4.10"},
};
constexpr MapProbe kMaps[] = {
    {BPF_MAP_TYPE_ARRAY, "BPF_MAP_TYPE_ARRAY", "Linux 3.19"},
    {BPF_MAP_TYPE_PERCPU_ARRAY, "BPF_MAP_TYPE_PERCPU_ARRAY", "Linux 4.6"},
    {BPF_MAP_TYPE_HASH, "BPF_MAP_TYPE_HASH", "Linux 3.19"},
    {BPF_MAP_TYPE_LRU_HASH, "BPF_MAP_TYPE_LRU_HASH", "Linux 4.10"},
    {BPF_MAP_TYPE_LPM_TRIE, "BPF_MAP_TYPE_LPM_TRIE", "Linux 4.11"},
    {BPF_MAP_TYPE_ARRAY_OF_MAPS, "BPF_MAP_TYPE_ARRAY_OF_MAPS", "Linux 4.12"},
    {BPF_MAP_TYPE_RINGBUF, "BPF_MAP_TYPE_RINGBUF", "Linux 5.8"},
};
constexpr HelperProbe kHelpers[] = {
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect", BPF_FUNC_map_lookup_elem, "bpf_map_lookup_elem"},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect", BPF_FUNC_ktime_get_ns, "bpf_ktime_get_ns"},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect", BPF_FUNC_ringbuf_reserve, "bpf_ringbuf_reserve"},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect", BPF_FUNC_ringbuf_submit, "bpf_ringbuf_submit"},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect", BPF_FUNC_get_current_pid_tgid, "bpf_get_current_pid_tgid"},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect", BPF_FUNC_get_current_comm, "bpf_get_current_comm"},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect", BPF_FUNC_get_current_cgroup_id, "bpf_get_current_cgroup_id"},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect", BPF_FUNC_map_update_elem, "bpf_map_update_elem"},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect", BPF_FUNC_get_socket_cookie, "bpf_get_socket_cookie"},
    {BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", BPF_FUNC_map_lookup_elem, "bpf_map_lookup_elem"},
    {BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", BPF_FUNC_map_update_elem, "bpf_map_update_elem"},
    {BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", BPF_FUNC_ktime_get_ns, "bpf_ktime_get_ns"},
    {BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", BPF_FUNC_skb_load_bytes, "bpf_skb_load_bytes"},
    {BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", BPF_FUNC_sk_fullsock, "bpf_sk_fullsock"},
    {BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", BPF_FUNC_skb_cgroup_id, "bpf_skb_cgroup_id"},
    {BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", BPF_FUNC_ringbuf_reserve, "bpf_ringbuf_reserve"},
    {BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", BPF_FUNC_ringbuf_submit, "bpf_ringbuf_submit"},
};

bool on_fs(const std::string& path, long magic) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && static_cast<long>(st.f_type) == magic;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() &&
        s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool has_dotdot(std::string_view p) {
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (p.substr(i, j - i) == "..") return true;
    i = j + 1;
  }
  return false;
}

std::string strip_trailing_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

EbpfProbe ebpf_probe_kernel() {
  EbpfProbe r;
  auto note = [&](int rc, std::string what) {
    if (rc == 1) return;
    if (rc == -EPERM || rc == -EACCES) r.denied = true;
    r.missing.push_back(std::move(what));
  };
  for (const auto& p : kProgs) {
    note(libbpf_probe_bpf_prog_type(p.type, nullptr), std::string("program type ") + p.name + " (" + p.since + ")");
  }
  for (const auto& m : kMaps) {
    note(libbpf_probe_bpf_map_type(m.type, nullptr), std::string("map type ") + m.name + " (" + m.since + ")");
  }
  for (const auto& h : kHelpers) {
    note(libbpf_probe_bpf_helper(h.prog, h.id, nullptr),
         std::string("helper ") + h.name + " in " + h.prog_name + " programs");
  }
  return r;
}

Status ebpf_check_kernel() {
  EbpfProbe p = ebpf_probe_kernel();
  if (p.denied) {
    return runtime_error(
        "ebpf: the kernel refused the feature probes (EPERM): the eBPF backend needs CAP_BPF, CAP_NET_ADMIN and "
        "CAP_SYS_ADMIN (run as root), and kernel.unprivileged_bpf_disabled does not matter then");
  }
  if (p.missing.empty()) return {};
  std::string msg = "ebpf: this kernel lacks ";
  for (size_t i = 0; i < p.missing.size(); ++i) msg += (i ? ", " : "") + p.missing[i];
  msg += " (use a kernel with BPF cgroup programs, ring buffers and BTF, 5.15 or later, or backend = \"nftables\")";
  return runtime_error(msg);
}

std::string ebpf_pin_dir() {
  const char* e = std::getenv(kEbpfPinDirEnv);
  return e != nullptr && *e != '\0' ? std::string(e) : std::string(kEbpfPinDir);
}

std::string cgroup2_mount_from(std::string_view mountinfo) {
  std::istringstream in{std::string(mountinfo)};
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, sep));
    std::string id, parent, dev, root, mountpoint;
    if (!(head >> id >> parent >> dev >> root >> mountpoint)) continue;
    return unescape(mountpoint);
  }
  return "";
}

Result<std::string> cgroup2_mount() {
  std::ifstream f("/proc/self/mountinfo");
  if (!f) return sys_error("ebpf: cannot read /proc/self/mountinfo");
  std::stringstream ss;
  ss << f.rdbuf();
  std::string m = cgroup2_mount_from(ss.str());
  if (m.empty()) {
    return runtime_error(
        "ebpf: no cgroup2 file system is mounted (/proc/self/mountinfo has no cgroup2 line): mount one "
        "(mount -t cgroup2 none /sys/fs/cgroup/unified) or boot with systemd.unified_cgroup_hierarchy");
  }
  return m;
}

Result<std::string> resolve_cgroup(const std::string& configured) {
  auto mnt = cgroup2_mount();
  if (!mnt.ok()) return mnt.error();
  const std::string root = strip_trailing_slashes(*mnt);
  auto bad = [&](const std::string& why) {
    return usage_error("[ebpf] cgroup: '" + configured + "' " + why + " (cgroup2 is mounted at " + root +
                       ": give a directory under it, or a path relative to it; \"\" is the root)");
  };
  if (configured.empty()) return root;
  if (has_dotdot(configured)) return bad("contains '..'");
  std::vector<std::string> candidates;
  if (configured[0] == '/') {
    const std::string c = strip_trailing_slashes(configured);
    if (c == root || c.rfind(root + "/", 0) == 0) candidates.push_back(c);
    candidates.push_back(root + c);
  } else {
    candidates.push_back(root + "/" + strip_trailing_slashes(configured));
  }
  for (const std::string& c : candidates) {
    if (is_dir(c) && on_fs(c, CGROUP2_SUPER_MAGIC)) return c;
  }
  return bad("is not a cgroup v2 directory");
}

Result<uint64_t> cgroup_id_of(const std::string& dir) {
  alignas(struct file_handle) unsigned char buf[sizeof(struct file_handle) + 64] = {};
  auto* fh = reinterpret_cast<struct file_handle*>(buf);
  fh->handle_bytes = 64;
  int mount_id = 0;
  if (::name_to_handle_at(AT_FDCWD, dir.c_str(), fh, &mount_id, 0) != 0) {
    return sys_error("ebpf: cgroup id of " + dir + " (name_to_handle_at)");
  }
  if (fh->handle_bytes < sizeof(uint64_t)) return runtime_error("ebpf: cgroup id of " + dir + ": short file handle");
  uint64_t id = 0;
  std::memcpy(&id, fh->f_handle, sizeof id);
  return id;
}

bool is_bpffs_dir(const std::string& path) { return is_dir(path) && on_fs(path, BPF_FS_MAGIC); }

Status ensure_pin_dir(const std::string& pin_dir) {
  const std::string mnt(kBpffsMount);
  if (pin_dir.rfind(mnt + "/", 0) == 0 && !on_fs(mnt, BPF_FS_MAGIC)) {
    if (::mount("bpf", mnt.c_str(), "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") != 0) {
      return sys_error("ebpf: mount bpffs at " + mnt + " (the pins of " + pin_dir + " need it; mount -t bpf bpf " +
                       mnt + ")");
    }
  }
  if (::mkdir(pin_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return sys_error("ebpf: create the pin directory " + pin_dir);
  }
  if (!is_bpffs_dir(pin_dir)) {
    return runtime_error("ebpf: " + pin_dir + " is not a directory on a bpf file system (mount -t bpf bpf " +
                         pin_dir.substr(0, pin_dir.rfind('/')) + ")");
  }
  return {};
}

Result<PinDirLock> PinDirLock::acquire(const std::string& pin_dir) {
  Fd fd(::open(pin_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys_error("ebpf: open " + pin_dir);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return sys_error("ebpf: lock " + pin_dir);
  }
  return PinDirLock(std::move(fd));
}

}  // namespace amlfw
