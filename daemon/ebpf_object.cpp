// SPDX-License-Identifier: MIT
#include "daemon/ebpf_object.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <time.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#ifdef AMLFW_HAVE_BPF_SKELETONS
#include "amlfw.skel.h"
#endif

namespace amlfw {
namespace {

std::mutex g_msg_mu;
std::string g_last_msg;

int capture_libbpf(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string s(buf);
  for (char& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  if (s.empty()) return 0;
  std::lock_guard<std::mutex> lock(g_msg_mu);
  g_last_msg = s.size() > 300 ? "..." + s.substr(s.size() - 300) : s;
  return 0;
}

void install_print() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(capture_libbpf); });
}

std::string with_libbpf(std::string msg) {
  std::string last = ebpf_last_libbpf_message();
  if (!last.empty()) msg += " (libbpf: " + last + ")";
  return msg;
}

constexpr uint32_t kZero = 0;

Result<Fd> create_map(bpf_map_type type, const char* name, uint32_t key_size, uint32_t value_size,
                      uint32_t max_entries, uint32_t flags) {
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
  int fd = bpf_map_create(type, name, key_size, value_size, max_entries, &opts);
  if (fd < 0) return sys_error(std::string("ebpf: create map ") + name, -fd);
  return Fd(fd);
}

Result<Fd> inner_fd(int outer_fd, uint32_t slot, const char* what) {
  uint32_t id = 0;
  if (bpf_map_lookup_elem(outer_fd, &slot, &id) != 0) {
    return sys_error(std::string("ebpf: slot ") + std::to_string(slot) + " of " + what);
  }
  int fd = bpf_map_get_fd_by_id(id);
  if (fd < 0) return sys_error(std::string("ebpf: open inner map ") + std::to_string(id) + " of " + what);
  return Fd(fd);
}

}  // namespace

Status ebpf_update_many(int fd, const char* what, const void* keys, const void* values, uint32_t n, size_t key_size,
                        size_t value_size) {
  if (n == 0) return {};
  uint32_t count = n;
  LIBBPF_OPTS(bpf_map_batch_opts, bopts, .elem_flags = BPF_ANY);
  int err = bpf_map_update_batch(fd, keys, values, &count, &bopts);
  if (err == 0 && count == n) return {};
  const auto* k = static_cast<const uint8_t*>(keys);
  const auto* v = static_cast<const uint8_t*>(values);
  for (uint32_t i = (err == 0 ? count : 0); i < n; ++i) {
    if (bpf_map_update_elem(fd, k + i * key_size, v + i * value_size, BPF_ANY) != 0) {
      return sys_error(std::string("ebpf: fill ") + what + " (entry " + std::to_string(i) + " of " +
                       std::to_string(n) + ")");
    }
  }
  return {};
}

std::string ebpf_last_libbpf_message() {
  std::lock_guard<std::mutex> lock(g_msg_mu);
  return g_last_msg;
}

uint64_t ebpf_now_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string_view ebpf_prog_name(EbpfProg p) {
  switch (p) {
    case EbpfProg::kConnect4: return "amlfw_connect4";
    case EbpfProg::kConnect6: return "amlfw_connect6";
    case EbpfProg::kSendmsg4: return "amlfw_sendmsg4";
    case EbpfProg::kSendmsg6: return "amlfw_sendmsg6";
    case EbpfProg::kEgress: return "amlfw_egress";
    case EbpfProg::kIngress: return "amlfw_ingress";
    case EbpfProg::kRecvmsg4: return "amlfw_recvmsg4";
    case EbpfProg::kRecvmsg6: return "amlfw_recvmsg6";
  }
  return "?";
}

std::string_view ebpf_map_name(EbpfMap m) {
  switch (m) {
    case EbpfMap::kActive: return "amlfw_active";
    case EbpfMap::kConf: return "amlfw_conf";
    case EbpfMap::kPorts: return "amlfw_ports";
    case EbpfMap::kLpm4: return "amlfw_lpm4";
    case EbpfMap::kLpm6: return "amlfw_lpm6";
    case EbpfMap::kLearn4: return "amlfw_learn4";
    case EbpfMap::kLearn6: return "amlfw_learn6";
    case EbpfMap::kFlows: return "amlfw_flows";
    case EbpfMap::kEvents: return "amlfw_events";
    case EbpfMap::kStats: return "amlfw_stats";
    case EbpfMap::kDnsOrig: return "amlfw_dns_orig";
  }
  return "?";
}

#ifdef AMLFW_HAVE_BPF_SKELETONS

namespace {

bpf_map* skel_map(::amlfw_bpf* s, EbpfMap m) {
  switch (m) {
    case EbpfMap::kActive: return s->maps.amlfw_active;
    case EbpfMap::kConf: return s->maps.amlfw_conf;
    case EbpfMap::kPorts: return s->maps.amlfw_ports;
    case EbpfMap::kLpm4: return s->maps.amlfw_lpm4;
    case EbpfMap::kLpm6: return s->maps.amlfw_lpm6;
    case EbpfMap::kLearn4: return s->maps.amlfw_learn4;
    case EbpfMap::kLearn6: return s->maps.amlfw_learn6;
    case EbpfMap::kFlows: return s->maps.amlfw_flows;
    case EbpfMap::kEvents: return s->maps.amlfw_events;
    case EbpfMap::kStats: return s->maps.amlfw_stats;
    case EbpfMap::kDnsOrig: return s->maps.amlfw_dns_orig;
  }
  return nullptr;
}

bpf_program* skel_prog(::amlfw_bpf* s, EbpfProg p) {
  switch (p) {
    case EbpfProg::kConnect4: return s->progs.amlfw_connect4;
    case EbpfProg::kConnect6: return s->progs.amlfw_connect6;
    case EbpfProg::kSendmsg4: return s->progs.amlfw_sendmsg4;
    case EbpfProg::kSendmsg6: return s->progs.amlfw_sendmsg6;
    case EbpfProg::kEgress: return s->progs.amlfw_egress;
    case EbpfProg::kIngress: return s->progs.amlfw_ingress;
    case EbpfProg::kRecvmsg4: return s->progs.amlfw_recvmsg4;
    case EbpfProg::kRecvmsg6: return s->progs.amlfw_recvmsg6;
  }
  return nullptr;
}

// The pinned map at `path` if it has the layout `m` expects, else an invalid Fd.
Fd compatible_pin(const std::string& path, const bpf_map* m, bool is_active) {
  Fd fd(bpf_obj_get(path.c_str()));
  if (!fd) return Fd();
  bpf_map_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return Fd();
  if (info.type != static_cast<uint32_t>(bpf_map__type(m)) || info.key_size != bpf_map__key_size(m) ||
      info.value_size != bpf_map__value_size(m) || info.max_entries != bpf_map__max_entries(m) ||
      info.map_flags != bpf_map__map_flags(m)) {
    return Fd();
  }
  if (is_active) {
    amlfw_active a{};
    if (bpf_map_lookup_elem(fd.get(), &kZero, &a) != 0) return Fd();
    if (a.abi != AMLFW_ABI_VERSION && !(a.abi == 0 && a.generation == 0)) return Fd();
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<EbpfObject>> EbpfObject::load(const std::string& reuse_dir, const EbpfTunables& t) {
  install_print();
  std::unique_ptr<EbpfObject> o(new EbpfObject);
  o->skel_ = amlfw_bpf__open();
  if (!o->skel_) return Error{Exit::kRuntime, with_libbpf("ebpf: open the BPF object: " + std::string(std::strerror(errno)))};
  o->skel_->rodata->flow_timeout_ns = t.flow_timeout_ns;
  o->skel_->rodata->flow_refresh_ns = t.flow_refresh_ns;

  if (!reuse_dir.empty()) {
    std::vector<Fd> pins;
    for (EbpfMap m : kEbpfMaps) {
      Fd fd = compatible_pin(reuse_dir + "/" + std::string(ebpf_map_name(m)), skel_map(o->skel_, m),
                             m == EbpfMap::kActive);
      if (!fd) break;
      pins.push_back(std::move(fd));
    }
    if (pins.size() == std::size(kEbpfMaps)) {
      size_t i = 0;
      for (EbpfMap m : kEbpfMaps) {
        int err = bpf_map__reuse_fd(skel_map(o->skel_, m), pins[i++].get());  // dups the fd
        if (err) return sys_error("ebpf: reuse the pinned map " + std::string(ebpf_map_name(m)), -err);
      }
      o->reused_ = true;
    }
  }
  int err = amlfw_bpf__load(o->skel_);
  if (err) {
    return Error{Exit::kRuntime,
                 with_libbpf("ebpf: load the programs (the verifier or the kernel refused them): " +
                             std::string(std::strerror(-err)))};
  }
  return o;
}

EbpfObject::~EbpfObject() {
  if (skel_) amlfw_bpf__destroy(skel_);
}

int EbpfObject::prog_fd(EbpfProg p) const { return bpf_program__fd(skel_prog(skel_, p)); }
bpf_attach_type EbpfObject::attach_type(EbpfProg p) const {
  return bpf_program__expected_attach_type(skel_prog(skel_, p));
}
int EbpfObject::map_fd(EbpfMap m) const { return bpf_map__fd(skel_map(skel_, m)); }
EbpfMapFds EbpfObject::map_fds() const {
  EbpfMapFds f;
  for (EbpfMap m : kEbpfMaps) f.fd[static_cast<size_t>(m)] = map_fd(m);
  return f;
}

#else  // built without clang/bpftool: the backend reports it

Result<std::unique_ptr<EbpfObject>> EbpfObject::load(const std::string&, const EbpfTunables&) {
  return runtime_error(
      "ebpf: this amlfw was built without its BPF programs (clang or bpftool were missing at build time: "
      "install them with scripts/install-deps.sh and rebuild, or use backend = \"nftables\")");
}
EbpfObject::~EbpfObject() = default;
int EbpfObject::prog_fd(EbpfProg) const { return -1; }
bpf_attach_type EbpfObject::attach_type(EbpfProg) const { return BPF_CGROUP_INET_EGRESS; }
int EbpfObject::map_fd(EbpfMap) const { return -1; }
EbpfMapFds EbpfObject::map_fds() const {
  EbpfMapFds f;
  f.fd.fill(-1);
  return f;
}

#endif

Result<EbpfPins> ebpf_open_pins(const std::string& pin_dir) {
  EbpfPins p;
  for (EbpfMap m : kEbpfMaps) {
    const std::string path = pin_dir + "/" + std::string(ebpf_map_name(m));
    Fd fd(bpf_obj_get(path.c_str()));
    if (!fd) return sys_error("ebpf: open the pinned map " + path + " (no policy applied with backend = \"ebpf\"?)");
    p.fds.fd[static_cast<size_t>(m)] = fd.get();
    p.owned.push_back(std::move(fd));
  }
  return p;
}

Result<EbpfGeneration> ebpf_create_generation(const EbpfImage& img, uint64_t generation, EbpfFillStats* st) {
  EbpfGeneration g;
  auto conf = create_map(BPF_MAP_TYPE_ARRAY, "amlfw_i_conf", sizeof(uint32_t), sizeof(amlfw_conf), 1, 0);
  if (!conf.ok()) return conf.error();
  auto ports = create_map(BPF_MAP_TYPE_ARRAY, "amlfw_i_ports", sizeof(uint32_t), sizeof(uint64_t),
                          kEbpfPortTableSize, 0);
  if (!ports.ok()) return ports.error();
  auto lpm4 = create_map(BPF_MAP_TYPE_LPM_TRIE, "amlfw_i_lpm4", sizeof(amlfw_lpm4_key), sizeof(uint64_t),
                         AMLFW_LPM_MAX, BPF_F_NO_PREALLOC);
  if (!lpm4.ok()) return lpm4.error();
  auto lpm6 = create_map(BPF_MAP_TYPE_LPM_TRIE, "amlfw_i_lpm6", sizeof(amlfw_lpm6_key), sizeof(uint64_t),
                         AMLFW_LPM_MAX, BPF_F_NO_PREALLOC);
  if (!lpm6.ok()) return lpm6.error();
  auto learn4 = create_map(BPF_MAP_TYPE_HASH, "amlfw_i_learn4", 4, sizeof(amlfw_learned), AMLFW_LEARN_MAX,
                           BPF_F_NO_PREALLOC);
  if (!learn4.ok()) return learn4.error();
  auto learn6 = create_map(BPF_MAP_TYPE_HASH, "amlfw_i_learn6", 16, sizeof(amlfw_learned), AMLFW_LEARN_MAX,
                           BPF_F_NO_PREALLOC);
  if (!learn6.ok()) return learn6.error();
  g.conf = std::move(*conf);
  g.ports = std::move(*ports);
  g.lpm4 = std::move(*lpm4);
  g.lpm6 = std::move(*lpm6);
  g.learn4 = std::move(*learn4);
  g.learn6 = std::move(*learn6);

  amlfw_conf c = img.conf;
  c.generation = generation;
  if (bpf_map_update_elem(g.conf.get(), &kZero, &c, BPF_ANY) != 0) return sys_error("ebpf: write amlfw_i_conf");

  std::vector<uint32_t> pkeys;
  std::vector<uint64_t> pvals;
  for (uint32_t i = 0; i < img.ports.size(); ++i) {
    if (img.ports[i] == 0) continue;
    pkeys.push_back(i);
    pvals.push_back(img.ports[i]);
  }
  AMLFW_TRY(ebpf_update_many(g.ports.get(), "amlfw_i_ports", pkeys.data(), pvals.data(),
                        static_cast<uint32_t>(pkeys.size()), sizeof(uint32_t), sizeof(uint64_t)));

  std::vector<amlfw_lpm4_key> k4;
  std::vector<uint64_t> v4;
  for (const auto& e : img.lpm4) {
    k4.push_back(e.key);
    v4.push_back(e.groups);
  }
  AMLFW_TRY(ebpf_update_many(g.lpm4.get(), "amlfw_i_lpm4", k4.data(), v4.data(), static_cast<uint32_t>(k4.size()),
                        sizeof(amlfw_lpm4_key), sizeof(uint64_t)));
  std::vector<amlfw_lpm6_key> k6;
  std::vector<uint64_t> v6;
  for (const auto& e : img.lpm6) {
    k6.push_back(e.key);
    v6.push_back(e.groups);
  }
  AMLFW_TRY(ebpf_update_many(g.lpm6.get(), "amlfw_i_lpm6", k6.data(), v6.data(), static_cast<uint32_t>(k6.size()),
                        sizeof(amlfw_lpm6_key), sizeof(uint64_t)));
  if (st) {
    st->ports = pkeys.size();
    st->lpm4 = k4.size();
    st->lpm6 = k6.size();
  }
  return g;
}

Result<EbpfGeneration> ebpf_open_generation(const EbpfMapFds& maps, uint32_t slot) {
  EbpfGeneration g;
  struct Part {
    EbpfMap outer;
    Fd* fd;
  } parts[] = {{EbpfMap::kConf, &g.conf},     {EbpfMap::kPorts, &g.ports},   {EbpfMap::kLpm4, &g.lpm4},
               {EbpfMap::kLpm6, &g.lpm6},     {EbpfMap::kLearn4, &g.learn4}, {EbpfMap::kLearn6, &g.learn6}};
  for (auto& p : parts) {
    auto fd = inner_fd(maps[p.outer], slot, std::string(ebpf_map_name(p.outer)).c_str());
    if (!fd.ok()) return fd.error();
    *p.fd = std::move(*fd);
  }
  return g;
}

Result<amlfw_active> ebpf_read_active(const EbpfMapFds& maps) {
  amlfw_active a{};
  if (bpf_map_lookup_elem(maps[EbpfMap::kActive], &kZero, &a) != 0) return sys_error("ebpf: read amlfw_active");
  return a;
}

Result<amlfw_conf> ebpf_read_conf(const EbpfGeneration& g) {
  amlfw_conf c{};
  if (bpf_map_lookup_elem(g.conf.get(), &kZero, &c) != 0) return sys_error("ebpf: read amlfw_i_conf");
  if (c.abi != AMLFW_ABI_VERSION) {
    return runtime_error("ebpf: the installed generation has ABI " + std::to_string(c.abi) + ", this build " +
                         std::to_string(AMLFW_ABI_VERSION));
  }
  return c;
}

Status ebpf_publish(const EbpfMapFds& maps, const EbpfGeneration& g, uint32_t slot, uint64_t generation) {
  struct Part {
    EbpfMap outer;
    const Fd* fd;
  } parts[] = {{EbpfMap::kConf, &g.conf},     {EbpfMap::kPorts, &g.ports},   {EbpfMap::kLpm4, &g.lpm4},
               {EbpfMap::kLpm6, &g.lpm6},     {EbpfMap::kLearn4, &g.learn4}, {EbpfMap::kLearn6, &g.learn6}};
  for (const auto& p : parts) {
    uint32_t fd = static_cast<uint32_t>(p.fd->get());
    if (bpf_map_update_elem(maps[p.outer], &slot, &fd, BPF_ANY) != 0) {
      return sys_error("ebpf: install the new generation in slot " + std::to_string(slot) + " of " +
                       std::string(ebpf_map_name(p.outer)));
    }
  }
  amlfw_active a{slot, AMLFW_ABI_VERSION, generation};
  if (bpf_map_update_elem(maps[EbpfMap::kActive], &kZero, &a, BPF_ANY) != 0) {
    return sys_error("ebpf: switch amlfw_active to generation " + std::to_string(generation));
  }
  return {};
}

void ebpf_clear_slot(const EbpfMapFds& maps, uint32_t slot) {
  for (EbpfMap m : {EbpfMap::kConf, EbpfMap::kPorts, EbpfMap::kLpm4, EbpfMap::kLpm6, EbpfMap::kLearn4,
                    EbpfMap::kLearn6}) {
    bpf_map_delete_elem(maps[m], &slot);  // ENOENT: already empty
  }
}

}  // namespace amlfw
