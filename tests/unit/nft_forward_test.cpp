// SPDX-License-Identifier: MIT
// [forward] in the nftables table (docs/kubernetes.md): the forward hook chain, the "pods"
// chain that holds the output chain's policy, the prerouting redirect of the pods' DNS, the
// input rule that lets pods reach the proxy, egress.local = false; and the netlink bytecode
// of the new matches (iifname, source prefix), as nft itself emits it.
#include <gtest/gtest.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <linux/netfilter.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "daemon/nft_expr.h"
#include "policy/render_nft.h"
#include "tests/unit/nft_test_util.h"

namespace amlfw {
namespace {

using testing::group;

std::vector<PortGroup> groups() {
  return {group(Direction::kEgress, Proto::kTcp, {PortRange{443, 443}}, {"203.0.113.0/24", "2001:db8:1::/48"},
                {"NR2"}, true),
          group(Direction::kEgress, Proto::kAny, {PortRange{}}, {"198.51.100.0/25"}, {"user-1"}),
          group(Direction::kIngress, Proto::kTcp, {PortRange{29876, 29877}}, {"192.0.2.128/28"}, {"IN1"})};
}

Policy pods_policy() {
  Policy p;
  p.dns_upstreams = {*IpAddr::parse("192.0.2.9"), *IpAddr::parse("2001:db8::53")};
  p.dns_listen = "192.0.2.9:10053";
  p.egress_local = false;
  p.forward_interfaces = {"cali*", "cni0"};
  p.forward_sources = {*Prefix::parse("10.240.0.0/13"), *Prefix::parse("192.0.2.8/29"),
                       *Prefix::parse("2001:db8:ffff:8::/64")};
  p.forward_dns_redirect = true;
  return p;
}

const NftChainSpec* find(const std::vector<NftChainSpec>& cs, std::string_view name) {
  for (const auto& c : cs) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::vector<std::string> texts(const NftChainSpec& c) {
  std::vector<std::string> out;
  for (const auto& r : c.rules) out.push_back(nft_rule_text(r));
  return out;
}

TEST(NftForward, ForwardChainJumpsThePodsToThePodsChain) {
  const Policy p = pods_policy();
  const auto gs = groups();
  const auto cs = nft_chain_specs(p, gs);
  const NftChainSpec* f = find(cs, kNftForwardChain);
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->forward);
  EXPECT_FALSE(f->regular || f->nat || f->input);
  EXPECT_EQ(nft_chain_header(*f), "type filter hook forward priority filter; policy accept;");
  EXPECT_EQ(texts(*f), (std::vector<std::string>{
                           "ct state established,related accept",
                           "iifname \"cali*\" jump pods",
                           "iifname \"cni0\" jump pods",
                           "meta nfproto ipv4 ip saddr 10.240.0.0/13 jump pods",
                           "meta nfproto ipv4 ip saddr 192.0.2.8/29 jump pods",
                           "meta nfproto ipv6 ip6 saddr 2001:db8:ffff:8::/64 jump pods",
                       }));
}

TEST(NftForward, PodsGetTheOutputPolicyWithoutLoopbackAndEstablished) {
  Policy p = pods_policy();
  const auto gs = groups();
  p.egress_local = true;
  const auto with_output = nft_chain_specs(p, gs);
  const NftChainSpec* out = find(with_output, kNftOutputChain);
  const NftChainSpec* pods = find(with_output, kNftPodsChain);
  ASSERT_NE(out, nullptr);
  ASSERT_NE(pods, nullptr);
  EXPECT_TRUE(pods->regular);
  std::vector<std::string> want = texts(*out);
  want.erase(std::remove_if(want.begin(), want.end(),
                            [](const std::string& t) {
                              return t == "oif \"lo\" accept" || t == "ct state established,related accept";
                            }),
             want.end());
  EXPECT_EQ(texts(*pods), want);
  EXPECT_EQ(want.size() + 2, out->rules.size());
  // The same dispatch: the pods' verdict maps jump to the output chain's dispatch chains.
  ASSERT_FALSE(pods->rules.empty());
  EXPECT_EQ(pods->rules[0].verdict, NftVerdict::kDportVmap);
  for (const auto& e : pods->rules[0].vmap) EXPECT_NE(find(with_output, e.chain), nullptr) << e.chain;
  // ... and they end like it: every packet of a pod is decided there.
  EXPECT_EQ(nft_rule_text(pods->rules.back()), "counter reject with icmpx admin-prohibited comment \"deny\"");
  // Counters of "pods" are reported under the forward hook.
  EXPECT_EQ(nft_hook_chain_of(kNftPodsChain), kNftForwardChain);

  // Audit mode reaches the pods too.
  p.mode = Mode::kAudit;
  const auto audit = nft_chain_specs(p, gs);
  EXPECT_EQ(nft_rule_text(find(audit, kNftPodsChain)->rules.back()), "counter accept comment \"audit\"");
}

TEST(NftForward, LocalFalseDropsTheOutputChainButKeepsItsDispatch) {
  const Policy p = pods_policy();
  const auto gs = groups();
  const auto cs = nft_chain_specs(p, gs);
  EXPECT_EQ(find(cs, kNftOutputChain), nullptr);
  const NftChainSpec* pods = find(cs, kNftPodsChain);
  ASSERT_NE(pods, nullptr);
  for (const auto& r : pods->rules) {
    for (const auto& e : r.vmap) EXPECT_NE(find(cs, e.chain), nullptr) << e.chain;
  }
  EXPECT_NE(find(cs, nft_group_chain_name("e_tcp_443")), nullptr);
  // Without pods, local = false cannot leave the node unfiltered by accident (the config
  // refuses it; the renderer keeps the output chain).
  Policy q = p;
  q.forward_interfaces.clear();
  q.forward_sources.clear();
  const auto cq = nft_chain_specs(q, gs);
  EXPECT_NE(find(cq, kNftOutputChain), nullptr);
  EXPECT_EQ(find(cq, kNftForwardChain), nullptr);
  EXPECT_EQ(find(cq, kNftPodsChain), nullptr);
  EXPECT_EQ(find(cq, kNftPodsDnsChain), nullptr);
}

TEST(NftForward, PodsDnsRedirectsTheirQueriesForTheResolversToTheProxy) {
  Policy p = pods_policy();
  const auto gs = groups();
  p.dns_upstream_port = 5353;
  const auto cs = nft_chain_specs(p, gs);
  const NftChainSpec* nat = find(cs, kNftPodsDnsChain);
  ASSERT_NE(nat, nullptr);
  EXPECT_TRUE(nat->nat && nat->prerouting);
  EXPECT_EQ(nft_chain_header(*nat), "type nat hook prerouting priority -110; policy accept;");
  // IPv4 proxy: the IPv6 source is not redirected (a dnat keeps the family).
  const std::string tail = " ip daddr @dns4 meta l4proto { tcp, udp } th dport 5353 counter dnat ip to 192.0.2.9:10053 "
                           "comment \"pods-dns\"";
  EXPECT_EQ(texts(*nat), (std::vector<std::string>{
                             "iifname \"cali*\" meta nfproto ipv4" + tail,
                             "iifname \"cni0\" meta nfproto ipv4" + tail,
                             "meta nfproto ipv4 ip saddr 10.240.0.0/13" + tail,
                             "meta nfproto ipv4 ip saddr 192.0.2.8/29" + tail,
                         }));
  // The table text holds the chain with its header, as nft -f takes it.
  const std::string t = render_nft(p, gs);
  EXPECT_NE(t.find("\tchain pods_dns {\n\t\ttype nat hook prerouting priority -110; policy accept;\n"), std::string::npos);
  EXPECT_NE(t.find("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"),
            std::string::npos);

  // No redirect: without dns_redirect, or with a proxy the pods cannot reach.
  p.forward_dns_redirect = false;
  EXPECT_EQ(find(nft_chain_specs(p, gs), kNftPodsDnsChain), nullptr);
  p.forward_dns_redirect = true;
  p.dns_listen = "127.0.0.1:53";
  EXPECT_EQ(find(nft_chain_specs(p, gs), kNftPodsDnsChain), nullptr);
  // An IPv6 proxy redirects the IPv6 pods only.
  p.dns_listen = "[2001:db8:ffff:8::1]:53";
  const auto c6 = nft_chain_specs(p, gs);
  EXPECT_EQ(texts(*find(c6, kNftPodsDnsChain)),
            (std::vector<std::string>{
                "iifname \"cali*\" meta nfproto ipv6 ip6 daddr @dns6 meta l4proto { tcp, udp } th dport 5353 counter "
                "dnat ip6 to [2001:db8:ffff:8::1]:53 comment \"pods-dns\"",
                "iifname \"cni0\" meta nfproto ipv6 ip6 daddr @dns6 meta l4proto { tcp, udp } th dport 5353 counter "
                "dnat ip6 to [2001:db8:ffff:8::1]:53 comment \"pods-dns\"",
                "meta nfproto ipv6 ip6 saddr 2001:db8:ffff:8::/64 ip6 daddr @dns6 meta l4proto { tcp, udp } th dport "
                "5353 counter dnat ip6 to [2001:db8:ffff:8::1]:53 comment \"pods-dns\"",
            }));
}

TEST(NftForward, InboundEnforcedLetsThePodsReachTheProxy) {
  Policy p = pods_policy();
  const auto gs = groups();
  p.inbound_enforce = true;
  const auto cs = nft_chain_specs(p, gs);
  const NftChainSpec* in = find(cs, kNftInputChain);
  ASSERT_NE(in, nullptr);
  // The input dispatch sends port 10053 (TCP and UDP) to a chain with the pods' rules.
  std::vector<std::string> found;
  for (const auto& r : in->rules) {
    for (const auto& e : r.vmap) {
      if (e.ports == PortRange{10053, 10053}) {
        for (const auto& t : texts(*find(cs, e.chain))) found.push_back(t);
      }
    }
  }
  const std::string tail = " ip daddr 192.0.2.9 meta l4proto { tcp, udp } th dport 10053 counter accept comment "
                           "\"pods-dns-proxy\"";
  const std::vector<std::string> want = {"iifname \"cali*\" meta nfproto ipv4" + tail,
                                         "iifname \"cni0\" meta nfproto ipv4" + tail,
                                         "meta nfproto ipv4 ip saddr 10.240.0.0/13" + tail,
                                         "meta nfproto ipv4 ip saddr 192.0.2.8/29" + tail};
  std::vector<std::string> both = want;
  both.insert(both.end(), want.begin(), want.end());  // once for TCP, once for UDP
  EXPECT_EQ(found, both);
  // Not without pods, nor for a loopback proxy.
  p.dns_listen = "127.0.0.1:10053";
  for (const auto& c : nft_chain_specs(p, gs)) {
    for (const auto& t : texts(c)) EXPECT_EQ(t.find("pods-dns-proxy"), std::string::npos) << t;
  }
}

TEST(NftForward, NothingWithoutForward) {
  Policy p;
  p.dns_upstreams = {*IpAddr::parse("192.0.2.53")};
  const auto gs = groups();
  const std::string t = render_nft(p, gs);
  EXPECT_EQ(t.find("hook forward"), std::string::npos);
  EXPECT_EQ(t.find("prerouting"), std::string::npos);
  EXPECT_EQ(t.find("chain pods"), std::string::npos);
  EXPECT_EQ(t.find("iifname"), std::string::npos);
}

// ---- bytecode ------------------------------------------------------------------------------

struct Expr {
  std::string name;
  std::vector<uint8_t> data;  // cmp data / bitwise mask
  uint32_t offset = 0, len = 0;  // payload
};

std::vector<Expr> exprs(const NftRuleSpec& spec) {
  auto r = nft_build_rule("forward", spec, [](const NftAnonSet&) { return 0u; });
  std::vector<Expr> out;
  nftnl_expr_iter* it = nftnl_expr_iter_create(r.get());
  for (nftnl_expr* e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it)) {
    Expr x;
    x.name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
    uint32_t len = 0;
    const void* d = nullptr;
    if (x.name == "cmp") d = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
    if (x.name == "bitwise") d = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &len);
    if (d != nullptr) x.data.assign(static_cast<const uint8_t*>(d), static_cast<const uint8_t*>(d) + len);
    if (x.name == "payload") {
      x.offset = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET);
      x.len = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN);
    }
    out.push_back(std::move(x));
  }
  nftnl_expr_iter_destroy(it);
  return out;
}

NftRuleSpec with(NftMatch m) {
  NftRuleSpec r;
  r.matches = {std::move(m)};
  r.verdict = NftVerdict::kJump;
  r.target = "pods";
  return r;
}
NftMatch iif(const char* name) {
  NftMatch m;
  m.kind = NftMatch::Kind::kIifname;
  m.set = name;
  return m;
}
NftMatch src(const char* cidr) {
  const Prefix p = *Prefix::parse(cidr);
  NftMatch m;
  m.kind = NftMatch::Kind::kAddrPrefix;
  m.addr = p.addr;
  m.v6 = p.addr.v6;
  m.value = p.len;
  m.src = true;
  return m;
}
std::vector<uint8_t> bytes(std::initializer_list<int> v) {
  std::vector<uint8_t> out;
  for (int x : v) out.push_back(static_cast<uint8_t>(x));
  return out;
}

TEST(NftForwardBytecode, IifnameExactComparesSixteenBytesAPrefixItsLetters) {
  // nft: [ meta load iifname => reg 1 ] [ cmp eq reg 1 0x30696e63 0x00000000 0x00000000 0x00000000 ]
  auto e = exprs(with(iif("cni0")));
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].name, "meta");
  EXPECT_EQ(e[1].name, "cmp");
  EXPECT_EQ(e[1].data, bytes({'c', 'n', 'i', '0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(e[2].name, "immediate");
  // nft: [ cmp eq reg 1 0x696c6163 ]: "cali*" compares "cali" only.
  e = exprs(with(iif("cali*")));
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[1].data, bytes({'c', 'a', 'l', 'i'}));
}

TEST(NftForwardBytecode, SourcePrefixesAsNftBuildsThem) {
  // /16: [ payload load 2b @ network header + 12 ] [ cmp eq 0x0000f40a ]
  auto e = exprs(with(src("10.244.0.0/16")));
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].name, "payload");
  EXPECT_EQ(e[0].offset, 12u);
  EXPECT_EQ(e[0].len, 2u);
  EXPECT_EQ(e[1].data, bytes({10, 244}));
  // /13: [ payload load 4b @ network header + 12 ] [ bitwise & 0x0000f8ff ] [ cmp eq 0x0000f00a ]
  e = exprs(with(src("10.240.0.0/13")));
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].len, 4u);
  EXPECT_EQ(e[1].name, "bitwise");
  EXPECT_EQ(e[1].data, bytes({0xff, 0xf8, 0, 0}));
  EXPECT_EQ(e[2].data, bytes({10, 240, 0, 0}));
  // IPv6 /56: [ payload load 7b @ network header + 8 ]
  e = exprs(with(src("fd00:10:244::/56")));
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].offset, 8u);
  EXPECT_EQ(e[0].len, 7u);
  EXPECT_EQ(e[1].data, bytes({0xfd, 0, 0, 0x10, 0x02, 0x44, 0}));
  // IPv6 /57: the whole address, masked.
  e = exprs(with(src("fd00:10:244::/57")));
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].len, 16u);
  EXPECT_EQ(e[1].data, bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(NftForwardBytecode, ChainsHookWhereTheySay) {
  const Policy p = pods_policy();
  const auto gs = groups();
  const auto cs = nft_chain_specs(p, gs);
  auto fwd = nft_build_chain(*find(cs, kNftForwardChain));
  EXPECT_EQ(nftnl_chain_get_u32(fwd.get(), NFTNL_CHAIN_HOOKNUM), static_cast<uint32_t>(NF_INET_FORWARD));
  EXPECT_EQ(nftnl_chain_get_s32(fwd.get(), NFTNL_CHAIN_PRIO), 0);
  EXPECT_EQ(nftnl_chain_get_u32(fwd.get(), NFTNL_CHAIN_POLICY), static_cast<uint32_t>(NF_ACCEPT));
  EXPECT_STREQ(nftnl_chain_get_str(fwd.get(), NFTNL_CHAIN_TYPE), "filter");
  auto nat = nft_build_chain(*find(cs, kNftPodsDnsChain));
  EXPECT_EQ(nftnl_chain_get_u32(nat.get(), NFTNL_CHAIN_HOOKNUM), static_cast<uint32_t>(NF_INET_PRE_ROUTING));
  EXPECT_EQ(nftnl_chain_get_s32(nat.get(), NFTNL_CHAIN_PRIO), kNftPodsDnsPriority);
  EXPECT_EQ(nftnl_chain_get_u32(nat.get(), NFTNL_CHAIN_POLICY), static_cast<uint32_t>(NF_ACCEPT));
  EXPECT_STREQ(nftnl_chain_get_str(nat.get(), NFTNL_CHAIN_TYPE), "nat");
  auto pods = nft_build_chain(*find(cs, kNftPodsChain));
  EXPECT_FALSE(nftnl_chain_is_set(pods.get(), NFTNL_CHAIN_HOOKNUM));
}

}  // namespace
}  // namespace amlfw
