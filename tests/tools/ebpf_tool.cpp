// SPDX-License-Identifier: MIT
// ebpf_tool: a developer and test driver of the eBPF backend (not installed), until
// `amlfw apply` selects it with backend = "ebpf".
//
//   ebpf_tool apply --config F [--then F2]... [--stay]
//                                                 compile F's policy (its service-tags file, its
//                                                 upstreams) and apply it; then F2... in the same
//                                                 process; --stay: then wait for SIGTERM/SIGKILL
//                                                 (an "owning process")
//   ebpf_tool learn --config F (--name HOST | --group G) SECONDS ADDR...
//                                                 apply, then learn ADDRs for HOST's groups or G
//   ebpf_tool dump                                generation, groups, learned addresses, counters
//   ebpf_tool dump --content                      what the active generation enforces, comparable
//                                                 over time (groups with ports, port table, tries,
//                                                 learned addresses; no generation, expiry, ids)
//   ebpf_tool events [--count N] [--timeout-ms T] print ring-buffer records, one per line
//   ebpf_tool gc                                  delete expired learned addresses
//   ebpf_tool flush                               detach and unpin everything
// Common options: --pin-dir D (default /sys/fs/bpf/amlfw), --cgroup C (overrides [ebpf] cgroup).
// apply/learn print `apply adopted=0 fresh=1 nothing=0 gen=1 slot=0 groups=12 lpm4=N lpm6=N
// ports=N carried=N links_created=6 links_updated=0 links_replaced=0 ms=F`.
#include <bpf/bpf.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include "daemon/ebpf_backend.h"
#include "daemon/ebpf_events.h"
#include "daemon/inputs.h"
#include "daemon/learn.h"
#include "daemon/tag_source.h"

using namespace amlfw;

namespace {

struct Args {
  std::string cmd;
  std::string config;
  std::string pin_dir = ebpf_pin_dir();
  std::optional<std::string> cgroup;
  std::string name, group;
  bool stay = false;
  bool content = false;
  long count = -1;
  int timeout_ms = 1000;
  std::vector<std::string> then;
  std::vector<std::string> rest;
};

int fail(const Error& e) {
  std::fprintf(stderr, "ebpf_tool: %s\n", e.message.c_str());
  return static_cast<int>(e.code);
}

int usage() {
  std::fprintf(stderr,
               "usage: ebpf_tool apply|learn|dump|events|gc|flush [--config F] [--pin-dir D] [--cgroup C] ...\n");
  return 2;
}

struct Compiled {
  Config config;
  Policy policy;
  std::vector<PortGroup> groups;
};

Result<Compiled> compile_from(const std::string& path) {
  auto cfg = load_config(path);
  if (!cfg.ok()) return cfg.error();
  auto ups = dns_upstreams(*cfg);
  if (!ups.ok()) return ups.error();
  auto body = read_file(cfg->service_tags.source, 64u << 20);
  if (!body.ok()) return body.error();
  auto tags = parse_tags_for(*cfg, *body, cfg->service_tags.source);
  if (!tags.ok()) return tags.error();
  auto pol = compile_policy(*cfg, &*tags, *ups, cfg->service_tags.source);
  if (!pol.ok()) return pol.error();
  Compiled c{std::move(*cfg), std::move(*pol), {}};
  c.groups = group_rules(c.policy);
  return c;
}

Result<std::unique_ptr<EbpfBackend>> backend_for(const Args& a, const Config* cfg) {
  EbpfOptions o;
  o.pin_dir = a.pin_dir;
  o.cgroup = a.cgroup ? *a.cgroup : (cfg ? cfg->ebpf.cgroup : "");
  return EbpfBackend::create(o);
}

void print_report(const char* what, const EbpfApplyReport& r) {
  std::printf("%s adopted=%d fresh=%d nothing=%d gen=%llu slot=%u groups=%u lpm4=%zu lpm6=%zu ports=%zu carried=%zu "
              "links_created=%zu links_updated=%zu links_replaced=%zu load_ms=%.1f fill_ms=%.1f ms=%.1f\n",
              what, r.adopted, r.fresh_maps, r.nothing_to_do, static_cast<unsigned long long>(r.generation), r.slot,
              r.groups, r.fill.lpm4, r.fill.lpm6, r.fill.ports, r.fill.learned_carried, r.links_created,
              r.links_updated, r.links_replaced, r.load_ms, r.fill_ms, r.ms);
  std::fflush(stdout);
}

int cmd_apply(const Args& a, bool learn) {
  if (a.config.empty()) return usage();
  auto c = compile_from(a.config);
  if (!c.ok()) return fail(c.error());
  auto be = backend_for(a, &c->config);
  if (!be.ok()) return fail(be.error());
  Status s = (*be)->apply(c->policy, c->groups);
  if (!s.ok()) return fail(s.error());
  print_report("apply", (*be)->last_report());
  for (const std::string& f : a.then) {
    auto c2 = compile_from(f);
    if (!c2.ok()) return fail(c2.error());
    s = (*be)->apply(c2->policy, c2->groups);
    if (!s.ok()) return fail(s.error());
    print_report("apply", (*be)->last_report());
  }
  if (learn) {
    if (a.rest.size() < 2) return usage();
    std::vector<std::string> groups;
    if (!a.name.empty()) groups = groups_for_name(c->policy, a.name);
    if (!a.group.empty()) groups.push_back(a.group);
    if (groups.empty()) {
      std::fprintf(stderr, "ebpf_tool: no fqdn rule of the policy matches '%s'\n", a.name.c_str());
      return 2;
    }
    uint32_t secs = static_cast<uint32_t>(std::stoul(a.rest[0]));
    std::vector<LearnedAddr> addrs;
    for (size_t i = 1; i < a.rest.size(); ++i) {
      auto ip = IpAddr::parse(a.rest[i]);
      if (!ip) {
        std::fprintf(stderr, "ebpf_tool: bad address '%s'\n", a.rest[i].c_str());
        return 2;
      }
      addrs.push_back(LearnedAddr{*ip, secs});
    }
    s = (*be)->learn(groups, addrs);
    if (!s.ok()) return fail(s.error());
    std::string gs;
    for (const auto& g : groups) gs += (gs.empty() ? "" : ",") + g;
    std::printf("learn groups=%s addrs=%zu seconds=%u\n", gs.c_str(), addrs.size(), secs);
    std::fflush(stdout);
  }
  if (a.stay) {
    std::printf("ready pid=%d\n", static_cast<int>(::getpid()));
    std::fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    int sig = 0;
    sigwait(&set, &sig);
  }
  return 0;
}

const char* proto_name(uint8_t p) { return p == AMLFW_PROTO_TCP ? "tcp" : p == AMLFW_PROTO_UDP ? "udp" : "any"; }

// Every key -> value of a (non per-CPU) map with fixed-size keys and values.
template <size_t K, size_t V>
std::vector<std::pair<std::array<uint8_t, K>, std::array<uint8_t, V>>> map_entries(int fd) {
  std::vector<std::pair<std::array<uint8_t, K>, std::array<uint8_t, V>>> out;
  std::array<uint8_t, K> key{}, next{};
  bool first = true;
  while (bpf_map_get_next_key(fd, first ? nullptr : key.data(), next.data()) == 0) {
    first = false;
    key = next;
    std::array<uint8_t, V> v{};
    if (bpf_map_lookup_elem(fd, key.data(), v.data()) == 0) out.emplace_back(key, v);
  }
  return out;
}

// `dump --content`: the active generation's maps, sorted, without what changes when the same
// policy is installed again (generation, slot, program ids, expiry times, counters).
int cmd_dump_content(const Args& a) {
  auto pins = ebpf_open_pins(a.pin_dir);
  if (!pins.ok()) return fail(pins.error());
  auto act = ebpf_read_active(pins->fds);
  if (!act.ok()) return fail(act.error());
  if (act->generation == 0) {
    std::printf("no generation\n");
    return 0;
  }
  auto g = ebpf_open_generation(pins->fds, act->slot);
  if (!g.ok()) return fail(g.error());
  auto c = ebpf_read_conf(*g);
  if (!c.ok()) return fail(c.error());
  amlfw_conf conf = *c;
  std::printf("conf abi=%u flags=%u groups=%u dns_port=%u egress=%016llx ingress=%016llx names=%016llx\n", conf.abi,
              conf.flags, conf.ngroups, conf.dns_port, static_cast<unsigned long long>(conf.egress_mask),
              static_cast<unsigned long long>(conf.ingress_mask), static_cast<unsigned long long>(conf.names_mask));
  for (uint32_t i = 0; i < conf.ngroups && i < AMLFW_MAX_GROUPS; ++i) {
    const amlfw_group& gr = conf.groups[i];
    std::string ports;
    for (uint32_t j = 0; j < gr.nports && j < AMLFW_MAX_PORT_RANGES; ++j) {
      ports += (j ? "," : "") + std::to_string(gr.ports[j].lo);
      if (gr.ports[j].hi != gr.ports[j].lo) ports += "-" + std::to_string(gr.ports[j].hi);
    }
    std::printf("group %u %s %s kind=%u names=%u ports=%s hash=%016llx\n", i,
                gr.direction == AMLFW_DIR_INGRESS ? "ingress" : "egress", proto_name(gr.proto), gr.kind, gr.has_names,
                ports.empty() ? "all" : ports.c_str(), static_cast<unsigned long long>(gr.name_hash));
  }
  // The port table as runs of equal bitmaps.
  for (uint32_t proto = 0; proto < 2; ++proto) {
    uint64_t run_bits = 0;
    uint32_t run_lo = 0;
    for (uint32_t port = 0; port <= AMLFW_PORTS_PER_PROTO; ++port) {
      uint64_t bits = 0;
      if (port < AMLFW_PORTS_PER_PROTO) {
        const uint32_t k = proto * AMLFW_PORTS_PER_PROTO + port;
        if (bpf_map_lookup_elem(g->ports.get(), &k, &bits) != 0) return fail(sys_error("read the port table"));
      }
      if (port == AMLFW_PORTS_PER_PROTO || bits != run_bits) {
        if (run_bits != 0) {
          std::printf("ports %s %u-%u groups=%llx\n", proto ? "udp" : "tcp", run_lo, port - 1,
                      static_cast<unsigned long long>(run_bits));
        }
        run_bits = bits;
        run_lo = port;
      }
    }
  }
  std::vector<std::string> lines;
  for (const auto& [k, v] : map_entries<sizeof(amlfw_lpm4_key), 8>(g->lpm4.get())) {
    amlfw_lpm4_key key;
    uint64_t bits;
    std::memcpy(&key, k.data(), sizeof key);
    std::memcpy(&bits, v.data(), 8);
    lines.push_back("lpm4 " + IpAddr::from_bytes(false, key.addr).str() + "/" + std::to_string(key.prefixlen) +
                    " groups=" + std::to_string(bits));
  }
  for (const auto& [k, v] : map_entries<sizeof(amlfw_lpm6_key), 8>(g->lpm6.get())) {
    amlfw_lpm6_key key;
    uint64_t bits;
    std::memcpy(&key, k.data(), sizeof key);
    std::memcpy(&bits, v.data(), 8);
    lines.push_back("lpm6 " + IpAddr::from_bytes(true, key.addr).str() + "/" + std::to_string(key.prefixlen) +
                    " groups=" + std::to_string(bits));
  }
  auto learned = ebpf_dump_learned(*g);
  if (!learned.ok()) return fail(learned.error());
  const uint64_t now = ebpf_now_ns();
  for (const auto& e : *learned) {
    if (e.expires_ns <= now) continue;  // absent for the programs
    lines.push_back("learned " + e.addr.str() + " groups=" + std::to_string(e.groups));
  }
  std::sort(lines.begin(), lines.end());
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
  return 0;
}

int cmd_dump(const Args& a) {
  if (a.content) return cmd_dump_content(a);
  auto snap = EbpfBackend::inspect(a.pin_dir);
  if (!snap.ok()) return fail(snap.error());
  const amlfw_conf& c = snap->conf;
  std::printf("active slot=%u generation=%llu abi=%u flags=%u groups=%u\n", snap->active.slot,
              static_cast<unsigned long long>(snap->active.generation), snap->active.abi, c.flags, c.ngroups);
  for (const auto& l : snap->links) {
    std::printf("link %s cgroup=%llu attach_type=%u prog_id=%u\n", l.name.c_str(),
                static_cast<unsigned long long>(l.cgroup_id), l.attach_type, l.prog_id);
  }
  for (uint32_t i = 0; i < c.ngroups && i < AMLFW_MAX_GROUPS; ++i) {
    const amlfw_group& g = c.groups[i];
    std::printf("group %u dir=%s proto=%u kind=%u names=%u nports=%u hash=%016llx\n", i,
                g.direction == AMLFW_DIR_INGRESS ? "ingress" : "egress", g.proto, g.kind, g.has_names, g.nports,
                static_cast<unsigned long long>(g.name_hash));
  }
  const uint64_t now = ebpf_now_ns();
  for (const auto& e : snap->learned) {
    long long left = static_cast<long long>(e.expires_ns / 1000000000ull) - static_cast<long long>(now / 1000000000ull);
    std::printf("learned %s groups=%llx expires_in=%llds%s\n", e.addr.str().c_str(),
                static_cast<unsigned long long>(e.groups), left, e.expires_ns <= now ? " expired" : "");
  }
  static const char* kStat[] = {"allow", "deny", "audit", "lost"};
  for (int h = 1; h < AMLFW_HOOK_MAX; ++h) {
    for (int s = 0; s < AMLFW_STAT_PER_HOOK; ++s) {
      uint64_t v = snap->counters[h * AMLFW_STAT_PER_HOOK + s];
      if (v) std::printf("counter %s.%s %llu\n", std::string(ebpf_hook_name(h)).c_str(), kStat[s],
                         static_cast<unsigned long long>(v));
    }
  }
  return 0;
}

int cmd_events(const Args& a) {
  long seen = 0;
  auto ev = EbpfEvents::open(a.pin_dir, [&](const EbpfEvent& e) {
    std::printf("%s\n", ebpf_event_text(e).c_str());
    ++seen;
  });
  if (!ev.ok()) return fail(ev.error());
  // Every waiting record, then more until --count records or --timeout-ms of silence.
  auto n = (*ev)->drain();
  if (!n.ok()) return fail(n.error());
  while (a.count < 0 ? true : seen < a.count) {
    auto m = (*ev)->poll(a.timeout_ms);
    if (!m.ok()) return fail(m.error());
    if (*m == 0) break;
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  std::vector<std::string> v(argv + 1, argv + argc);
  if (v.empty()) return usage();
  a.cmd = v[0];
  for (size_t i = 1; i < v.size(); ++i) {
    auto next = [&]() -> std::string { return i + 1 < v.size() ? v[++i] : std::string(); };
    if (v[i] == "--config") a.config = next();
    else if (v[i] == "--pin-dir") a.pin_dir = next();
    else if (v[i] == "--cgroup") a.cgroup = next();
    else if (v[i] == "--name") a.name = next();
    else if (v[i] == "--group") a.group = next();
    else if (v[i] == "--stay") a.stay = true;
    else if (v[i] == "--content") a.content = true;
    else if (v[i] == "--then") a.then.push_back(next());
    else if (v[i] == "--count") a.count = std::stol(next());
    else if (v[i] == "--timeout-ms") a.timeout_ms = std::stoi(next());
    else a.rest.push_back(v[i]);
  }
  if (a.cmd == "apply") return cmd_apply(a, false);
  if (a.cmd == "learn") return cmd_apply(a, true);
  if (a.cmd == "events") return cmd_events(a);
  if (a.cmd == "flush") {
    Status s = EbpfBackend::remove_pins(a.pin_dir);
    if (!s.ok()) return fail(s.error());
    std::printf("flush ok\n");
    return 0;
  }
  if (a.cmd == "dump") return cmd_dump(a);
  if (a.cmd == "gc") {
    auto be = backend_for(a, nullptr);
    if (!be.ok()) return fail(be.error());
    auto n = (*be)->collect_garbage();
    if (!n.ok()) return fail(n.error());
    std::printf("gc removed=%zu\n", *n);
    return 0;
  }
  return usage();
}
