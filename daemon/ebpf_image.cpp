// SPDX-License-Identifier: MIT
#include "daemon/ebpf_image.h"

#include <algorithm>
#include <cstring>

#include "policy/config.h"
#include "policy/render_nft.h"

namespace amlfw {
namespace {

constexpr uint32_t kWireServer = 0xA83F8110;  // 168.63.129.16
constexpr uint32_t kImds = 0xA9FEA9FE;        // 169.254.169.254
static_assert(AMLFW_DNS_PROXY_MARK == kDnsProxyMark, "the programs exempt the proxy's mark");

// A group as the image sees it: a PortGroup of the policy or one the backend adds.
struct Member {
  std::string name;
  Direction direction = Direction::kEgress;
  Proto proto = Proto::kTcp;
  std::vector<PortRange> ports;
  const PrefixSet* prefixes = nullptr;
  bool has_names = false;
  uint8_t kind = AMLFW_GROUP_POLICY;
};

uint8_t proto_code(Proto p) {
  switch (p) {
    case Proto::kTcp: return AMLFW_PROTO_TCP;
    case Proto::kUdp: return AMLFW_PROTO_UDP;
    case Proto::kAny: return AMLFW_PROTO_ANY;
  }
  return AMLFW_PROTO_ANY;
}

// The last address of a prefix (a shift by the full width would be undefined).
uint32_t v4_hi(uint32_t lo, uint8_t len) { return len >= 32 ? lo : lo | (~uint32_t{0} >> len); }
u128 v6_hi(u128 lo, uint8_t len) { return len >= 128 ? lo : lo | (~u128{0} >> len); }

// Sets `bit` on every prefix of `entries` (sorted by start) that lies inside one of `ranges`.
template <class Entry, class Range, class Lo, class Hi>
void mark_contained(std::vector<Entry>* entries, const std::vector<Range>& ranges, uint64_t bit, Lo lo_of, Hi hi_of) {
  for (const Range& r : ranges) {
    auto it = std::lower_bound(entries->begin(), entries->end(), r.lo,
                               [&](const Entry& e, const auto& v) { return lo_of(e) < v; });
    for (; it != entries->end() && lo_of(*it) <= r.hi; ++it) {
      if (hi_of(*it) <= r.hi) it->groups |= bit;
    }
  }
}

bool loopback_or_any(const IpAddr& a) {
  if (!a.v6) return (a.v4value() >> 24) == 127 || a.v4value() == 0;
  return a.value == 0 || a.value == 1;
}

}  // namespace

uint64_t ebpf_name_hash(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

bool EbpfImage::same_content(const EbpfImage& o) const {
  amlfw_conf a = conf, b = o.conf;
  a.generation = b.generation = 0;
  if (std::memcmp(&a, &b, sizeof a) != 0) return false;
  if (ports != o.ports || group_names != o.group_names) return false;
  auto eq4 = [](const EbpfLpm4& x, const EbpfLpm4& y) {
    return x.groups == y.groups && std::memcmp(&x.key, &y.key, sizeof x.key) == 0;
  };
  auto eq6 = [](const EbpfLpm6& x, const EbpfLpm6& y) {
    return x.groups == y.groups && std::memcmp(&x.key, &y.key, sizeof x.key) == 0;
  };
  return std::equal(lpm4.begin(), lpm4.end(), o.lpm4.begin(), o.lpm4.end(), eq4) &&
         std::equal(lpm6.begin(), lpm6.end(), o.lpm6.begin(), o.lpm6.end(), eq6);
}

int EbpfImage::learn_bit(std::string_view name) const {
  for (size_t i = 0; i < group_names.size(); ++i) {
    if (group_names[i] == name) return conf.groups[i].has_names ? static_cast<int>(i) : -1;
  }
  return -1;
}

Result<EbpfImage> build_ebpf_image(const Policy& p, const std::vector<PortGroup>& groups,
                                   const std::vector<IpAddr>& local_addrs) {
  std::vector<Member> members;
  std::vector<const PortGroup*> active;
  for (const PortGroup& g : groups) {
    if (!g.enforced) continue;
    if (g.direction == Direction::kIngress && !p.inbound_enforce) continue;
    active.push_back(&g);
  }
  std::sort(active.begin(), active.end(), [](const PortGroup* a, const PortGroup* b) { return a->name < b->name; });
  for (const PortGroup* g : active) {
    members.push_back(Member{g->name, g->direction, g->proto, g->ports, &g->prefixes, g->has_names,
                             AMLFW_GROUP_POLICY});
  }

  // The entries the backend adds: they live as long as the image (the PrefixSets below).
  PrefixSet dns, proxy, wire, imds, local;
  for (const IpAddr& a : p.dns_upstreams) dns.add(a);
  dns.normalize();
  if (!dns.empty()) {
    members.push_back(Member{std::string(kEbpfDnsGroup), Direction::kEgress, Proto::kAny,
                             {PortRange{p.dns_upstream_port, p.dns_upstream_port}}, &dns, false, AMLFW_GROUP_DNS});
  }
  if (!p.dns_listen.empty()) {
    auto sa = parse_socket_address(p.dns_listen, 53);
    if (sa.ok() && !loopback_or_any(sa->addr)) {
      proxy.add(sa->addr);
      proxy.normalize();
      members.push_back(Member{std::string(kEbpfDnsProxyGroup), Direction::kEgress, Proto::kAny,
                               {PortRange{sa->port, sa->port}}, &proxy, false, AMLFW_GROUP_PROXY});
    }
  }
  if (p.platform_azure) {
    wire.add(IpAddr::v4addr(kWireServer));
    imds.add(IpAddr::v4addr(kImds));
    members.push_back(Member{std::string(kEbpfWireServerDnsGroup), Direction::kEgress, Proto::kAny,
                             {PortRange{53, 53}}, &wire, false, AMLFW_GROUP_PLATFORM});
    members.push_back(Member{std::string(kEbpfWireServerGroup), Direction::kEgress, Proto::kTcp,
                             {PortRange{80, 80}, PortRange{32526, 32526}}, &wire, false, AMLFW_GROUP_PLATFORM});
    members.push_back(Member{std::string(kEbpfImdsGroup), Direction::kEgress, Proto::kTcp, {PortRange{80, 80}},
                             &imds, false, AMLFW_GROUP_PLATFORM});
  }
  for (const IpAddr& a : local_addrs) {
    if (!loopback_or_any(a)) local.add(a);
  }
  local.normalize();
  if (!local.empty()) {
    members.push_back(Member{std::string(kEbpfLocalGroup), Direction::kEgress, Proto::kAny, {}, &local, false,
                             AMLFW_GROUP_LOCAL});
  }
  if (members.size() > AMLFW_MAX_GROUPS) {
    return usage_error("ebpf: the policy has " + std::to_string(members.size()) +
                       " port groups (distinct direction, protocol and port lists, with the resolvers and the "
                       "platform addresses); the eBPF backend holds at most " +
                       std::to_string(AMLFW_MAX_GROUPS) +
                       " (give [[allow]] rules common port lists, or use backend = \"nftables\")");
  }

  EbpfImage img;
  img.ports.assign(kEbpfPortTableSize, 0);
  amlfw_conf& c = img.conf;
  c.abi = AMLFW_ABI_VERSION;
  c.flags = (p.mode == Mode::kAudit ? AMLFW_F_AUDIT : 0) | (p.inbound_enforce ? AMLFW_F_INBOUND : 0);
  c.ngroups = static_cast<uint32_t>(members.size());
  c.dns_port = p.dns_upstream_port;
  if (p.dns_redirect && !p.dns_listen.empty()) {
    // dns.redirect: connect()/sendmsg() to port 53 of the proxy's family go to the proxy
    // (a wildcard listen address is reached through loopback).
    auto sa = parse_socket_address(p.dns_listen, 53);
    if (sa.ok()) {
      IpAddr to = sa->addr;
      if (!to.v6 && to.v4value() == 0) to = IpAddr::v4addr(0x7f000001);
      if (to.v6 && to.value == 0) to = IpAddr::v6addr(1);
      c.flags |= AMLFW_F_DNS_REDIRECT;
      c.redirect_family = to.v6 ? 6 : 4;
      c.redirect_port = sa->port;
      to.to_bytes(c.redirect_addr);
    }
  }

  for (size_t i = 0; i < members.size(); ++i) {
    const Member& m = members[i];
    const uint64_t bit = uint64_t{1} << i;
    amlfw_group& g = c.groups[i];
    g.direction = m.direction == Direction::kIngress ? AMLFW_DIR_INGRESS : AMLFW_DIR_EGRESS;
    g.proto = proto_code(m.proto);
    g.kind = m.kind;
    g.has_names = m.has_names ? 1 : 0;
    g.name_hash = ebpf_name_hash(m.name);
    img.group_names.push_back(m.name);
    (g.direction == AMLFW_DIR_INGRESS ? c.ingress_mask : c.egress_mask) |= bit;
    if (m.has_names) c.names_mask |= bit;

    std::vector<PortRange> ports = normalize_ports(m.ports);
    const bool all = ports.empty() || (ports.size() == 1 && ports[0].all());
    if (all) ports = {PortRange{1, 65535}};
    // Descriptors hold the first AMLFW_MAX_PORT_RANGES ranges (pad[0] = 1 when cut);
    // the port table below holds them all.
    if (!all) {
      g.nports = static_cast<uint8_t>(std::min<size_t>(ports.size(), AMLFW_MAX_PORT_RANGES));
      for (size_t j = 0; j < g.nports; ++j) g.ports[j] = amlfw_port_range{ports[j].lo, ports[j].hi};
      g.pad[0] = ports.size() > AMLFW_MAX_PORT_RANGES ? 1 : 0;
    }
    for (const PortRange& r : ports) {
      for (uint32_t port = r.lo; port <= r.hi; ++port) {
        if (m.proto != Proto::kUdp) img.ports[port] |= bit;
        if (m.proto != Proto::kTcp) img.ports[AMLFW_PORTS_PER_PROTO + port] |= bit;
      }
    }
  }

  // LPM entries: the distinct prefixes of every cover, then each gets the bit of every
  // group containing the whole prefix (not only the groups that listed it).
  for (const Member& m : members) {
    for (const Prefix& pf : m.prefixes->to_prefixes()) {
      if (pf.addr.v6) {
        EbpfLpm6 e;
        e.key.prefixlen = pf.len;
        pf.addr.to_bytes(e.key.addr);
        img.lpm6.push_back(e);
      } else {
        EbpfLpm4 e;
        e.key.prefixlen = pf.len;
        pf.addr.to_bytes(e.key.addr);
        img.lpm4.push_back(e);
      }
    }
  }
  auto lo4 = [](const EbpfLpm4& e) { return IpAddr::from_bytes(false, e.key.addr).v4value(); };
  auto hi4 = [&](const EbpfLpm4& e) { return v4_hi(lo4(e), static_cast<uint8_t>(e.key.prefixlen)); };
  auto lo6 = [](const EbpfLpm6& e) { return IpAddr::from_bytes(true, e.key.addr).value; };
  auto hi6 = [&](const EbpfLpm6& e) { return v6_hi(lo6(e), static_cast<uint8_t>(e.key.prefixlen)); };
  auto order4 = [&](const EbpfLpm4& a, const EbpfLpm4& b) {
    return lo4(a) != lo4(b) ? lo4(a) < lo4(b) : a.key.prefixlen < b.key.prefixlen;
  };
  auto order6 = [&](const EbpfLpm6& a, const EbpfLpm6& b) {
    return lo6(a) != lo6(b) ? lo6(a) < lo6(b) : a.key.prefixlen < b.key.prefixlen;
  };
  auto same4 = [&](const EbpfLpm4& a, const EbpfLpm4& b) { return !order4(a, b) && !order4(b, a); };
  auto same6 = [&](const EbpfLpm6& a, const EbpfLpm6& b) { return !order6(a, b) && !order6(b, a); };
  std::sort(img.lpm4.begin(), img.lpm4.end(), order4);
  img.lpm4.erase(std::unique(img.lpm4.begin(), img.lpm4.end(), same4), img.lpm4.end());
  std::sort(img.lpm6.begin(), img.lpm6.end(), order6);
  img.lpm6.erase(std::unique(img.lpm6.begin(), img.lpm6.end(), same6), img.lpm6.end());
  if (img.lpm4.size() > AMLFW_LPM_MAX || img.lpm6.size() > AMLFW_LPM_MAX) {
    return usage_error("ebpf: the policy has " + std::to_string(std::max(img.lpm4.size(), img.lpm6.size())) +
                       " prefixes of one family; the eBPF backend holds at most " + std::to_string(AMLFW_LPM_MAX) +
                       " (use backend = \"nftables\")");
  }
  for (size_t i = 0; i < members.size(); ++i) {
    const uint64_t bit = uint64_t{1} << i;
    mark_contained(&img.lpm4, members[i].prefixes->v4(), bit, lo4, hi4);
    mark_contained(&img.lpm6, members[i].prefixes->v6(), bit, lo6, hi6);
  }
  return img;
}

EbpfBitMap ebpf_learned_bit_map(const amlfw_conf& from, const amlfw_conf& to) {
  EbpfBitMap map;
  map.fill(-1);
  const uint32_t nf = std::min<uint32_t>(from.ngroups, AMLFW_MAX_GROUPS);
  const uint32_t nt = std::min<uint32_t>(to.ngroups, AMLFW_MAX_GROUPS);
  for (uint32_t i = 0; i < nf; ++i) {
    if (!from.groups[i].has_names) continue;
    for (uint32_t j = 0; j < nt; ++j) {
      if (to.groups[j].has_names && to.groups[j].name_hash == from.groups[i].name_hash) {
        map[i] = static_cast<int>(j);
        break;
      }
    }
  }
  return map;
}

uint64_t ebpf_translate_bits(uint64_t bits, const EbpfBitMap& map) {
  uint64_t out = 0;
  for (int i = 0; i < AMLFW_MAX_GROUPS && bits != 0; ++i, bits >>= 1) {
    if ((bits & 1) && map[i] >= 0) out |= uint64_t{1} << map[i];
  }
  return out;
}

}  // namespace amlfw
