// SPDX-License-Identifier: MIT
#include "daemon/kernel_probe.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "daemon/nft_netlink.h"

namespace amlfw {
namespace {

// Mount points by file-system type, from /proc/self/mountinfo ("... - <fstype> <source> ...").
std::string mount_of(const std::string& fstype) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string type;
    tail >> type;
    if (type != fstype) continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, devno, root, mnt;
    head >> id >> parent >> devno >> root >> mnt;
    return mnt;
  }
  return {};
}

}  // namespace

std::vector<KernelFeature> probe_kernel() {
  std::vector<KernelFeature> out;
  {
    KernelFeature f{"nftables", false, ""};
    auto s = NftSocket::open();
    if (!s.ok()) {
      f.detail = s.error().message;
    } else if (auto g = s->genid(); g.ok()) {
      f.present = true;
      f.detail = "netlink ruleset generation " + std::to_string(*g);
    } else {
      f.detail = g.error().message;
    }
    out.push_back(f);
  }
  const std::string cg = mount_of("cgroup2");
  out.push_back({"cgroup2", !cg.empty(), cg.empty() ? "no cgroup2 mount in /proc/self/mountinfo" : cg});
  const std::string bpffs = mount_of("bpf");
  out.push_back({"bpffs", !bpffs.empty(), bpffs.empty() ? "not mounted (amlfw mounts it at /sys/fs/bpf)" : bpffs});
  const bool btf = ::access("/sys/kernel/btf/vmlinux", R_OK) == 0;
  out.push_back({"btf", btf, btf ? "/sys/kernel/btf/vmlinux" : "no /sys/kernel/btf/vmlinux"});
  return out;
}

}  // namespace amlfw
