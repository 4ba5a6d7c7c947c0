// SPDX-License-Identifier: MIT
// The port dispatch of the filter chains (verdict maps into dispatch and group chains) means
// exactly what the linear chain means: a small evaluator of NftChainSpec runs many packets
// through both forms and compares the verdict and the rule (comment) that decided; and a new
// connection evaluates a bounded number of rules however many groups there are.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "policy/render_nft.h"
#include "tests/unit/nft_test_util.h"

namespace amlfw {
namespace {

struct Packet {
  bool v6 = false;
  uint8_t l4 = kIpprotoTcp;
  uint16_t sport = 40000, dport = 443;
  uint8_t icmp_type = 0;
  bool lo = false;
  bool established = false;
  IpAddr src, dst;
};

enum class Verdict { kAccept, kReject, kPolicy };

struct Outcome {
  Verdict verdict = Verdict::kPolicy;
  std::string counted;  // comment of the last counter the packet passed ("" if none)
  int rules = 0;        // rules evaluated
  friend bool operator==(const Outcome& a, const Outcome& b) {
    return a.verdict == b.verdict && a.counted == b.counted;
  }
};

std::string str(Verdict v) {
  return v == Verdict::kAccept ? "accept" : v == Verdict::kReject ? "reject" : "policy";
}

// Which addresses each named set holds.
using SetOracle = std::map<std::string, std::vector<IpAddr>>;

// Keeps pointers into `chains`: keep them alive.
class Eval {
 public:
  Eval(const std::vector<NftChainSpec>& chains, const SetOracle& sets) : sets_(sets) {
    for (const auto& c : chains) chains_[c.name] = &c;
  }

  Outcome run(const std::string& hook, const Packet& p) {
    Outcome o;
    if (!chain(hook, p, &o, 0)) o.verdict = Verdict::kPolicy;
    return o;
  }

 private:
  bool in_set(const std::string& set, const IpAddr& a) const {
    auto it = sets_.find(set);
    if (it == sets_.end()) {
      ADD_FAILURE() << "rule refers to unknown set " << set;
      return false;
    }
    for (const auto& x : it->second) {
      if (x == a) return true;
    }
    return false;
  }

  bool match(const NftMatch& m, const Packet& p) const {
    const bool th = p.l4 == kIpprotoTcp || p.l4 == kIpprotoUdp;
    switch (m.kind) {
      case NftMatch::Kind::kOifLo:
      case NftMatch::Kind::kIifLo: return p.lo;
      case NftMatch::Kind::kCtEstablished: return p.established;
      case NftMatch::Kind::kNfproto: return m.value == (p.v6 ? kNfprotoIpv6 : kNfprotoIpv4);
      case NftMatch::Kind::kL4proto: return p.l4 == m.value;
      case NftMatch::Kind::kL4protoTcpUdp: return th;
      case NftMatch::Kind::kAddrInSet:
        EXPECT_EQ(m.v6, p.v6) << "address match without its family dependency";
        return m.v6 == p.v6 && in_set(m.set, m.src ? p.src : p.dst);
      case NftMatch::Kind::kAddrEq: return m.v6 == p.v6 && (m.src ? p.src : p.dst) == m.addr;
      case NftMatch::Kind::kPorts: return th && p.sport == m.sport && p.dport == m.dport;
      case NftMatch::Kind::kDports:
        EXPECT_TRUE(th) << "port match without its protocol dependency";
        for (const auto& r : m.ports) {
          if (th && r.contains(p.dport)) return true;
        }
        return false;
      case NftMatch::Kind::kIcmpTypes:
        if (p.l4 != (m.v6 ? kIpprotoIcmpv6 : kIpprotoIcmp)) return false;
        for (uint8_t t : m.types) {
          if (t == p.icmp_type) return true;
        }
        return false;
      case NftMatch::Kind::kMarkNot:
      case NftMatch::Kind::kAddrNotPrefix: ADD_FAILURE() << "nat match in a filter chain"; return false;
      case NftMatch::Kind::kAddrPrefix:  // [forward] matches: nft_forward_test.cpp evaluates those
      case NftMatch::Kind::kIifname: ADD_FAILURE() << "forward match in an output/input chain"; return false;
    }
    return false;
  }

  // True when the chain decided (accept or reject); false: return to the caller.
  bool chain(const std::string& name, const Packet& p, Outcome* o, int depth) {
    auto it = chains_.find(name);
    if (it == chains_.end()) {
      ADD_FAILURE() << "jump to unknown chain " << name;
      return false;
    }
    EXPECT_TRUE(depth == 0 || it->second->regular) << name << " is a hook chain reached by a jump";
    EXPECT_LT(depth, 16) << "jump stack too deep";
    for (const auto& r : it->second->rules) {
      o->rules++;
      bool ok = true;
      for (const auto& m : r.matches) {
        if (!match(m, p)) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (r.verdict == NftVerdict::kDportVmap) {
        EXPECT_TRUE(p.l4 == kIpprotoTcp || p.l4 == kIpprotoUdp);
        const NftVmapEntry* hit = nullptr;
        for (const auto& e : r.vmap) {
          if (p.dport >= e.ports.lo && p.dport <= e.ports.hi) hit = &e;
        }
        if (hit == nullptr) continue;  // no element: the rule does not match
        if (chain(hit->chain, p, o, depth + 1)) return true;
        continue;
      }
      if (r.counter) o->counted = r.comment;
      switch (r.verdict) {
        case NftVerdict::kNone: break;
        case NftVerdict::kAccept: o->verdict = Verdict::kAccept; return true;
        case NftVerdict::kRejectTcpReset:
        case NftVerdict::kRejectIcmpx: o->verdict = Verdict::kReject; return true;
        case NftVerdict::kJump:
          if (chain(r.target, p, o, depth + 1)) return true;
          break;
        case NftVerdict::kDportVmap:
        case NftVerdict::kDnat: ADD_FAILURE() << "unexpected verdict"; return true;
      }
    }
    return false;
  }

  std::map<std::string, const NftChainSpec*> chains_;
  const SetOracle& sets_;
};

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

using testing::group;

// Overlapping groups of every shape: all ports, any protocol, ranges, single ports, port
// lists, IPv4 and IPv6, learned-address sets, the same destination in several groups.
struct Fixture {
  Policy p;
  std::vector<PortGroup> groups;
  SetOracle sets;
  std::vector<IpAddr> addrs;  // destinations and sources to try

  Fixture() {
    p.dns_upstreams = {ip("192.0.2.53"), ip("2001:db8::53")};
    p.platform_azure = true;
    p.inbound_enforce = true;
    p.dns_redirect = true;
    p.dns_listen = "127.0.0.1:5353";
    groups = {
        group(Direction::kEgress, Proto::kTcp, {PortRange{443, 443}}, {"203.0.113.0/25", "2001:db8:1::/48"},
              {"NR2", "NR3"}, true),
        group(Direction::kEgress, Proto::kAny, {PortRange{}}, {"198.51.100.0/26"}, {"user-1"}),
        group(Direction::kEgress, Proto::kTcp, {PortRange{}}, {"203.0.113.64/26"}, {"NR1"}),
        group(Direction::kEgress, Proto::kTcp, {PortRange{80, 80}, PortRange{443, 443}, PortRange{8000, 8010}},
              {"203.0.113.0/24", "198.51.100.0/24"}, {"AR2"}, true),
        group(Direction::kEgress, Proto::kUdp, {PortRange{53, 53}, PortRange{123, 123}}, {"192.0.2.0/24"}, {"U1"}),
        group(Direction::kEgress, Proto::kAny, {PortRange{5000, 6000}}, {"2001:db8:2::/48", "192.0.2.128/25"},
              {"R1"}, true),
        group(Direction::kEgress, Proto::kUdp, {PortRange{5500, 65535}}, {"192.0.2.0/25"}, {"R2"}),
        group(Direction::kIngress, Proto::kTcp, {PortRange{29876, 29877}}, {"198.51.100.0/28"}, {"IN1"}),
        group(Direction::kIngress, Proto::kAny, {PortRange{22, 22}, PortRange{29877, 30000}}, {"2001:db8:3::/48"},
              {"IN2"}),
    };
    std::sort(groups.begin(), groups.end(), [](const PortGroup& a, const PortGroup& b) { return a.name < b.name; });
    addrs = {ip("203.0.113.1"),   ip("203.0.113.70"), ip("203.0.113.200"), ip("198.51.100.1"), ip("198.51.100.99"),
             ip("192.0.2.1"),     ip("192.0.2.200"),  ip("192.0.2.53"),    ip("168.63.129.16"), ip("169.254.169.254"),
             ip("127.0.0.1"),     ip("2001:db8:1::1"), ip("2001:db8:2::9"), ip("2001:db8:3::1"), ip("2001:db8::53"),
             ip("2001:db8:99::1"), ip("203.0.113.250"), ip("2001:db8:98::1")};
    sets["dns4"] = {ip("192.0.2.53")};
    sets["dns6"] = {ip("2001:db8::53")};
    for (const auto& g : groups) {
      for (bool v6 : {false, true}) {
        auto& s = sets[nft_prefix_set_name(g.name, v6)];
        for (const auto& a : addrs) {
          if (a.v6 == v6 && g.prefixes.contains(a)) s.push_back(a);
        }
        if (g.has_names) {
          // Learned addresses: some outside the prefixes, one also in another group.
          sets[nft_name_set_name(g.name, v6)] = v6 ? std::vector<IpAddr>{ip("2001:db8:99::1")}
                                                   : std::vector<IpAddr>{ip("203.0.113.250"), ip("192.0.2.1")};
        }
      }
    }
  }
};

std::vector<uint16_t> interesting_ports(const std::vector<PortGroup>& groups) {
  std::set<uint32_t> ports = {0, 1, 22, 53, 54, 67, 68, 80, 123, 443, 546, 547, 5353, 32526, 65534, 65535};
  for (const auto& g : groups) {
    for (const auto& r : g.ports) {
      for (int64_t d = -1; d <= 1; ++d) {
        for (int64_t b : {int64_t{r.lo}, int64_t{r.hi}}) {
          if (b + d >= 0 && b + d <= 65535) ports.insert(static_cast<uint32_t>(b + d));
        }
      }
    }
  }
  std::vector<uint16_t> out;
  for (uint32_t x : ports) out.push_back(static_cast<uint16_t>(x));
  return out;
}

void compare_all(const Policy& p, const std::vector<PortGroup>& groups, const SetOracle& sets,
                 const std::vector<IpAddr>& addrs, size_t* compared) {
  const auto linear = nft_linear_chain_specs(p, groups);
  const auto dispatched = nft_chain_specs(p, groups);
  Eval lin(linear, sets);
  Eval dis(dispatched, sets);
  const auto ports = interesting_ports(groups);
  const std::vector<std::pair<uint8_t, uint8_t>> protos = {
      {kIpprotoTcp, 0}, {kIpprotoUdp, 0}, {kIpprotoIcmp, 8}, {kIpprotoIcmp, 0}, {kIpprotoIcmpv6, 128},
      {kIpprotoIcmpv6, 135}, {kIpprotoIcmpv6, 1}, {132, 0}};
  for (const char* hook : {"output", "input"}) {
    if (std::string(hook) == "input" && !p.inbound_enforce) continue;
    for (const auto& a : addrs) {
      for (const auto& [l4, type] : protos) {
        if (a.v6 != (l4 == kIpprotoIcmpv6) && (l4 == kIpprotoIcmp || l4 == kIpprotoIcmpv6)) continue;
        const bool th = l4 == kIpprotoTcp || l4 == kIpprotoUdp;
        for (uint16_t port : th ? ports : std::vector<uint16_t>{0}) {
          for (uint16_t sport : {uint16_t{40000}, uint16_t{68}, uint16_t{67}, uint16_t{546}, uint16_t{547}}) {
            if (!th && sport != 40000) continue;
            for (int flags = 0; flags < 3; ++flags) {
              Packet pk;
              pk.v6 = a.v6;
              pk.l4 = l4;
              pk.icmp_type = type;
              pk.dport = port;
              pk.sport = sport;
              pk.lo = flags == 1;
              pk.established = flags == 2;
              pk.dst = a;
              pk.src = a;  // ingress groups match the source
              const Outcome want = lin.run(hook, pk);
              const Outcome got = dis.run(hook, pk);
              ++*compared;
              ASSERT_TRUE(want == got) << hook << " " << a.str() << " proto " << int(l4) << " type " << int(type)
                                       << " dport " << port << " sport " << sport << " flags " << flags
                                       << ": linear " << str(want.verdict) << " '" << want.counted << "', dispatched "
                                       << str(got.verdict) << " '" << got.counted << "'";
            }
          }
        }
      }
    }
  }
}

TEST(NftDispatch, SameVerdictAndCounterAsTheLinearChain) {
  Fixture f;
  size_t n = 0;
  compare_all(f.p, f.groups, f.sets, f.addrs, &n);
  EXPECT_GT(n, 20000u);
  // Audit mode, no platform rules, no redirect, no inbound.
  Policy q = f.p;
  q.mode = Mode::kAudit;
  q.platform_azure = false;
  q.dns_redirect = false;
  q.inbound_enforce = false;
  compare_all(q, f.groups, f.sets, f.addrs, &n);
  // DNS upstream on another port, proxy on IPv6.
  q = f.p;
  q.dns_upstream_port = 5353;
  q.dns_listen = "[::1]:53";
  compare_all(q, f.groups, f.sets, f.addrs, &n);
  // No groups at all.
  compare_all(f.p, {}, f.sets, f.addrs, &n);
}

TEST(NftDispatch, RandomGroupsMatchTheLinearChain) {
  std::mt19937 rng(42);
  const std::vector<std::string> pool4 = {"192.0.2.0/26", "192.0.2.64/26", "192.0.2.0/24", "198.51.100.0/24",
                                          "203.0.113.0/24", "203.0.113.128/25"};
  const std::vector<std::string> pool6 = {"2001:db8:1::/48", "2001:db8::/32", "2001:db8:2::/48"};
  std::vector<IpAddr> addrs = {ip("192.0.2.1"), ip("192.0.2.70"), ip("198.51.100.5"), ip("203.0.113.1"),
                               ip("203.0.113.200"), ip("2001:db8:1::1"), ip("2001:db8:2::1"), ip("2001:db8:5::1"),
                               ip("192.0.2.53")};
  size_t n = 0;
  for (int round = 0; round < 12; ++round) {
    Fixture f;
    f.groups.clear();
    std::set<std::string> names;
    const int count = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < count; ++i) {
      std::vector<PortRange> ports;
      const int np = static_cast<int>(rng() % 4);
      for (int k = 0; k < np; ++k) {
        const auto lo = static_cast<uint16_t>(1 + rng() % 600);
        const auto hi = static_cast<uint16_t>(rng() % 2 ? lo : lo + rng() % 300);
        if (rng() % 5 == 0) ports.push_back(PortRange{static_cast<uint16_t>(65535 - rng() % 3), 65535});
        ports.push_back(PortRange{lo, hi});
      }
      if (ports.empty()) ports.push_back(PortRange{});
      ports = normalize_ports(ports);
      const Proto proto = std::vector<Proto>{Proto::kTcp, Proto::kUdp, Proto::kAny}[rng() % 3];
      const Direction dir = rng() % 4 == 0 ? Direction::kIngress : Direction::kEgress;
      std::vector<std::string> pf = {pool4[rng() % pool4.size()], pool6[rng() % pool6.size()]};
      auto g = group(dir, proto, ports, pf, {"G" + std::to_string(i)}, rng() % 2 == 0);
      if (!names.insert(g.name).second) continue;
      f.groups.push_back(std::move(g));
    }
    std::sort(f.groups.begin(), f.groups.end(), [](const PortGroup& a, const PortGroup& b) { return a.name < b.name; });
    f.sets.clear();
    f.sets["dns4"] = {ip("192.0.2.53")};
    f.sets["dns6"] = {ip("2001:db8::53")};
    for (const auto& g : f.groups) {
      for (bool v6 : {false, true}) {
        auto& s = f.sets[nft_prefix_set_name(g.name, v6)];
        for (const auto& a : addrs) {
          if (a.v6 == v6 && g.prefixes.contains(a)) s.push_back(a);
        }
        if (g.has_names) f.sets[nft_name_set_name(g.name, v6)] = {v6 ? ip("2001:db8:5::1") : ip("203.0.113.200")};
      }
    }
    compare_all(f.p, f.groups, f.sets, addrs, &n);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(n, 10000u);
}

TEST(NftDispatch, NewConnectionEvaluatesFewRulesWhateverTheGroupCount) {
  Fixture f;
  f.groups.clear();
  // 60 groups of one port each, and the destination in the last one.
  for (uint16_t i = 0; i < 60; ++i) {
    f.groups.push_back(group(Direction::kEgress, Proto::kTcp, {PortRange{uint16_t(1000 + i), uint16_t(1000 + i)}},
                             {"198.51.100.0/24"}, {"R" + std::to_string(i)}, true));
  }
  f.sets.clear();
  f.sets["dns4"] = {};
  f.sets["dns6"] = {};
  for (const auto& g : f.groups) {
    for (bool v6 : {false, true}) {
      f.sets[nft_prefix_set_name(g.name, v6)] = v6 ? std::vector<IpAddr>{} : std::vector<IpAddr>{ip("198.51.100.7")};
      f.sets[nft_name_set_name(g.name, v6)] = {};
    }
  }
  Packet syn;
  syn.dst = ip("198.51.100.7");
  syn.dport = 1059;
  const auto linear = nft_linear_chain_specs(f.p, f.groups);
  const auto dispatched = nft_chain_specs(f.p, f.groups);
  Eval lin(linear, f.sets);
  Eval dis(dispatched, f.sets);
  const Outcome a = lin.run("output", syn);
  const Outcome b = dis.run("output", syn);
  EXPECT_EQ(a.verdict, Verdict::kAccept);
  EXPECT_TRUE(a == b);
  EXPECT_EQ(b.counted, "R59");
  EXPECT_GT(a.rules, 240);  // 4 rules per group before it
  // established, loopback, the TCP verdict map, the group's first rule.
  EXPECT_EQ(b.rules, 4);
  syn.dport = 999;  // denied: the maps miss, the end rejects
  const Outcome c = dis.run("output", syn);
  EXPECT_EQ(c.verdict, Verdict::kReject);
  EXPECT_LE(c.rules, 8);
  // The output chain itself does not grow with the groups.
  EXPECT_EQ(dispatched[0].rules.size(), nft_chain_specs(f.p, {})[0].rules.size());
}

TEST(NftDispatch, HookChainOfNames) {
  EXPECT_EQ(nft_hook_chain_of("out_tcp_443"), "output");
  EXPECT_EQ(nft_hook_chain_of("g_e_tcp_443"), "output");
  EXPECT_EQ(nft_hook_chain_of("in_udp_68"), "input");
  EXPECT_EQ(nft_hook_chain_of("g_i_tcp_29876-29877"), "input");
  EXPECT_EQ(nft_hook_chain_of("output"), "output");
  EXPECT_EQ(nft_hook_chain_of("dns_redirect"), "dns_redirect");
  EXPECT_EQ(nft_group_chain_name("e_tcp_443"), "g_e_tcp_443");
  // Every regular chain of a table maps to the hook chain that reaches it.
  Fixture f;
  for (const auto& c : nft_chain_specs(f.p, f.groups)) {
    if (!c.regular) continue;
    const auto hook = nft_hook_chain_of(c.name);
    EXPECT_TRUE(hook == "output" || hook == "input") << c.name;
    EXPECT_LE(c.name.size(), 255u);
  }
}

}  // namespace
}  // namespace amlfw
