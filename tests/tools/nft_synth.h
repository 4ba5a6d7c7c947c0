// SPDX-License-Identifier: MIT
// Synthetic policies for the nftables tests and benchmark: a tiny line format and a
// deterministic generator of many disjoint prefixes (with an optional share changed).
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace amlfw::synth {

// splitmix64: deterministic, seedable.
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// One block of `size` addresses, aligned, strictly inside [from, to) with a gap at both
// ends (so blocks of neighbouring strides are never adjacent); `pick` chooses which.
template <class T>
T place(T from, T to, T size, uint64_t pick) {
  T first = (from + size) / size * size;   // aligned, > from
  T slots = (to - 1 - first) / size;       // blocks that end before to - 1
  if (slots == 0) slots = 1;
  return first + (static_cast<T>(pick) % slots) * size;
}

// `count` disjoint, non-adjacent IPv4 ranges (one /24../32 block per stride of the space).
// With change_permille > 0, that share of them moves inside its stride (a delete + an add
// each), chosen by change_seed.
inline void gen4(PrefixSet* out, uint32_t count, uint64_t seed, uint64_t change_seed, uint32_t change_permille) {
  const uint64_t stride = (uint64_t{1} << 32) / count;
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t h = mix(seed * 1000003 + i);
    uint64_t size = uint64_t{1} << (8 - h % 9);  // /24../32
    while (size * 4 > stride && size > 1) size /= 2;
    uint64_t pick = h >> 8;
    if (change_permille > 0 && mix(change_seed * 7919 + i) % 1000 < change_permille) pick += 1;
    uint64_t lo = place<uint64_t>(i * stride, (i + 1) * stride, size, pick);
    out->add_range4({static_cast<uint32_t>(lo), static_cast<uint32_t>(lo + size - 1)});
  }
}

// The same for IPv6 inside 2001:db8::/32 (one /48../64 block per stride).
inline void gen6(PrefixSet* out, uint32_t count, uint64_t seed, uint64_t change_seed, uint32_t change_permille) {
  const u128 base = u128{0x20010db8} << 96;
  const u128 stride = (u128{1} << 96) / count;
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t h = mix(seed * 1000033 + i);
    u128 size = u128{1} << (80 - h % 17);  // /48../64
    while (size * 4 > stride && size > 1) size /= 2;
    uint64_t pick = h >> 8;
    if (change_permille > 0 && mix(change_seed * 7919 + i) % 1000 < change_permille) pick += 1;
    u128 lo = place<u128>(base + u128{i} * stride, base + u128{i + 1} * stride, size, pick);
    out->add_range6({lo, lo + size - 1});
  }
}

struct Spec {
  Policy policy;
  std::vector<PortGroup> groups;
};

// Lines: `mode enforce|audit`, `inbound 0|1`, `platform 0|1`, `dns ADDR`, `dnsport N`,
// `redirect LISTEN` (dns.redirect to the proxy at LISTEN),
// `group egress|ingress tcp|udp|any PORTS[,PORTS] [names] [ids=A,B]` (starts a group),
// `prefix CIDR`, `gen4 COUNT SEED CHANGESEED PERMILLE`, `gen6 ...` (add to the group).
inline Result<Spec> parse_spec(std::istream& in, const std::string& where) {
  Spec s;
  s.policy.platform_azure = true;
  std::string line;
  int n = 0;
  auto err = [&](const std::string& m) { return usage_error(where + ":" + std::to_string(n) + ": " + m); };
  while (std::getline(in, line)) {
    ++n;
    std::istringstream ls(line);
    std::string k;
    if (!(ls >> k) || k[0] == '#') continue;
    if (k == "mode") {
      std::string v;
      ls >> v;
      s.policy.mode = v == "audit" ? Mode::kAudit : Mode::kEnforce;
    } else if (k == "inbound") {
      int v = 0;
      ls >> v;
      s.policy.inbound_enforce = v != 0;
    } else if (k == "platform") {
      int v = 0;
      ls >> v;
      s.policy.platform_azure = v != 0;
    } else if (k == "dns") {
      std::string v;
      ls >> v;
      auto a = IpAddr::parse(v);
      if (!a) return err("bad address " + v);
      s.policy.dns_upstreams.push_back(*a);
    } else if (k == "redirect") {
      ls >> s.policy.dns_listen;
      s.policy.dns_redirect = true;
    } else if (k == "dnsport") {
      int v = 53;
      ls >> v;
      s.policy.dns_upstream_port = static_cast<uint16_t>(v);
    } else if (k == "group") {
      std::string dir, proto, ports, opt;
      ls >> dir >> proto >> ports;
      PortGroup g;
      g.direction = dir == "ingress" ? Direction::kIngress : Direction::kEgress;
      auto p = parse_proto(proto);
      if (!p) return err("bad proto " + proto);
      g.proto = *p;
      std::stringstream ps(ports);
      std::string one;
      while (std::getline(ps, one, ',')) {
        auto r = parse_port_range(one);
        if (!r) return err(r.error().message);
        g.ports.push_back(*r);
      }
      g.ports = normalize_ports(g.ports);
      while (ls >> opt) {
        if (opt == "names") g.has_names = true;
        if (opt.rfind("ids=", 0) == 0) {
          std::stringstream is(opt.substr(4));
          while (std::getline(is, one, ',')) g.rule_ids.push_back(one);
        }
      }
      g.name = port_group_name(g.direction, g.proto, g.ports);
      s.groups.push_back(std::move(g));
    } else if (k == "prefix" || k == "gen4" || k == "gen6") {
      if (s.groups.empty()) return err(k + " before any group");
      PrefixSet& ps = s.groups.back().prefixes;
      if (k == "prefix") {
        std::string v;
        ls >> v;
        auto pr = Prefix::parse(v, true);
        if (!pr) return err(pr.error().message);
        ps.add(*pr);
      } else {
        uint32_t count = 0, permille = 0;
        uint64_t seed = 1, cseed = 0;
        ls >> count >> seed >> cseed >> permille;
        if (count == 0) return err("gen needs a count");
        if (k == "gen4") gen4(&ps, count, seed, cseed, permille);
        if (k == "gen6") gen6(&ps, count, seed, cseed, permille);
      }
    } else {
      return err("unknown key " + k);
    }
  }
  for (auto& g : s.groups) g.prefixes.normalize();
  std::sort(s.groups.begin(), s.groups.end(), [](const PortGroup& a, const PortGroup& b) { return a.name < b.name; });
  return s;
}

inline Result<Spec> load_spec(const std::string& path) {
  std::ifstream f(path);
  if (!f) return usage_error(path + ": cannot open");
  return parse_spec(f, path);
}

}  // namespace amlfw::synth
