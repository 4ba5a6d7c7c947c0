// SPDX-License-Identifier: MIT
#include "daemon/ebpf_backend.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

namespace amlfw {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Pins `fd` at `path`, replacing whatever is pinned there in one rename(2).
Status pin_replace(int fd, const std::string& path) {
  const std::string tmp = path + "_new";  // bpffs refuses names with a dot
  ::unlink(tmp.c_str());
  if (bpf_obj_pin(fd, tmp.c_str()) != 0) return sys_error("ebpf: pin " + path);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return sys_error("ebpf: pin " + path + " (rename)", err);
  }
  return {};
}

// The addresses of this network namespace's interfaces (loopback ones aside).
std::vector<IpAddr> local_addresses() {
  std::vector<IpAddr> out;
  struct ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return out;
  for (struct ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_LOOPBACK)) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const struct sockaddr_in*>(i->ifa_addr);
      out.push_back(IpAddr::from_bytes(false, reinterpret_cast<const uint8_t*>(&sin->sin_addr)));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const struct sockaddr_in6*>(i->ifa_addr);
      out.push_back(IpAddr::from_bytes(true, sin6->sin6_addr.s6_addr));
    }
  }
  ::freeifaddrs(ifs);
  return out;
}

uint32_t map_id(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof info;
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

}  // namespace

Result<std::unique_ptr<EbpfBackend>> EbpfBackend::create(const EbpfOptions& opts) {
  if (opts.pin_dir.empty() || opts.pin_dir[0] != '/') {
    return usage_error("ebpf: pin directory '" + opts.pin_dir + "' is not an absolute path");
  }
  AMLFW_TRY(ebpf_check_kernel());
  auto path = resolve_cgroup(opts.cgroup);
  if (!path.ok()) return path.error();
  Fd fd(::open(path->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys_error("ebpf: open the cgroup " + *path);
  auto id = cgroup_id_of(*path);
  if (!id.ok()) return id.error();
  return std::unique_ptr<EbpfBackend>(new EbpfBackend(opts, *path, std::move(fd), *id));
}

void EbpfBackend::reset() {
  links_.clear();
  gen_ = EbpfGeneration{};
  obj_.reset();
  image_.reset();
  slot_ = 0;
  generation_ = 0;
  conf_ = amlfw_conf{};
}

Result<bool> EbpfBackend::sync_locked() {
  Fd pinned(bpf_obj_get((opts_.pin_dir + "/amlfw_active").c_str()));
  if (!pinned || map_id(pinned.get()) != map_id(obj_->map_fd(EbpfMap::kActive))) return false;
  auto a = ebpf_read_active(obj_->map_fds());
  if (!a.ok()) return a.error();
  if (a->generation == generation_ && a->slot == slot_) return true;
  // Another amlfw process installed a generation since: follow it.
  auto g = ebpf_open_generation(obj_->map_fds(), a->slot);
  if (!g.ok()) return g.error();
  auto c = ebpf_read_conf(*g);
  if (!c.ok()) return c.error();
  gen_ = std::move(*g);
  conf_ = *c;
  slot_ = a->slot;
  generation_ = a->generation;
  image_.reset();
  return true;
}

Status EbpfBackend::apply(const Policy& p, const std::vector<PortGroup>& groups) {
  const auto t0 = std::chrono::steady_clock::now();
  report_ = EbpfApplyReport{};
  auto img = build_ebpf_image(p, groups, local_addresses());  // bad input: nothing touched
  if (!img.ok()) return img.error();
  AMLFW_TRY(ensure_pin_dir(opts_.pin_dir));
  auto lock = PinDirLock::acquire(opts_.pin_dir);
  if (!lock.ok()) return lock.error();
  Status s = apply_locked(*img);
  report_.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

Status EbpfBackend::apply_locked(const EbpfImage& img) {
  std::optional<EbpfGeneration> adopted;  // the pinned active generation (first apply)
  const EbpfGeneration* old = nullptr;
  amlfw_conf old_conf{};
  uint64_t old_generation = 0;
  uint32_t old_slot = 1;  // so that a first generation goes to slot 0

  if (obj_) {
    auto ours = sync_locked();
    if (!ours.ok()) return ours.error();
    if (!*ours) reset();  // flushed or replaced by another process: install again
  }
  if (obj_) {
    if (image_ && image_->same_content(img)) {
      report_.nothing_to_do = true;
      report_.generation = generation_;
      report_.slot = slot_;
      report_.groups = img.conf.ngroups;
      return {};
    }
    old = &gen_;
    old_conf = conf_;
    old_generation = generation_;
    old_slot = slot_;
  } else {
    // First apply of this process (or after a flush): load the programs, adopting the
    // pinned maps when they have this build's layout.
    const auto tl = std::chrono::steady_clock::now();
    auto o = EbpfObject::load(opts_.pin_dir, opts_.tunables);
    if (!o.ok()) return o.error();
    report_.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - tl).count();
    report_.adopted = (*o)->reused();
    report_.fresh_maps = !(*o)->reused();
    if ((*o)->reused()) {
      auto a = ebpf_read_active((*o)->map_fds());
      if (!a.ok()) return a.error();
      if (a->generation > 0) {
        auto g = ebpf_open_generation((*o)->map_fds(), a->slot);
        if (g.ok()) {
          auto c = ebpf_read_conf(*g);
          if (c.ok()) {
            adopted = std::move(*g);
            old = &*adopted;
            old_conf = *c;
          }
        }
        old_generation = a->generation;
        old_slot = a->slot;
      }
    }
    obj_ = std::move(*o);
  }

  const uint32_t slot = 1 - (old_slot & 1);
  const uint64_t generation = old_generation + 1;
  const auto tf = std::chrono::steady_clock::now();
  auto g = ebpf_create_generation(img, generation, &report_.fill);
  if (!g.ok()) return g.error();
  if (old) {
    AMLFW_TRY(ebpf_carry_learned(*old, old_conf, *g, img.conf, &report_.fill));
  }
  report_.fill_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - tf).count();
  // The atomic step: from here the programs that are attached decide with `img`.
  AMLFW_TRY(ebpf_publish(obj_->map_fds(), *g, slot, generation));
  gen_ = std::move(*g);
  conf_ = img.conf;
  conf_.generation = generation;
  slot_ = slot;
  generation_ = generation;
  image_ = img;
  report_.generation = generation;
  report_.slot = slot;
  report_.groups = img.conf.ngroups;
  if (old_generation > 0) ebpf_clear_slot(obj_->map_fds(), old_slot);

  if (links_.empty()) {
    Status s = attach_all();
    if (!s.ok()) {
      if (report_.fresh_maps) reset();  // nothing of ours is pinned: the next apply starts over
      return s;
    }
    AMLFW_TRY(pin_maps());
  }
  return {};
}

// Every program attached to the cgroup through a pinned link. An existing pinned link on the
// same cgroup and hook is moved to this process's program (bpf_link_update: atomic); else a
// new link is created, and pinned in place of any stale one, which is detached afterwards.
// On failure, links created here are closed (which detaches them) and updated ones are moved
// back to their previous program.
Status EbpfBackend::attach_all() {
  struct Step {
    EbpfProg prog;
    Fd link;
    bool created = false;
    Fd old_prog;  // updated links: the program to go back to
    Fd stale;     // a pinned link to detach once the new one is pinned
  };
  std::vector<Step> steps;
  auto rollback = [&]() {
    for (Step& s : steps) {
      if (!s.created && s.old_prog) bpf_link_update(s.link.get(), s.old_prog.get(), nullptr);
    }
  };
  for (EbpfProg p : kEbpfProgs) {
    const std::string path = opts_.pin_dir + "/" + std::string(ebpf_prog_name(p));
    Step st;
    st.prog = p;
    Fd pinned(bpf_obj_get(path.c_str()));
    if (pinned) {
      bpf_link_info info{};
      uint32_t len = sizeof info;
      if (bpf_obj_get_info_by_fd(pinned.get(), &info, &len) == 0 && info.type == BPF_LINK_TYPE_CGROUP &&
          info.cgroup.cgroup_id == cgroup_id_ && info.cgroup.attach_type == static_cast<uint32_t>(obj_->attach_type(p))) {
        st.old_prog = Fd(bpf_prog_get_fd_by_id(info.prog_id));
        if (bpf_link_update(pinned.get(), obj_->prog_fd(p), nullptr) != 0) {
          int err = errno;
          rollback();
          return sys_error("ebpf: move the pinned link " + path + " to the new program", err);
        }
        st.link = std::move(pinned);
        ++report_.links_updated;
        steps.push_back(std::move(st));
        continue;
      }
      st.stale = std::move(pinned);
    }
    int fd = bpf_link_create(obj_->prog_fd(p), cgroup_fd_.get(), obj_->attach_type(p), nullptr);
    if (fd < 0) {
      rollback();
      return sys_error("ebpf: attach " + std::string(ebpf_prog_name(p)) + " to the cgroup " + cgroup_path_, -fd);
    }
    st.link = Fd(fd);
    st.created = true;
    steps.push_back(std::move(st));
  }
  for (Step& s : steps) {
    if (!s.created) continue;
    Status ps = pin_replace(s.link.get(), opts_.pin_dir + "/" + std::string(ebpf_prog_name(s.prog)));
    if (!ps.ok()) {
      rollback();
      return ps;
    }
    ++report_.links_created;
  }
  for (Step& s : steps) {
    if (s.stale) {
      bpf_link_detach(s.stale.get());
      ++report_.links_replaced;
    }
    links_.push_back(std::move(s.link));
  }
  return {};
}

Status EbpfBackend::pin_maps() {
  for (EbpfMap m : kEbpfMaps) {
    const std::string path = opts_.pin_dir + "/" + std::string(ebpf_map_name(m));
    const int fd = obj_->map_fd(m);
    Fd pinned(bpf_obj_get(path.c_str()));
    if (pinned && map_id(pinned.get()) == map_id(fd)) continue;  // adopted
    AMLFW_TRY(pin_replace(fd, path));
  }
  return {};
}

Status EbpfBackend::learn(const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs) {
  if (!obj_) return runtime_error("ebpf: learn: no policy was applied by this process (apply first)");
  auto lock = PinDirLock::acquire(opts_.pin_dir);
  if (!lock.ok()) return lock.error();
  auto ours = sync_locked();
  if (!ours.ok()) return ours.error();
  if (!*ours) {
    reset();
    return runtime_error("ebpf: learn: the enforcement this process installed was removed or replaced (apply again)");
  }
  uint64_t bits = 0;
  for (const std::string& name : groups) {
    const uint64_t h = ebpf_name_hash(name);
    int bit = -1;
    for (uint32_t i = 0; i < conf_.ngroups && i < AMLFW_MAX_GROUPS; ++i) {
      if (conf_.groups[i].name_hash == h && conf_.groups[i].has_names) bit = static_cast<int>(i);
    }
    if (bit < 0) {
      return usage_error("ebpf: learn: group '" + name +
                         "' has no learned-address set in the applied policy (no enforced fqdn rule feeds it)");
    }
    bits |= uint64_t{1} << bit;
  }
  if (bits == 0 || addrs.empty()) return {};
  return ebpf_learn(gen_, bits, addrs);
}

Result<size_t> EbpfBackend::collect_garbage() {
  if (!is_bpffs_dir(opts_.pin_dir)) return size_t{0};
  auto lock = PinDirLock::acquire(opts_.pin_dir);
  if (!lock.ok()) return lock.error();
  if (!obj_) {
    auto pins = ebpf_open_pins(opts_.pin_dir);
    if (!pins.ok()) return pins.error();
    auto a = ebpf_read_active(pins->fds);
    if (!a.ok()) return a.error();
    if (a->generation == 0) return size_t{0};
    auto g = ebpf_open_generation(pins->fds, a->slot);
    if (!g.ok()) return g.error();
    return ebpf_collect_learned(*g);
  }
  auto ours = sync_locked();
  if (!ours.ok()) return ours.error();
  if (!*ours) return size_t{0};
  return ebpf_collect_learned(gen_);
}

Result<std::vector<EbpfLearnedEntry>> EbpfBackend::learned() {
  if (!obj_) return std::vector<EbpfLearnedEntry>{};
  auto ours = sync_locked();
  if (!ours.ok()) return ours.error();
  if (!*ours) return std::vector<EbpfLearnedEntry>{};
  return ebpf_dump_learned(gen_);
}

Result<std::vector<uint64_t>> EbpfBackend::counters() {
  if (obj_) return ebpf_read_stats(obj_->map_fd(EbpfMap::kStats));
  Fd fd(bpf_obj_get((opts_.pin_dir + "/amlfw_stats").c_str()));
  if (!fd) return std::vector<uint64_t>(AMLFW_STATS_MAX, 0);
  return ebpf_read_stats(fd.get());
}

Result<EbpfSnapshot> EbpfBackend::inspect(const std::string& pin_dir) {
  auto pins = ebpf_open_pins(pin_dir);
  if (!pins.ok()) return pins.error();
  EbpfSnapshot snap;
  auto a = ebpf_read_active(pins->fds);
  if (!a.ok()) return a.error();
  snap.active = *a;
  if (a->generation > 0) {
    auto g = ebpf_open_generation(pins->fds, a->slot);
    if (!g.ok()) return g.error();
    auto c = ebpf_read_conf(*g);
    if (!c.ok()) return c.error();
    snap.conf = *c;
    auto l = ebpf_dump_learned(*g);
    if (!l.ok()) return l.error();
    snap.learned = std::move(*l);
  }
  auto st = ebpf_read_stats(pins->fds[EbpfMap::kStats]);
  if (!st.ok()) return st.error();
  snap.counters = std::move(*st);
  for (EbpfProg p : kEbpfProgs) {
    Fd fd(bpf_obj_get((pin_dir + "/" + std::string(ebpf_prog_name(p))).c_str()));
    if (!fd) continue;
    bpf_link_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    snap.links.push_back(EbpfSnapshot::Link{std::string(ebpf_prog_name(p)), info.cgroup.cgroup_id,
                                            info.cgroup.attach_type, info.prog_id});
  }
  return snap;
}

Status EbpfBackend::flush() {
  Status s = remove_pins(opts_.pin_dir);
  reset();  // closes the program and link fds this process held
  return s;
}

Status EbpfBackend::remove_pins(const std::string& pin_dir) {
  if (!is_bpffs_dir(pin_dir)) {
    if (exists(pin_dir)) {
      return runtime_error("ebpf: flush: " + pin_dir + " exists but is not a directory on a bpf file system (remove it)");
    }
    return {};  // nothing pinned: nothing enforced by amlfw's eBPF backend
  }
  auto lock = PinDirLock::acquire(pin_dir);
  if (!lock.ok()) return lock.error();
  DIR* d = ::opendir(pin_dir.c_str());
  if (!d) return sys_error("ebpf: flush: list " + pin_dir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  // Links first: detaching them ends enforcement at once, whoever still holds them.
  for (const std::string& n : names) {
    Fd fd(bpf_obj_get((pin_dir + "/" + n).c_str()));
    if (fd) bpf_link_detach(fd.get());  // EINVAL for maps
  }
  for (const std::string& n : names) {
    const std::string path = pin_dir + "/" + n;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sys_error("ebpf: flush: remove " + path);
  }
  if (::rmdir(pin_dir.c_str()) != 0 && errno != ENOENT) return sys_error("ebpf: flush: remove " + pin_dir);
  return {};
}

}  // namespace amlfw
