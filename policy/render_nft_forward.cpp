// SPDX-License-Identifier: MIT
// The [forward] chains: the pods' traffic through the node gets the output chain's policy.
//
//   chain forward { type filter hook forward priority filter; policy accept;
//     ct state established,related accept
//     iifname "cni0" jump pods                       (one rule per interface)
//     meta nfproto ipv4 ip saddr 10.244.0.0/16 jump pods   (one rule per source)
//   }
//   chain pods { <the output chain without oif "lo" and established: dispatch, end> }
//   chain pods_dns { type nat hook prerouting priority -110; policy accept;
//     iifname "cni0" meta nfproto ipv4 ip daddr @dns4 meta l4proto { tcp, udp } th dport 53
//       counter dnat ip to 169.254.20.53:53 comment "pods-dns"
//   }
//
// Everything the node forwards that is not a pod's passes (policy accept); replies and
// connections to pods are established. "pods" ends in the end rules, so the jump always
// decides.
#include "policy/render_nft_forward.h"

#include "policy/render_nft_match.h"

#include <algorithm>

namespace amlfw {
namespace {

using nft_match::addr_eq;
using nft_match::nfproto;
NftMatch m(NftMatch::Kind k) { return nft_match::of(k); }
NftMatch iifname(const std::string& name) {
  NftMatch x = m(NftMatch::Kind::kIifname);
  x.set = name;
  return x;
}
NftMatch addr_prefix(const Prefix& pfx, bool src) {
  NftMatch x = m(NftMatch::Kind::kAddrPrefix);
  x.addr = pfx.addr;
  x.v6 = pfx.addr.v6;
  x.value = pfx.len;
  x.src = src;
  return x;
}
NftMatch dport(uint16_t port) {
  NftMatch x = m(NftMatch::Kind::kDports);
  x.ports = {PortRange{port, port}};
  return x;
}

bool only(const NftRuleSpec& r, NftMatch::Kind k) { return r.matches.size() == 1 && r.matches[0].kind == k; }

// The proxy's address when the pods can reach it (not loopback, not the wildcard).
bool pod_proxy(const Policy& p, IpAddr* addr, uint16_t* port) {
  if (!nft_parse_listen(p.dns_listen, addr, port)) return false;
  const bool loopback = addr->v6 ? addr->value == 1 : (addr->v4value() >> 24) == 127;
  return !loopback && addr->value != 0;
}

}  // namespace

std::vector<std::vector<NftMatch>> nft_pod_matches(const Policy& p) {
  std::vector<std::vector<NftMatch>> out;
  for (const auto& i : p.forward_interfaces) out.push_back({iifname(i)});
  for (const auto& s : p.forward_sources) {
    std::vector<NftMatch> ms{nfproto(s.addr.v6)};
    if (s.len > 0) ms.push_back(addr_prefix(s, true));
    out.push_back(std::move(ms));
  }
  return out;
}

void nft_add_forward_chains(const Policy& p, const NftChainSpec& output, std::vector<NftChainSpec>* chains) {
  if (!p.forward_enabled()) return;
  NftChainSpec fwd;
  fwd.name = std::string(kNftForwardChain);
  fwd.forward = true;
  NftRuleSpec est;
  est.matches = {m(NftMatch::Kind::kCtEstablished)};
  est.verdict = NftVerdict::kAccept;
  fwd.rules.push_back(est);
  for (auto& ms : nft_pod_matches(p)) {
    NftRuleSpec j;
    j.matches = std::move(ms);
    j.verdict = NftVerdict::kJump;
    j.target = std::string(kNftPodsChain);
    fwd.rules.push_back(std::move(j));
  }
  chains->push_back(std::move(fwd));

  NftChainSpec pods;
  pods.name = std::string(kNftPodsChain);
  pods.regular = true;
  for (const auto& r : output.rules) {
    if (only(r, NftMatch::Kind::kOifLo) || only(r, NftMatch::Kind::kCtEstablished)) continue;
    pods.rules.push_back(r);
  }
  chains->push_back(std::move(pods));

  IpAddr proxy;
  uint16_t proxy_port = 53;
  if (!p.forward_dns_redirect || !pod_proxy(p, &proxy, &proxy_port)) return;
  NftChainSpec nat;
  nat.name = std::string(kNftPodsDnsChain);
  nat.nat = true;
  nat.prerouting = true;
  const std::string set(proxy.v6 ? kNftDns6Set : kNftDns4Set);
  for (auto& ms : nft_pod_matches(p)) {
    // Only the proxy's family is redirected (a dnat cannot change the family).
    if (ms[0].kind == NftMatch::Kind::kNfproto && ms[0].v6 != proxy.v6) continue;
    if (ms[0].kind != NftMatch::Kind::kNfproto) ms.push_back(nfproto(proxy.v6));
    ms.push_back(nft_match::addr_in_set(proxy.v6, false, set));
    ms.push_back(m(NftMatch::Kind::kL4protoTcpUdp));
    ms.push_back(dport(p.dns_upstream_port));
    nat.rules.push_back(nft_match::dnat_to_proxy(std::move(ms), proxy, proxy_port, "pods-dns"));
  }
  chains->push_back(std::move(nat));
}

std::vector<NftRuleSpec> nft_pods_proxy_rules(const Policy& p) {
  std::vector<NftRuleSpec> out;
  IpAddr proxy;
  uint16_t proxy_port = 53;
  if (!p.forward_enabled() || !pod_proxy(p, &proxy, &proxy_port)) return out;
  for (auto& ms : nft_pod_matches(p)) {
    if (ms[0].kind == NftMatch::Kind::kNfproto && ms[0].v6 != proxy.v6) continue;
    if (ms[0].kind != NftMatch::Kind::kNfproto) ms.push_back(nfproto(proxy.v6));
    ms.push_back(addr_eq(proxy, false));
    ms.push_back(m(NftMatch::Kind::kL4protoTcpUdp));
    ms.push_back(dport(proxy_port));
    NftRuleSpec r;
    r.matches = std::move(ms);
    r.counter = true;
    r.verdict = NftVerdict::kAccept;
    r.comment = "pods-dns-proxy";
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace amlfw
