// SPDX-License-Identifier: MIT
// render_nft and the table description it shares with the netlink backend.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/render_nft.h"
#include "tests/unit/nft_test_util.h"

namespace amlfw {
namespace {

using testing::group;

Policy base_policy() {
  Policy p;
  p.dns_upstreams = {*IpAddr::parse("192.0.2.53"), *IpAddr::parse("2001:db8::53")};
  return p;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\t" + line + "\n") != std::string::npos;
}

TEST(RenderNft, EgressTableWithSetsRulesAndEnd) {
  Policy p = base_policy();
  std::vector<PortGroup> groups = {
      group(Direction::kEgress, Proto::kTcp, {PortRange{443, 443}}, {"203.0.113.0/24", "2001:db8:1::/48"},
            {"NR2", "NR3"}, true),
      group(Direction::kEgress, Proto::kAny, {PortRange{}}, {"198.51.100.0/25"}, {"user-1"}),
  };
  const std::string t = render_nft(p, groups);
  EXPECT_NE(t.find("table inet amlfw {"), std::string::npos);
  EXPECT_TRUE(has_line(t, "set p4_e_tcp_443 {"));
  EXPECT_TRUE(has_line(t, "set n6_e_tcp_443 {"));
  EXPECT_TRUE(has_line(t, "\telements = { 203.0.113.0/24 }"));
  EXPECT_TRUE(has_line(t, "\telements = { 2001:db8:1::/48 }"));
  EXPECT_TRUE(has_line(t, "\tflags timeout"));
  EXPECT_TRUE(has_line(t, "\ttype filter hook output priority filter; policy drop;"));
  EXPECT_TRUE(has_line(t, "\toif \"lo\" accept"));
  EXPECT_TRUE(has_line(t, "\tct state established,related accept"));
  // The output chain dispatches on protocol and port; the group chains hold the lookups.
  EXPECT_TRUE(has_line(t, "\tmeta l4proto tcp th dport vmap { 0-52 : jump g_e_any_1-65535, 53 : jump out_tcp_53, "
                          "54-79 : jump g_e_any_1-65535, 80 : jump out_tcp_80, 81-442 : jump g_e_any_1-65535, "
                          "443 : jump out_tcp_443, 444-32525 : jump g_e_any_1-65535, 32526 : jump out_tcp_32526, "
                          "32527-65535 : jump g_e_any_1-65535 }"));
  EXPECT_TRUE(has_line(t, "\tmeta l4proto udp th dport vmap { 0-52 : jump g_e_any_1-65535, 53 : jump out_udp_53, "
                          "54-66 : jump g_e_any_1-65535, 67 : jump out_udp_67, 68-546 : jump g_e_any_1-65535, "
                          "547 : jump out_udp_547, 548-65535 : jump g_e_any_1-65535 }"));
  EXPECT_NE(t.find("\tchain out_tcp_443 {\n\t\tjump g_e_any_1-65535\n\t\tjump g_e_tcp_443\n\t}\n"), std::string::npos);
  EXPECT_NE(t.find("\tchain g_e_tcp_443 {\n"
                   "\t\tmeta nfproto ipv4 ip daddr @p4_e_tcp_443 counter accept comment \"NR2,NR3\"\n"
                   "\t\tmeta nfproto ipv4 ip daddr @n4_e_tcp_443 counter accept comment \"NR2,NR3\"\n"
                   "\t\tmeta nfproto ipv6 ip6 daddr @p6_e_tcp_443 counter accept comment \"NR2,NR3\"\n"
                   "\t\tmeta nfproto ipv6 ip6 daddr @n6_e_tcp_443 counter accept comment \"NR2,NR3\"\n\t}\n"),
            std::string::npos);
  // All ports, any protocol: port 0 too, TCP and UDP.
  EXPECT_TRUE(has_line(t, "\tmeta nfproto ipv4 ip daddr @p4_e_any_1-65535 counter accept comment \"user-1\""));
  // Base rules keep their own matches inside the dispatch chains, before the groups.
  EXPECT_NE(t.find("\tchain out_udp_53 {\n"
                   "\t\tmeta nfproto ipv4 ip daddr 168.63.129.16 meta l4proto { tcp, udp } th dport 53 counter accept "
                   "comment \"platform-wireserver-dns\"\n"
                   "\t\tmeta nfproto ipv4 ip daddr @dns4 meta l4proto { tcp, udp } th dport 53 counter accept "
                   "comment \"dns\"\n"
                   "\t\tmeta nfproto ipv6 ip6 daddr @dns6 meta l4proto { tcp, udp } th dport 53 counter accept "
                   "comment \"dns\"\n"
                   "\t\tjump g_e_any_1-65535\n\t}\n"),
            std::string::npos);
  EXPECT_TRUE(has_line(t, "\tlimit rate 10/second log prefix \"amlfw deny: \" group 4269 snaplen 128"));
  EXPECT_TRUE(has_line(t, "\tmeta l4proto tcp counter reject with tcp reset comment \"deny\""));
  EXPECT_TRUE(has_line(t, "\tcounter reject with icmpx admin-prohibited comment \"deny\""));
  EXPECT_NE(t.find("168.63.129.16"), std::string::npos);
  EXPECT_EQ(t.find("chain input"), std::string::npos);  // inbound not enforced
  // Order in the output chain: established, loopback, the dispatch, ICMPv6 ND, the end.
  EXPECT_NE(t.find("\tchain output {\n\t\ttype filter hook output priority filter; policy drop;\n"
                   "\t\tct state established,related accept\n\t\toif \"lo\" accept\n\t\tmeta l4proto tcp th dport vmap"),
            std::string::npos);
  EXPECT_LT(t.find("udp th dport vmap"), t.find("comment \"icmpv6-nd\""));
  EXPECT_LT(t.find("comment \"icmpv6-nd\""), t.find("limit rate"));
  EXPECT_LT(t.find("limit rate"), t.find("chain out_tcp_53"));  // hook chains first, then the regular ones
}

TEST(RenderNft, AuditModeLogsAndAccepts) {
  Policy p = base_policy();
  p.mode = Mode::kAudit;
  p.platform_azure = false;
  const std::string t = render_nft(p, {});
  EXPECT_TRUE(has_line(t, "\tlimit rate 10/second log prefix \"amlfw audit: \" group 4269 snaplen 128"));
  EXPECT_TRUE(has_line(t, "\tcounter accept comment \"audit\""));
  EXPECT_EQ(t.find("reject"), std::string::npos);
  EXPECT_EQ(t.find("168.63.129.16"), std::string::npos);
}

TEST(RenderNft, InboundChainOnlyWhenEnforced) {
  Policy p = base_policy();
  std::vector<PortGroup> groups = {
      group(Direction::kIngress, Proto::kTcp, {PortRange{29876, 29877}}, {"198.51.100.0/24"}, {"IN1"})};
  std::string t = render_nft(p, groups);
  EXPECT_EQ(t.find("chain input"), std::string::npos);
  EXPECT_EQ(t.find("p4_i_tcp_29876-29877"), std::string::npos);  // not programmed at all
  p.inbound_enforce = true;
  t = render_nft(p, groups);
  EXPECT_NE(t.find("chain input {"), std::string::npos);
  EXPECT_TRUE(has_line(t, "\ttype filter hook input priority filter; policy drop;"));
  EXPECT_TRUE(has_line(t, "\tiif \"lo\" accept"));
  EXPECT_TRUE(has_line(t, "\tmeta l4proto tcp th dport vmap { 29876-29877 : jump g_i_tcp_29876-29877 }"));
  EXPECT_TRUE(has_line(t, "\tmeta l4proto udp th dport vmap { 68 : jump in_udp_68, 546 : jump in_udp_546 }"));
  EXPECT_TRUE(has_line(t, "\tmeta nfproto ipv4 ip saddr @p4_i_tcp_29876-29877 counter accept comment \"IN1\""));
  EXPECT_TRUE(has_line(t, "\tmeta l4proto icmp icmp type echo-request counter accept comment \"ping\""));
}

TEST(RenderNft, NotEnforcedGroupsAreLeftOut) {
  Policy p = base_policy();
  auto g = group(Direction::kEgress, Proto::kUdp, {PortRange{123, 123}}, {"192.0.2.1/32"}, {"X1"});
  g.enforced = false;
  EXPECT_EQ(render_nft(p, {g}).find("e_udp_123"), std::string::npos);
}

TEST(RenderNft, RangeText) {
  auto r4 = [](const char* a, const char* b) {
    return nft_range4_text({IpAddr::parse(a)->v4value(), IpAddr::parse(b)->v4value()});
  };
  EXPECT_EQ(r4("192.0.2.0", "192.0.2.255"), "192.0.2.0/24");
  EXPECT_EQ(r4("192.0.2.7", "192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(r4("192.0.2.1", "192.0.2.2"), "192.0.2.1-192.0.2.2");
  EXPECT_EQ(r4("192.0.2.0", "192.0.3.127"), "192.0.2.0-192.0.3.127");
  EXPECT_EQ(r4("0.0.0.0", "255.255.255.255"), "0.0.0.0/0");
  EXPECT_EQ(nft_range6_text({IpAddr::parse("2001:db8::")->value, IpAddr::parse("2001:db8::ffff:ffff")->value}),
            "2001:db8::/96");
  EXPECT_EQ(nft_range6_text({0, ~u128{0}}), "::/0");
}

TEST(RenderNft, CommentIsCutWithACount) {
  PortGroup g;
  for (int i = 0; i < 60; ++i) g.rule_ids.push_back("ROW" + std::to_string(i));
  std::string c = nft_group_comment(g);
  EXPECT_LE(c.size(), kNftCommentMax);
  EXPECT_EQ(c.rfind("ROW0,ROW1,", 0), 0u);
  auto plus = c.rfind(",+");
  ASSERT_NE(plus, std::string::npos);
  const int shown = static_cast<int>(std::count(c.begin(), c.begin() + static_cast<long>(plus), ',')) + 1;
  EXPECT_EQ(std::stoi(c.substr(plus + 2)), 60 - shown);
  g.rule_ids = {"a\"b", "c d"};
  EXPECT_EQ(nft_group_comment(g), "a_b,c d");  // never breaks the quoting
}

TEST(RenderNft, SpecPointsIntoGroupsAndListsSetsInOrder) {
  Policy p = base_policy();
  std::vector<PortGroup> groups = {
      group(Direction::kEgress, Proto::kTcp, {PortRange{443, 443}}, {"203.0.113.0/24"}, {"NR2"}, true)};
  NftTableSpec t = nft_table_spec(p, groups);
  std::vector<std::string> names;
  for (const auto& s : t.sets) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"dns4", "dns6", "p4_e_tcp_443", "p6_e_tcp_443", "n4_e_tcp_443",
                                             "n6_e_tcp_443"}));
  EXPECT_EQ(t.sets[2].prefixes, &groups[0].prefixes);
  EXPECT_EQ(t.sets[0].addrs, (std::vector<IpAddr>{*IpAddr::parse("192.0.2.53")}));
  std::vector<std::string> chains;
  for (const auto& c : t.chains) chains.push_back(c.name + (c.regular ? "" : "*"));
  // Hook chains first, then the dispatch chains (TCP, UDP), then the group chains.
  EXPECT_EQ(chains, (std::vector<std::string>{"output*", "out_tcp_53", "out_tcp_80", "out_tcp_32526", "out_udp_53",
                                              "out_udp_67", "out_udp_547", "g_e_tcp_443"}));
}

}  // namespace
}  // namespace amlfw

namespace amlfw {
namespace {

TEST(RenderNft, ParseListen) {
  IpAddr a;
  uint16_t port = 0;
  ASSERT_TRUE(nft_parse_listen("127.0.0.1:53", &a, &port));
  EXPECT_EQ(a, *IpAddr::parse("127.0.0.1"));
  EXPECT_EQ(port, 53);
  ASSERT_TRUE(nft_parse_listen("[::1]:5353", &a, &port));
  EXPECT_EQ(a, *IpAddr::parse("::1"));
  EXPECT_EQ(port, 5353);
  ASSERT_TRUE(nft_parse_listen("::1", &a, &port));
  EXPECT_EQ(port, 53);
  EXPECT_FALSE(nft_parse_listen("127.0.0.1:0", &a, &port));
  EXPECT_FALSE(nft_parse_listen("127.0.0.1:70000", &a, &port));
  EXPECT_FALSE(nft_parse_listen("localhost:53", &a, &port));
  EXPECT_FALSE(nft_parse_listen("[::1", &a, &port));
}

TEST(RenderNft, DnsRedirectAddsNatChainAndProxyAccept) {
  Policy p = base_policy();
  p.dns_listen = "127.0.0.1:53";
  std::string t = render_nft(p, {});
  EXPECT_EQ(t.find("dns_redirect"), std::string::npos);  // off by default
  p.dns_redirect = true;
  t = render_nft(p, {});
  EXPECT_NE(t.find("chain dns_redirect {"), std::string::npos);
  EXPECT_TRUE(has_line(t, "\ttype nat hook output priority -100; policy accept;"));
  EXPECT_TRUE(has_line(t, "\tmeta nfproto ipv4 ip daddr != 127.0.0.0/8 meta mark != 0x616d6c66 meta l4proto { tcp, udp } "
                          "th dport 53 counter dnat ip to 127.0.0.1:53 comment \"dns-redirect\""));
  EXPECT_TRUE(has_line(t, "\tmeta nfproto ipv4 ip daddr 127.0.0.1 meta l4proto { tcp, udp } th dport 53 counter accept "
                          "comment \"dns-proxy\""));
  p.dns_listen = "[::1]:5353";
  t = render_nft(p, {});
  EXPECT_NE(t.find("ip6 daddr != ::1 meta mark"), std::string::npos);
  EXPECT_NE(t.find("dnat ip6 to [::1]:5353"), std::string::npos);
}

}  // namespace
}  // namespace amlfw

namespace amlfw {
namespace {

TEST(RenderNft, LongGroupNamesAreShortenedStably) {
  std::vector<PortRange> ports;
  for (uint16_t p = 1000; p < 1300; p += 2) ports.push_back(PortRange{p, p});
  const std::string g = port_group_name(Direction::kEgress, Proto::kTcp, ports);
  ASSERT_GT(g.size(), 255u);
  const std::string n = nft_prefix_set_name(g, false);
  EXPECT_LE(n.size(), 255u);
  EXPECT_EQ(n, nft_prefix_set_name(g, false));               // deterministic
  EXPECT_EQ(n.rfind("p4_e_tcp_1000_1002_", 0), 0u);
  ports.back().hi = ports.back().lo = 1400;                  // another group, another name
  EXPECT_NE(nft_prefix_set_name(port_group_name(Direction::kEgress, Proto::kTcp, ports), false), n);
  EXPECT_EQ(nft_prefix_set_name("e_tcp_443", true), "p6_e_tcp_443");  // short names unchanged
}

}  // namespace
}  // namespace amlfw
