// SPDX-License-Identifier: MIT
#include "policy/render_nft.h"
#include "policy/render_nft_match.h"

#include "policy/render_nft_forward.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

namespace amlfw {
namespace {

constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmp6EchoRequest = 128;
// Router solicitation, router advertisement, neighbour solicitation, neighbour advertisement.
const std::vector<uint8_t> kNeighbourDiscovery = {133, 134, 135, 136};

constexpr uint32_t kWireServer = 0xA83F8110;  // 168.63.129.16
constexpr uint32_t kImds = 0xA9FEA9FE;        // 169.254.169.254

std::string_view icmp_type_name(bool v6, uint8_t t) {
  if (!v6) return t == kIcmpEchoRequest ? "echo-request" : "";
  switch (t) {
    case 128: return "echo-request";
    case 133: return "nd-router-solicit";
    case 134: return "nd-router-advert";
    case 135: return "nd-neighbor-solicit";
    case 136: return "nd-neighbor-advert";
    default: return "";
  }
}

std::string_view l4_name(uint8_t p) {
  switch (p) {
    case kIpprotoTcp: return "tcp";
    case kIpprotoUdp: return "udp";
    case kIpprotoIcmp: return "icmp";
    case kIpprotoIcmpv6: return "ipv6-icmp";
    default: return "";
  }
}

// Comments keep to a safe alphabet: they are quoted in nft syntax and shown by `nft list`.
std::string sanitize(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ',' || c == ':' || c == '+' || c == ' ';
    out += ok ? c : '_';
  }
  return out;
}

using nft_match::addr_eq;
using nft_match::addr_in_set;
using nft_match::nfproto;
NftMatch m(NftMatch::Kind k) { return nft_match::of(k); }
NftMatch l4proto(uint8_t p) {
  NftMatch x = m(NftMatch::Kind::kL4proto);
  x.value = p;
  return x;
}
NftMatch ports(uint16_t sport, uint16_t dport) {
  NftMatch x = m(NftMatch::Kind::kPorts);
  x.sport = sport;
  x.dport = dport;
  return x;
}
NftMatch dports(std::vector<PortRange> p) {
  NftMatch x = m(NftMatch::Kind::kDports);
  x.ports = std::move(p);
  return x;
}
NftMatch icmp_types(bool v6, std::vector<uint8_t> t) {
  NftMatch x = m(NftMatch::Kind::kIcmpTypes);
  x.v6 = v6;
  x.types = std::move(t);
  return x;
}
void proto_match(Proto p, std::vector<NftMatch>* out) {
  switch (p) {
    case Proto::kTcp: out->push_back(l4proto(kIpprotoTcp)); break;
    case Proto::kUdp: out->push_back(l4proto(kIpprotoUdp)); break;
    case Proto::kAny: out->push_back(m(NftMatch::Kind::kL4protoTcpUdp)); break;
  }
}

NftRuleSpec accept_rule(std::vector<NftMatch> ms, std::string comment, bool counter = true) {
  NftRuleSpec r;
  r.matches = std::move(ms);
  r.counter = counter;
  r.verdict = NftVerdict::kAccept;
  r.comment = std::move(comment);
  return r;
}

void end_rules(const Policy& p, std::vector<NftRuleSpec>* rules) {
  NftRuleSpec log;
  log.limit_log = true;
  log.log_group = kNftLogGroup;
  log.verdict = NftVerdict::kNone;
  if (p.mode == Mode::kAudit) {
    log.log_prefix = std::string(kNftAuditLogPrefix);
    rules->push_back(log);
    rules->push_back(accept_rule({}, "audit"));
    return;
  }
  log.log_prefix = std::string(kNftDenyLogPrefix);
  rules->push_back(log);
  NftRuleSpec tcp;
  tcp.matches.push_back(l4proto(kIpprotoTcp));
  tcp.counter = true;
  tcp.verdict = NftVerdict::kRejectTcpReset;
  tcp.comment = "deny";
  rules->push_back(tcp);
  NftRuleSpec other;
  other.counter = true;
  other.verdict = NftVerdict::kRejectIcmpx;
  other.comment = "deny";
  rules->push_back(other);
}

constexpr PortRange kAllPorts{0, 65535};  // a rule without a port match: port 0 too

// One entry of a filter hook chain in its linear order, with what it can match. An entry
// that only matches TCP and/or UDP packets of some destination ports is dispatched: the hook
// chain looks the protocol and port up once (a verdict map) and jumps to a chain holding just
// the entries that can match that port, in their linear order.
struct Entry {
  std::vector<NftRuleSpec> linear;  // its rules in the linear chain
  bool tcp = false, udp = false;    // dispatched when either: it matches only these protocols
  std::vector<PortRange> dports;    // ... and these destination ports (sorted, disjoint)
  const PortGroup* group = nullptr; // a group: dispatched as `jump g_<group>`
};

std::vector<PortRange> group_ports(const PortGroup& g) {
  auto ps = normalize_ports(g.ports);
  if (ps.empty() || (ps.size() == 1 && ps[0].all())) return {kAllPorts};
  return ps;
}

// The group's rules. Linear: with the protocol and port matches. In the group chain, the
// dispatch already matched them: just the address lookups, IPv4 first then IPv6, so that a
// packet of one family skips the other's rules after two compares.
std::vector<NftRuleSpec> group_rules_for(const PortGroup& g, bool linear) {
  std::vector<NftRuleSpec> rules;
  const bool src = g.direction == Direction::kIngress;
  const std::string comment = nft_group_comment(g);
  auto one = [&](bool v6, const std::string& set) {
    std::vector<NftMatch> ms{nfproto(v6), addr_in_set(v6, src, set)};
    if (linear) {
      proto_match(g.proto, &ms);
      auto ps = group_ports(g);
      if (!(ps.size() == 1 && ps[0] == kAllPorts)) ms.push_back(dports(std::move(ps)));
    }
    rules.push_back(accept_rule(std::move(ms), comment));
  };
  if (linear) {
    one(false, nft_prefix_set_name(g.name, false));
    one(true, nft_prefix_set_name(g.name, true));
    if (g.has_names) {
      one(false, nft_name_set_name(g.name, false));
      one(true, nft_name_set_name(g.name, true));
    }
    return rules;
  }
  for (bool v6 : {false, true}) {
    one(v6, nft_prefix_set_name(g.name, v6));
    if (g.has_names) one(v6, nft_name_set_name(g.name, v6));
  }
  return rules;
}

Entry rule_entry(NftRuleSpec r, bool tcp, bool udp, std::vector<PortRange> ports) {
  Entry e;
  e.linear.push_back(std::move(r));
  e.tcp = tcp;
  e.udp = udp;
  e.dports = normalize_ports(std::move(ports));
  return e;
}
Entry fixed_entry(NftRuleSpec r) { return rule_entry(std::move(r), false, false, {}); }

// The entries of a filter hook chain between its head (loopback, established) and its end,
// in the linear order.
std::vector<Entry> hook_entries(const Policy& p, const std::vector<const PortGroup*>& active, bool input,
                                bool redirect, const IpAddr& proxy, uint16_t proxy_port) {
  std::vector<Entry> out;
  if (!input) {
    out.push_back(rule_entry(accept_rule({l4proto(kIpprotoUdp), ports(68, 67)}, "dhcp"), false, true, {{67, 67}}));
    out.push_back(rule_entry(accept_rule({nfproto(true), l4proto(kIpprotoUdp), ports(546, 547)}, "dhcpv6"), false,
                             true, {{547, 547}}));
  } else {
    out.push_back(rule_entry(accept_rule({l4proto(kIpprotoUdp), ports(67, 68)}, "dhcp"), false, true, {{68, 68}}));
    out.push_back(rule_entry(accept_rule({nfproto(true), l4proto(kIpprotoUdp), ports(547, 546)}, "dhcpv6"), false,
                             true, {{546, 546}}));
  }
  out.push_back(fixed_entry(accept_rule(
      {nfproto(true), l4proto(kIpprotoIcmpv6), icmp_types(true, kNeighbourDiscovery)}, "icmpv6-nd")));
  if (input) {
    out.push_back(fixed_entry(accept_rule({l4proto(kIpprotoIcmp), icmp_types(false, {kIcmpEchoRequest})}, "ping")));
    out.push_back(fixed_entry(
        accept_rule({nfproto(true), l4proto(kIpprotoIcmpv6), icmp_types(true, {kIcmp6EchoRequest})}, "ping")));
    // [forward] pods reach the DNS proxy on a node address (their redirected DNS, or the
    // cluster DNS forwarding to it).
    for (auto& r : nft_pods_proxy_rules(p)) {
      std::vector<PortRange> ps = r.matches.back().ports;
      out.push_back(rule_entry(std::move(r), true, true, std::move(ps)));
    }
  } else {
    if (redirect) {
      // Redirected DNS reaches the filter with the proxy as destination, on the original oif.
      out.push_back(rule_entry(accept_rule({nfproto(proxy.v6), addr_eq(proxy, false),
                                            m(NftMatch::Kind::kL4protoTcpUdp),
                                            dports({PortRange{proxy_port, proxy_port}})},
                                           "dns-proxy"),
                               true, true, {{proxy_port, proxy_port}}));
    }
    if (p.platform_azure) {
      IpAddr wire = IpAddr::v4addr(kWireServer);
      out.push_back(rule_entry(accept_rule({nfproto(false), addr_eq(wire, false), m(NftMatch::Kind::kL4protoTcpUdp),
                                            dports({PortRange{53, 53}})},
                                           "platform-wireserver-dns"),
                               true, true, {{53, 53}}));
      out.push_back(rule_entry(accept_rule({nfproto(false), addr_eq(wire, false), l4proto(kIpprotoTcp),
                                            dports({PortRange{80, 80}, PortRange{32526, 32526}})},
                                           "platform-wireserver"),
                               true, false, {{80, 80}, {32526, 32526}}));
      out.push_back(rule_entry(accept_rule({nfproto(false), addr_eq(IpAddr::v4addr(kImds), false),
                                            l4proto(kIpprotoTcp), dports({PortRange{80, 80}})},
                                           "platform-imds"),
                               true, false, {{80, 80}}));
    }
    const uint16_t dns_port = p.dns_upstream_port;
    for (bool v6 : {false, true}) {
      out.push_back(rule_entry(
          accept_rule({nfproto(v6), addr_in_set(v6, false, std::string(v6 ? kNftDns6Set : kNftDns4Set)),
                       m(NftMatch::Kind::kL4protoTcpUdp), dports({PortRange{dns_port, dns_port}})},
                      "dns"),
          true, true, {{dns_port, dns_port}}));
    }
  }
  const Direction dir = input ? Direction::kIngress : Direction::kEgress;
  for (const PortGroup* g : active) {
    if (g->direction != dir) continue;
    Entry e;
    e.linear = group_rules_for(*g, true);
    e.tcp = g->proto != Proto::kUdp;
    e.udp = g->proto != Proto::kTcp;
    e.dports = group_ports(*g);
    e.group = g;
    out.push_back(std::move(e));
  }
  return out;
}

bool covers(const Entry& e, uint8_t proto, uint32_t port) {
  if (!(proto == kIpprotoTcp ? e.tcp : e.udp)) return false;
  for (const auto& r : e.dports) {
    if (port >= r.lo && port <= r.hi) return true;
  }
  return false;
}

NftRuleSpec jump_rule(std::string target) {
  NftRuleSpec r;
  r.verdict = NftVerdict::kJump;
  r.target = std::move(target);
  return r;
}

// The verdict map of one protocol: the port space cut where any entry's ports start or end;
// each piece jumps to a chain with the entries covering it, in linear order (adjacent pieces
// with the same entries merged, pieces with the same entries sharing one chain). A piece
// covered by one group alone jumps straight to the group's chain.
void dispatch(const std::vector<Entry>& entries, bool input, uint8_t proto, NftChainSpec* hook,
              std::vector<NftChainSpec>* aux) {
  std::vector<uint32_t> cuts{0};
  for (const auto& e : entries) {
    if (!(proto == kIpprotoTcp ? e.tcp : e.udp)) continue;
    for (const auto& r : e.dports) {
      cuts.push_back(r.lo);
      if (r.hi < 65535) cuts.push_back(uint32_t{r.hi} + 1);
    }
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  struct Piece {
    PortRange ports;
    std::vector<size_t> which;
  };
  std::vector<Piece> pieces;
  for (size_t i = 0; i < cuts.size(); ++i) {
    const uint32_t lo = cuts[i];
    const uint32_t hi = i + 1 < cuts.size() ? cuts[i + 1] - 1 : 65535;
    std::vector<size_t> which;
    for (size_t k = 0; k < entries.size(); ++k) {
      if (covers(entries[k], proto, lo)) which.push_back(k);
    }
    if (which.empty()) continue;
    if (!pieces.empty() && pieces.back().which == which && uint32_t{pieces.back().ports.hi} + 1 == lo) {
      pieces.back().ports.hi = static_cast<uint16_t>(hi);
      continue;
    }
    pieces.push_back({PortRange{static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)}, std::move(which)});
  }
  if (pieces.empty()) return;
  std::map<std::vector<size_t>, std::string> made;
  NftRuleSpec vmap;
  vmap.matches.push_back(l4proto(proto));
  vmap.verdict = NftVerdict::kDportVmap;
  for (const auto& piece : pieces) {
    std::string target;
    if (piece.which.size() == 1 && entries[piece.which[0]].group != nullptr) {
      target = nft_group_chain_name(entries[piece.which[0]].group->name);
    } else if (auto it = made.find(piece.which); it != made.end()) {
      target = it->second;
    } else {
      NftChainSpec c;
      c.name = std::string(input ? "in_" : "out_") + std::string(l4_name(proto)) + "_" + piece.ports.str();
      c.regular = true;
      for (size_t k : piece.which) {
        const Entry& e = entries[k];
        if (e.group != nullptr) {
          c.rules.push_back(jump_rule(nft_group_chain_name(e.group->name)));
        } else {
          c.rules.insert(c.rules.end(), e.linear.begin(), e.linear.end());
        }
      }
      target = c.name;
      made[piece.which] = target;
      aux->push_back(std::move(c));
    }
    vmap.vmap.push_back({piece.ports, std::move(target)});
  }
  hook->rules.push_back(std::move(vmap));
}

// A filter hook chain (output, or input with inbound.enforce). Linear: every rule in order.
// Dispatched: established and loopback first, the TCP and UDP verdict maps, the rules that
// match neither (ICMPv6 ND, ping), the end; the dispatch and group chains go to `aux`.
NftChainSpec hook_chain(const Policy& p, const std::vector<const PortGroup*>& active, bool input, bool linear,
                        bool redirect, const IpAddr& proxy, uint16_t proxy_port, std::vector<NftChainSpec>* aux) {
  NftChainSpec c;
  c.name = std::string(input ? kNftInputChain : kNftOutputChain);
  c.input = input;
  const auto entries = hook_entries(p, active, input, redirect, proxy, proxy_port);
  NftRuleSpec lo = accept_rule({m(input ? NftMatch::Kind::kIifLo : NftMatch::Kind::kOifLo)}, "", false);
  NftRuleSpec est = accept_rule({m(NftMatch::Kind::kCtEstablished)}, "", false);
  if (linear) {
    c.rules = {lo, est};
    for (const auto& e : entries) c.rules.insert(c.rules.end(), e.linear.begin(), e.linear.end());
  } else {
    // Established first: most packets are replies or later packets of a connection.
    c.rules = {est, lo};
    dispatch(entries, input, kIpprotoTcp, &c, aux);
    dispatch(entries, input, kIpprotoUdp, &c, aux);
    for (const auto& e : entries) {
      if (!e.tcp && !e.udp) c.rules.insert(c.rules.end(), e.linear.begin(), e.linear.end());
    }
    for (const auto& e : entries) {
      if (e.group == nullptr) continue;
      NftChainSpec g;
      g.name = nft_group_chain_name(e.group->name);
      g.regular = true;
      g.rules = group_rules_for(*e.group, false);
      aux->push_back(std::move(g));
    }
  }
  end_rules(p, &c.rules);
  return c;
}

std::string v4_text(uint32_t a) { return IpAddr::v4addr(a).str(); }
std::string v6_text(u128 a) { return IpAddr::v6addr(a).str(); }

// Prefix length when [lo, hi] is exactly one CIDR block of a `bits`-bit space, else -1.
template <class T>
int cidr_len(T lo, T hi, int bits) {
  T size_minus_1 = hi - lo;
  if ((size_minus_1 & (size_minus_1 + 1)) != 0) return -1;  // size not a power of two
  if ((lo & size_minus_1) != 0) return -1;                   // not aligned
  int host_bits = 0;
  while (host_bits < bits && ((size_minus_1 >> host_bits) & 1) != 0) ++host_bits;
  return bits - host_bits;
}

void append_set(const NftSetSpec& s, std::string* out) {
  *out += "\tset " + s.name + " {\n";
  *out += s.v6 ? "\t\ttype ipv6_addr\n" : "\t\ttype ipv4_addr\n";
  if (s.kind == NftSetKind::kPrefixes) *out += "\t\tflags interval\n";
  if (s.kind == NftSetKind::kLearned) *out += "\t\tflags timeout\n";
  std::vector<std::string> elems;
  if (s.kind == NftSetKind::kPrefixes && s.prefixes != nullptr) {
    if (s.v6) {
      for (const auto& r : s.prefixes->v6()) elems.push_back(nft_range6_text(r));
    } else {
      for (const auto& r : s.prefixes->v4()) elems.push_back(nft_range4_text(r));
    }
  }
  if (s.kind == NftSetKind::kPlain) {
    for (const auto& a : s.addrs) elems.push_back(a.str());
  }
  if (!elems.empty()) {
    *out += "\t\telements = { ";
    for (size_t i = 0; i < elems.size(); ++i) {
      if (i > 0) *out += (i % 4 == 0) ? ",\n\t\t\t     " : ", ";
      *out += elems[i];
    }
    *out += " }\n";
  }
  *out += "\t}\n";
}

}  // namespace

std::string nft_set_group_part(std::string_view group) {
  if (group.size() <= kNftGroupNameMax) return std::string(group);
  // The kernel limits set names to 255 bytes; a group with many port ranges gets a stable
  // shortened name: its start and a hash of the whole (FNV-1a, 64 bits).
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : group) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return std::string(group.substr(0, kNftGroupNameMax - 18)) + "_h" + hex;
}

std::string nft_prefix_set_name(std::string_view group, bool v6) {
  return std::string(v6 ? "p6_" : "p4_") + nft_set_group_part(group);
}
std::string nft_name_set_name(std::string_view group, bool v6) {
  return std::string(v6 ? "n6_" : "n4_") + nft_set_group_part(group);
}

std::string nft_group_chain_name(std::string_view group) { return "g_" + nft_set_group_part(group); }

std::string_view nft_hook_chain_of(std::string_view chain) {
  if (chain.starts_with("out_") || chain.starts_with("g_e_")) return kNftOutputChain;
  if (chain.starts_with("in_") || chain.starts_with("g_i_")) return kNftInputChain;
  if (chain == kNftPodsChain) return kNftForwardChain;
  return chain;
}

uint32_t nft_chain_hook(const NftChainSpec& c) {
  if (c.prerouting) return kNftHookPrerouting;
  if (c.forward) return kNftHookForward;
  return c.input ? kNftHookInput : kNftHookOutput;
}
int32_t nft_chain_priority(const NftChainSpec& c) {
  if (!c.nat) return 0;
  return c.prerouting ? kNftPodsDnsPriority : -100;
}
std::string_view nft_chain_type(const NftChainSpec& c) { return c.nat ? "nat" : "filter"; }
bool nft_chain_policy_accept(const NftChainSpec& c) { return c.nat || c.forward; }

std::string nft_chain_header(const NftChainSpec& c) {
  static constexpr std::string_view kHooks[] = {"prerouting", "input", "forward", "output"};
  const int32_t prio = nft_chain_priority(c);
  return "type " + std::string(nft_chain_type(c)) + " hook " + std::string(kHooks[nft_chain_hook(c)]) + " priority " +
         (prio == 0 ? std::string("filter") : std::to_string(prio)) + "; policy " +
         (nft_chain_policy_accept(c) ? "accept" : "drop") + ";";
}

std::string nft_group_comment(const PortGroup& g) {
  std::string out;
  for (size_t i = 0; i < g.rule_ids.size(); ++i) {
    std::string id = sanitize(g.rule_ids[i]);
    std::string more = "+" + std::to_string(g.rule_ids.size() - i);
    size_t need = (out.empty() ? 0 : 1) + id.size();
    // Keep room for a "+N" suffix unless this is the last id.
    size_t reserve = i + 1 < g.rule_ids.size() ? more.size() + 1 : 0;
    if (out.size() + need + reserve > kNftCommentMax) {
      out += (out.empty() ? "" : ",") + more;
      return out;
    }
    if (!out.empty()) out += ",";
    out += id;
  }
  return out;
}

std::vector<const PortGroup*> nft_active_groups(const Policy& p, const std::vector<PortGroup>& groups) {
  std::vector<const PortGroup*> out;
  for (const auto& g : groups) {
    if (!g.enforced) continue;
    if (g.direction == Direction::kIngress && !p.inbound_enforce) continue;
    out.push_back(&g);
  }
  std::sort(out.begin(), out.end(), [](const PortGroup* a, const PortGroup* b) { return a->name < b->name; });
  return out;
}

bool nft_parse_listen(std::string_view s, IpAddr* addr, uint16_t* port) {
  std::string_view host = s;
  std::string_view port_text;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return false;
    host = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port_text = rest.substr(1);
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    auto colon = s.find(':');
    host = s.substr(0, colon);
    port_text = s.substr(colon + 1);
  }
  auto a = IpAddr::parse(host);
  if (!a) return false;
  uint32_t n = 53;
  if (!port_text.empty()) {
    n = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || n > 65535) return false;
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (n == 0 || n > 65535 || port_text.size() > 5) return false;
  }
  *addr = *a;
  *port = static_cast<uint16_t>(n);
  return true;
}

namespace {

std::vector<NftChainSpec> chain_specs(const Policy& p, const std::vector<PortGroup>& groups, bool linear) {
  const auto active = nft_active_groups(p, groups);
  std::vector<NftChainSpec> chains;
  std::vector<NftChainSpec> aux;
  IpAddr proxy;
  uint16_t proxy_port = 53;
  const bool redirect = p.dns_redirect && nft_parse_listen(p.dns_listen, &proxy, &proxy_port);

  // egress.local = false: no output chain, the node's own processes are not filtered; its
  // dispatch and group chains stay, for the pods' chain ([forward]).
  const NftChainSpec output = hook_chain(p, active, false, linear, redirect, proxy, proxy_port, &aux);
  if (p.egress_local || !p.forward_enabled()) chains.push_back(output);
  if (p.inbound_enforce) chains.push_back(hook_chain(p, active, true, linear, redirect, proxy, proxy_port, &aux));

  if (redirect) {
    // Every local DNS packet of the proxy's family goes to the proxy, except the proxy's own
    // queries (marked kDnsProxyMark) and those already for loopback.
    NftChainSpec nat;
    nat.name = std::string(kNftDnsRedirectChain);
    nat.nat = true;
    NftMatch mark = m(NftMatch::Kind::kMarkNot);
    mark.mark = kDnsProxyMark;
    NftMatch not_lo = m(NftMatch::Kind::kAddrNotPrefix);
    not_lo.v6 = proxy.v6;
    not_lo.addr = proxy.v6 ? IpAddr::v6addr(1) : IpAddr::v4addr(0x7f000000);
    not_lo.value = proxy.v6 ? 128 : 8;
    nat.rules.push_back(nft_match::dnat_to_proxy(
        {nfproto(proxy.v6), not_lo, mark, m(NftMatch::Kind::kL4protoTcpUdp), dports({PortRange{53, 53}})}, proxy,
        proxy_port, "dns-redirect"));
    chains.push_back(std::move(nat));
  }
  nft_add_forward_chains(p, output, &chains);
  for (auto& c : aux) chains.push_back(std::move(c));
  return chains;
}

}  // namespace

std::vector<NftChainSpec> nft_chain_specs(const Policy& p, const std::vector<PortGroup>& groups) {
  return chain_specs(p, groups, false);
}

std::vector<NftChainSpec> nft_linear_chain_specs(const Policy& p, const std::vector<PortGroup>& groups) {
  return chain_specs(p, groups, true);
}

NftTableSpec nft_table_spec(const Policy& p, const std::vector<PortGroup>& groups) {
  NftTableSpec t;
  for (bool v6 : {false, true}) {
    NftSetSpec s;
    s.name = std::string(v6 ? kNftDns6Set : kNftDns4Set);
    s.v6 = v6;
    s.kind = NftSetKind::kPlain;
    for (const auto& a : p.dns_upstreams) {
      if (a.v6 == v6 && std::find(s.addrs.begin(), s.addrs.end(), a) == s.addrs.end()) s.addrs.push_back(a);
    }
    std::sort(s.addrs.begin(), s.addrs.end());
    t.sets.push_back(std::move(s));
  }
  for (const PortGroup* g : nft_active_groups(p, groups)) {
    for (bool v6 : {false, true}) {
      NftSetSpec s;
      s.name = nft_prefix_set_name(g->name, v6);
      s.v6 = v6;
      s.kind = NftSetKind::kPrefixes;
      s.prefixes = &g->prefixes;
      s.group = g->name;
      t.sets.push_back(std::move(s));
    }
    if (g->has_names) {
      for (bool v6 : {false, true}) {
        NftSetSpec s;
        s.name = nft_name_set_name(g->name, v6);
        s.v6 = v6;
        s.kind = NftSetKind::kLearned;
        s.group = g->name;
        t.sets.push_back(std::move(s));
      }
    }
  }
  t.chains = nft_chain_specs(p, groups);
  return t;
}

std::string nft_range4_text(const Range4& r) {
  if (r.lo == r.hi) return v4_text(r.lo);
  int len = cidr_len<uint32_t>(r.lo, r.hi, 32);
  if (len >= 0) return v4_text(r.lo) + "/" + std::to_string(len);
  return v4_text(r.lo) + "-" + v4_text(r.hi);
}

std::string nft_range6_text(const Range6& r) {
  if (r.lo == r.hi) return v6_text(r.lo);
  int len = cidr_len<u128>(r.lo, r.hi, 128);
  if (len >= 0) return v6_text(r.lo) + "/" + std::to_string(len);
  return v6_text(r.lo) + "-" + v6_text(r.hi);
}

std::string nft_rule_text(const NftRuleSpec& r) {
  std::string out;
  auto word = [&](const std::string& w) {
    if (!out.empty()) out += ' ';
    out += w;
  };
  for (const auto& x : r.matches) {
    switch (x.kind) {
      case NftMatch::Kind::kOifLo: word("oif \"lo\""); break;
      case NftMatch::Kind::kIifLo: word("iif \"lo\""); break;
      case NftMatch::Kind::kCtEstablished: word("ct state established,related"); break;
      case NftMatch::Kind::kNfproto: word(x.value == kNfprotoIpv6 ? "meta nfproto ipv6" : "meta nfproto ipv4"); break;
      case NftMatch::Kind::kL4proto: word("meta l4proto " + std::string(l4_name(x.value))); break;
      case NftMatch::Kind::kL4protoTcpUdp: word("meta l4proto { tcp, udp }"); break;
      case NftMatch::Kind::kAddrInSet:
        word(std::string(x.v6 ? "ip6 " : "ip ") + (x.src ? "saddr @" : "daddr @") + x.set);
        break;
      case NftMatch::Kind::kAddrEq:
        word(std::string(x.v6 ? "ip6 " : "ip ") + (x.src ? "saddr " : "daddr ") + x.addr.str());
        break;
      case NftMatch::Kind::kPorts:
        word("th sport " + std::to_string(x.sport) + " th dport " + std::to_string(x.dport));
        break;
      case NftMatch::Kind::kDports: {
        if (x.ports.size() == 1) {
          word("th dport " + x.ports[0].str());
        } else {
          std::string s = "th dport { ";
          for (size_t i = 0; i < x.ports.size(); ++i) s += (i ? ", " : "") + x.ports[i].str();
          word(s + " }");
        }
        break;
      }
      case NftMatch::Kind::kMarkNot: {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "meta mark != 0x%08x", x.mark);
        word(buf);
        break;
      }
      case NftMatch::Kind::kAddrNotPrefix: {
        const bool host = x.value == (x.v6 ? 128 : 32);
        word(std::string(x.v6 ? "ip6 " : "ip ") + (x.src ? "saddr != " : "daddr != ") + x.addr.str() +
             (host ? "" : "/" + std::to_string(x.value)));
        break;
      }
      case NftMatch::Kind::kAddrPrefix:
        word(std::string(x.v6 ? "ip6 " : "ip ") + (x.src ? "saddr " : "daddr ") + x.addr.str() + "/" +
             std::to_string(x.value));
        break;
      case NftMatch::Kind::kIifname: word("iifname \"" + x.set + "\""); break;
      case NftMatch::Kind::kIcmpTypes: {
        std::string s = x.v6 ? "icmpv6 type " : "icmp type ";
        if (x.types.size() == 1) {
          s += icmp_type_name(x.v6, x.types[0]);
        } else {
          s += "{ ";
          for (size_t i = 0; i < x.types.size(); ++i) s += (i ? ", " : "") + std::string(icmp_type_name(x.v6, x.types[i]));
          s += " }";
        }
        word(s);
        break;
      }
    }
  }
  if (r.limit_log) {
    word("limit rate " + std::to_string(kNftLogRatePerSecond) + "/second");
    word("log prefix \"" + r.log_prefix + "\"");
    if (r.log_group != 0)
      word("group " + std::to_string(r.log_group) + " snaplen " + std::to_string(kNftLogSnaplen));
  }
  if (r.counter) word("counter");
  switch (r.verdict) {
    case NftVerdict::kNone: break;
    case NftVerdict::kAccept: word("accept"); break;
    case NftVerdict::kJump: word("jump " + r.target); break;
    case NftVerdict::kDportVmap: {
      std::string v = "th dport vmap { ";
      for (size_t i = 0; i < r.vmap.size(); ++i) {
        v += (i ? ", " : "") + r.vmap[i].ports.str() + " : jump " + r.vmap[i].chain;
      }
      word(v + " }");
      break;
    }
    case NftVerdict::kRejectTcpReset: word("reject with tcp reset"); break;
    case NftVerdict::kRejectIcmpx: word("reject with icmpx admin-prohibited"); break;
    case NftVerdict::kDnat:
      word(r.nat_addr.v6 ? "dnat ip6 to [" + r.nat_addr.str() + "]:" + std::to_string(r.nat_port)
                         : "dnat ip to " + r.nat_addr.str() + ":" + std::to_string(r.nat_port));
      break;
  }
  if (!r.comment.empty()) word("comment \"" + r.comment + "\"");
  return out;
}

std::string render_nft(const Policy& p, const std::vector<PortGroup>& groups) {
  const NftTableSpec t = nft_table_spec(p, groups);
  std::string out;
  out += "# amlfw: the nftables table that `amlfw apply` programs (load with nft -f)\n";
  out += "table inet " + std::string(kNftTable) + " {\n";
  for (const auto& s : t.sets) {
    append_set(s, &out);
    out += "\n";
  }
  for (size_t i = 0; i < t.chains.size(); ++i) {
    const auto& c = t.chains[i];
    out += "\tchain " + c.name + " {\n";
    if (!c.regular) out += "\t\t" + nft_chain_header(c) + "\n";  // a regular chain: reached by jumps
    for (const auto& r : c.rules) out += "\t\t" + nft_rule_text(r) + "\n";
    out += "\t}\n";
    if (i + 1 < t.chains.size()) out += "\n";
  }
  out += "}\n";
  return out;
}

}  // namespace amlfw
