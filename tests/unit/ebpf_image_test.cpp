// SPDX-License-Identifier: MIT
// The eBPF backend's map contents without a kernel: group descriptors and masks, the port
// table, LPM entries carrying every containing group (checked against PrefixSet::contains
// on random policies), the entries the backend adds (resolvers, proxy, platform), limits,
// learned-bit renumbering, and the cgroup2 mount found in mountinfo text.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "daemon/ebpf_image.h"
#include "daemon/ebpf_sys.h"

namespace amlfw {
namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }
Prefix pfx(const char* s) { return *Prefix::parse(s); }

PortGroup group(std::string name, Direction d, Proto p, std::vector<PortRange> ports, std::vector<const char*> cidrs,
                bool names = false) {
  PortGroup g;
  g.name = std::move(name);
  g.direction = d;
  g.proto = p;
  g.ports = std::move(ports);
  for (const char* c : cidrs) g.prefixes.add(pfx(c));
  g.prefixes.normalize();
  g.has_names = names;
  return g;
}

Policy base_policy() {
  Policy p;
  p.platform_azure = false;
  p.dns_upstreams = {};
  p.dns_listen = "127.0.0.1:53";
  return p;
}

// The bits the programs compute for an address: the longest LPM match's value.
uint64_t lpm_bits(const EbpfImage& img, const IpAddr& a) {
  int best = -1;
  uint64_t bits = 0;
  uint8_t key[16];
  a.to_bytes(key);
  auto matches = [&](const uint8_t* addr, uint32_t len) {
    for (uint32_t b = 0; b < len; ++b) {
      int byte = static_cast<int>(b / 8), bit = 7 - static_cast<int>(b % 8);
      if (((addr[byte] >> bit) & 1) != ((key[byte] >> bit) & 1)) return false;
    }
    return true;
  };
  if (a.v6) {
    for (const auto& e : img.lpm6) {
      if (static_cast<int>(e.key.prefixlen) > best && matches(e.key.addr, e.key.prefixlen)) {
        best = static_cast<int>(e.key.prefixlen);
        bits = e.groups;
      }
    }
  } else {
    for (const auto& e : img.lpm4) {
      if (static_cast<int>(e.key.prefixlen) > best && matches(e.key.addr, e.key.prefixlen)) {
        best = static_cast<int>(e.key.prefixlen);
        bits = e.groups;
      }
    }
  }
  return bits;
}

uint64_t port_bits(const EbpfImage& img, Proto p, uint16_t port) {
  return img.ports[(p == Proto::kUdp ? AMLFW_PORTS_PER_PROTO : 0) + port];
}

int bit_of(const EbpfImage& img, std::string_view name) {
  for (size_t i = 0; i < img.group_names.size(); ++i) {
    if (img.group_names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

TEST(EbpfImage, GroupsMasksAndPortTable) {
  Policy p = base_policy();
  p.mode = Mode::kAudit;
  std::vector<PortGroup> gs = {
      group("e_tcp_443", Direction::kEgress, Proto::kTcp, {{443, 443}}, {"198.51.100.0/24"}, true),
      group("e_udp_5831", Direction::kEgress, Proto::kUdp, {{5831, 5831}}, {"203.0.113.0/24"}),
      group("e_any_1000-1002", Direction::kEgress, Proto::kAny, {{1000, 1002}}, {"203.0.113.0/25"}),
      group("i_tcp_22", Direction::kIngress, Proto::kTcp, {{22, 22}}, {"192.0.2.0/24"}),
  };
  auto img = build_ebpf_image(p, gs);
  ASSERT_TRUE(img.ok()) << img.error().message;
  // inbound.enforce = false: the ingress group is not programmed.
  ASSERT_EQ(img->conf.ngroups, 3u);
  EXPECT_EQ(img->group_names, (std::vector<std::string>{"e_any_1000-1002", "e_tcp_443", "e_udp_5831"}));
  EXPECT_EQ(img->conf.flags, AMLFW_F_AUDIT);
  EXPECT_EQ(img->conf.egress_mask, 0b111u);
  EXPECT_EQ(img->conf.ingress_mask, 0u);
  EXPECT_EQ(img->conf.names_mask, 0b010u);
  EXPECT_EQ(img->conf.abi, static_cast<uint32_t>(AMLFW_ABI_VERSION));
  EXPECT_EQ(img->conf.groups[1].nports, 1);
  EXPECT_EQ(img->conf.groups[1].ports[0].lo, 443);
  EXPECT_EQ(img->conf.groups[1].name_hash, ebpf_name_hash("e_tcp_443"));
  EXPECT_EQ(img->conf.groups[0].proto, AMLFW_PROTO_ANY);

  EXPECT_EQ(port_bits(*img, Proto::kTcp, 443), 0b010u);
  EXPECT_EQ(port_bits(*img, Proto::kUdp, 443), 0u);
  EXPECT_EQ(port_bits(*img, Proto::kUdp, 5831), 0b100u);
  EXPECT_EQ(port_bits(*img, Proto::kTcp, 5831), 0u);
  EXPECT_EQ(port_bits(*img, Proto::kTcp, 1001), 0b001u);
  EXPECT_EQ(port_bits(*img, Proto::kUdp, 1002), 0b001u);
  EXPECT_EQ(port_bits(*img, Proto::kUdp, 1003), 0u);
  EXPECT_EQ(port_bits(*img, Proto::kTcp, 0), 0u);

  p.inbound_enforce = true;
  auto in = build_ebpf_image(p, gs);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->conf.ngroups, 4u);
  EXPECT_EQ(in->conf.flags, AMLFW_F_AUDIT | AMLFW_F_INBOUND);
  EXPECT_EQ(in->conf.ingress_mask, uint64_t{1} << bit_of(*in, "i_tcp_22"));
}

TEST(EbpfImage, NestedPrefixesCarryEveryContainingGroup) {
  Policy p = base_policy();
  std::vector<PortGroup> gs = {
      group("a", Direction::kEgress, Proto::kTcp, {{443, 443}}, {"198.51.100.0/24", "2001:db8::/32"}),
      group("b", Direction::kEgress, Proto::kTcp, {{80, 80}}, {"198.51.100.128/25", "2001:db8:1::/48"}),
      group("c", Direction::kEgress, Proto::kTcp, {{22, 22}}, {"198.51.100.200/32"}),
  };
  auto img = build_ebpf_image(p, gs);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->lpm4.size(), 3u);
  EXPECT_EQ(lpm_bits(*img, ip("198.51.100.1")), 0b001u);
  EXPECT_EQ(lpm_bits(*img, ip("198.51.100.129")), 0b011u);
  EXPECT_EQ(lpm_bits(*img, ip("198.51.100.200")), 0b111u);
  EXPECT_EQ(lpm_bits(*img, ip("198.51.101.1")), 0u);
  EXPECT_EQ(lpm_bits(*img, ip("2001:db8:1::5")), 0b011u);
  EXPECT_EQ(lpm_bits(*img, ip("2001:db8:2::5")), 0b001u);
  EXPECT_EQ(lpm_bits(*img, ip("2001:db9::5")), 0u);
}

// Random groups of random prefixes (overlapping, nested, adjacent): for random addresses the
// longest match carries exactly the groups whose PrefixSet contains the address.
TEST(EbpfImage, LongestMatchEqualsContainmentOnRandomPolicies) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    Policy p = base_policy();
    std::vector<PortGroup> gs;
    const int ngroups = 1 + static_cast<int>(rng() % 8);
    for (int g = 0; g < ngroups; ++g) {
      PortGroup pg;
      pg.name = "g" + std::to_string(g);
      pg.ports = {{static_cast<uint16_t>(1000 + g), static_cast<uint16_t>(1000 + g)}};
      const int n = 1 + static_cast<int>(rng() % 12);
      for (int i = 0; i < n; ++i) {
        // Inside 198.51.100.0/22 so that prefixes collide often.
        uint8_t len = static_cast<uint8_t>(22 + rng() % 11);
        uint32_t a = 0xC6336400u | static_cast<uint32_t>(rng() & 0x3ff);
        a &= len == 0 ? 0 : ~uint32_t{0} << (32 - len);
        pg.prefixes.add(Prefix{IpAddr::v4addr(a), len});
        u128 b = (u128{0x20010db8} << 96) | (static_cast<u128>(rng() & 0xffff) << 80);
        uint8_t len6 = static_cast<uint8_t>(32 + rng() % 17);
        b &= ~u128{0} << (128 - len6);
        pg.prefixes.add(Prefix{IpAddr::v6addr(b), len6});
      }
      pg.prefixes.normalize();
      gs.push_back(std::move(pg));
    }
    auto img = build_ebpf_image(p, gs);
    ASSERT_TRUE(img.ok());
    for (int t = 0; t < 400; ++t) {
      IpAddr a = IpAddr::v4addr(0xC6336400u | static_cast<uint32_t>(rng() & 0x7ff));
      IpAddr b = IpAddr::v6addr((u128{0x20010db8} << 96) | (static_cast<u128>(rng() & 0x1ffff) << 79));
      for (const IpAddr& x : {a, b}) {
        uint64_t want = 0;
        for (size_t i = 0; i < img->group_names.size(); ++i) {
          const PortGroup* g = nullptr;
          for (const auto& pg : gs) {
            if (pg.name == img->group_names[i]) g = &pg;
          }
          ASSERT_NE(g, nullptr);
          if (g->prefixes.contains(x)) want |= uint64_t{1} << i;
        }
        ASSERT_EQ(lpm_bits(*img, x), want) << "round " << round << " address " << x.str();
      }
    }
  }
}

TEST(EbpfImage, DnsRedirectNamesTheProxy) {
  Policy p = base_policy();
  p.dns_listen = "127.0.0.1:10053";
  auto off = build_ebpf_image(p, {});
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->conf.flags & AMLFW_F_DNS_REDIRECT, 0u);
  EXPECT_EQ(off->conf.redirect_family, 0);

  p.dns_redirect = true;
  auto v4 = build_ebpf_image(p, {});
  ASSERT_TRUE(v4.ok());
  EXPECT_NE(v4->conf.flags & AMLFW_F_DNS_REDIRECT, 0u);
  EXPECT_EQ(v4->conf.redirect_family, 4);
  EXPECT_EQ(v4->conf.redirect_port, 10053);
  EXPECT_EQ(IpAddr::from_bytes(false, v4->conf.redirect_addr), ip("127.0.0.1"));
  EXPECT_FALSE(v4->same_content(*off));  // a redirect change is a new generation

  p.dns_listen = "[::1]:53";
  auto v6 = build_ebpf_image(p, {});
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->conf.redirect_family, 6);
  EXPECT_EQ(v6->conf.redirect_port, 53);
  EXPECT_EQ(IpAddr::from_bytes(true, v6->conf.redirect_addr), ip("::1"));

  // A wildcard listen address is reached through loopback.
  p.dns_listen = "0.0.0.0:5300";
  auto any = build_ebpf_image(p, {});
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->conf.redirect_family, 4);
  EXPECT_EQ(IpAddr::from_bytes(false, any->conf.redirect_addr), ip("127.0.0.1"));
  p.dns_listen = "[::]:5300";
  any = build_ebpf_image(p, {});
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(IpAddr::from_bytes(true, any->conf.redirect_addr), ip("::1"));
}

TEST(EbpfImage, ResolversProxyAndPlatform) {
  Policy p = base_policy();
  p.platform_azure = true;
  p.dns_upstreams = {ip("192.0.2.53"), ip("2001:db8::53")};
  p.dns_upstream_port = 5353;
  p.dns_listen = "192.0.2.1:10053";
  auto img = build_ebpf_image(p, {});
  ASSERT_TRUE(img.ok());
  const int dns = bit_of(*img, kEbpfDnsGroup), proxy = bit_of(*img, kEbpfDnsProxyGroup);
  const int wdns = bit_of(*img, kEbpfWireServerDnsGroup), wire = bit_of(*img, kEbpfWireServerGroup);
  const int imds = bit_of(*img, kEbpfImdsGroup);
  ASSERT_GE(dns, 0);
  ASSERT_GE(proxy, 0);
  ASSERT_GE(wdns, 0);
  ASSERT_GE(wire, 0);
  ASSERT_GE(imds, 0);
  EXPECT_EQ(img->conf.dns_port, 5353);
  EXPECT_EQ(img->conf.groups[dns].kind, AMLFW_GROUP_DNS);
  EXPECT_EQ(img->conf.groups[wire].kind, AMLFW_GROUP_PLATFORM);
  auto allows = [&](const char* a, Proto pr, uint16_t port) {
    return (lpm_bits(*img, ip(a)) & port_bits(*img, pr, port) & img->conf.egress_mask) != 0;
  };
  EXPECT_TRUE(allows("192.0.2.53", Proto::kUdp, 5353));
  EXPECT_TRUE(allows("192.0.2.53", Proto::kTcp, 5353));
  EXPECT_FALSE(allows("192.0.2.53", Proto::kUdp, 53));
  EXPECT_TRUE(allows("2001:db8::53", Proto::kUdp, 5353));
  EXPECT_TRUE(allows("192.0.2.1", Proto::kUdp, 10053));
  EXPECT_TRUE(allows("168.63.129.16", Proto::kUdp, 53));
  EXPECT_TRUE(allows("168.63.129.16", Proto::kTcp, 53));
  EXPECT_TRUE(allows("168.63.129.16", Proto::kTcp, 80));
  EXPECT_TRUE(allows("168.63.129.16", Proto::kTcp, 32526));
  EXPECT_FALSE(allows("168.63.129.16", Proto::kUdp, 80));
  EXPECT_FALSE(allows("168.63.129.16", Proto::kTcp, 443));
  EXPECT_TRUE(allows("169.254.169.254", Proto::kTcp, 80));
  EXPECT_FALSE(allows("169.254.169.254", Proto::kTcp, 443));
  EXPECT_FALSE(allows("169.254.169.253", Proto::kTcp, 80));

  // Loopback proxy: nothing to add (loopback always passes). Platform off: no entries.
  p.dns_listen = "127.0.0.1:53";
  p.platform_azure = false;
  auto img2 = build_ebpf_image(p, {});
  ASSERT_TRUE(img2.ok());
  EXPECT_EQ(img2->group_names, std::vector<std::string>{"dns"});
  EXPECT_EQ(lpm_bits(*img2, ip("168.63.129.16")), 0u);
}

TEST(EbpfImage, LocalAddressesAllowEveryPortLoopbackNeedsNoEntry) {
  Policy p = base_policy();
  auto img = build_ebpf_image(p, {}, {ip("192.0.2.1"), ip("2001:db8:ffff::1"), ip("127.0.0.1"), ip("::1")});
  ASSERT_TRUE(img.ok());
  ASSERT_EQ(img->group_names, std::vector<std::string>{"local"});
  EXPECT_EQ(img->conf.groups[0].kind, AMLFW_GROUP_LOCAL);
  EXPECT_EQ(img->lpm4.size(), 1u);
  EXPECT_EQ(img->lpm6.size(), 1u);
  EXPECT_EQ(lpm_bits(*img, ip("192.0.2.1")) & port_bits(*img, Proto::kTcp, 8080), 1u);
  EXPECT_EQ(lpm_bits(*img, ip("2001:db8:ffff::1")) & port_bits(*img, Proto::kUdp, 5353), 1u);
  EXPECT_EQ(lpm_bits(*img, ip("192.0.2.2")), 0u);
}

TEST(EbpfImage, NotEnforcedGroupsAndAllPorts) {
  Policy p = base_policy();
  auto off = group("e_tcp_443", Direction::kEgress, Proto::kTcp, {{443, 443}}, {"198.51.100.0/24"});
  off.enforced = false;
  auto all = group("e_tcp_1-65535", Direction::kEgress, Proto::kTcp, {{1, 65535}}, {"203.0.113.0/24"});
  auto img = build_ebpf_image(p, {off, all});
  ASSERT_TRUE(img.ok());
  ASSERT_EQ(img->group_names, std::vector<std::string>{"e_tcp_1-65535"});
  EXPECT_EQ(img->conf.groups[0].nports, 0);  // every port
  EXPECT_EQ(port_bits(*img, Proto::kTcp, 1), 1u);
  EXPECT_EQ(port_bits(*img, Proto::kTcp, 65535), 1u);
  EXPECT_EQ(port_bits(*img, Proto::kUdp, 53), 0u);
  EXPECT_EQ(lpm_bits(*img, ip("198.51.100.1")), 0u);
}

TEST(EbpfImage, TooManyGroupsIsAnErrorNamingTheLimit) {
  Policy p = base_policy();
  std::vector<PortGroup> gs;
  for (int i = 0; i < AMLFW_MAX_GROUPS + 1; ++i) {
    gs.push_back(group("e_tcp_" + std::to_string(2000 + i), Direction::kEgress, Proto::kTcp,
                       {{static_cast<uint16_t>(2000 + i), static_cast<uint16_t>(2000 + i)}}, {"198.51.100.0/24"}));
  }
  auto img = build_ebpf_image(p, gs);
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().code, Exit::kUsage);
  EXPECT_NE(img.error().message.find("at most 64"), std::string::npos) << img.error().message;
  gs.pop_back();
  EXPECT_TRUE(build_ebpf_image(p, gs).ok());
}

TEST(EbpfImage, SameContentIgnoresTheGenerationOnly) {
  Policy p = base_policy();
  std::vector<PortGroup> gs = {group("e_tcp_443", Direction::kEgress, Proto::kTcp, {{443, 443}}, {"198.51.100.0/24"})};
  auto a = build_ebpf_image(p, gs);
  auto b = build_ebpf_image(p, gs);
  ASSERT_TRUE(a.ok() && b.ok());
  b->conf.generation = 9;
  EXPECT_TRUE(a->same_content(*b));
  gs[0].prefixes.add(pfx("198.51.101.0/24"));
  gs[0].prefixes.normalize();
  auto c = build_ebpf_image(p, gs);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(a->same_content(*c));
  p.mode = Mode::kAudit;
  auto d = build_ebpf_image(p, {gs[0]});
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(c->same_content(*d));
}

TEST(EbpfImage, LearnedBitsFollowGroupNamesAcrossGenerations) {
  Policy p = base_policy();
  std::vector<PortGroup> one = {
      group("e_tcp_443", Direction::kEgress, Proto::kTcp, {{443, 443}}, {}, true),
      group("e_tcp_80_443", Direction::kEgress, Proto::kTcp, {{80, 80}, {443, 443}}, {}, true),
      group("e_tcp_8080", Direction::kEgress, Proto::kTcp, {{8080, 8080}}, {}, true),
  };
  // The next policy drops e_tcp_8080, adds a group sorting first, keeps the others.
  std::vector<PortGroup> two = {
      group("e_tcp_22", Direction::kEgress, Proto::kTcp, {{22, 22}}, {}, true),
      one[0],
      one[1],
  };
  auto a = build_ebpf_image(p, one);
  auto b = build_ebpf_image(p, two);
  ASSERT_TRUE(a.ok() && b.ok());
  const int a443 = a->learn_bit("e_tcp_443"), a80 = a->learn_bit("e_tcp_80_443"), a8080 = a->learn_bit("e_tcp_8080");
  const int b443 = b->learn_bit("e_tcp_443"), b80 = b->learn_bit("e_tcp_80_443");
  ASSERT_TRUE(a443 >= 0 && a80 >= 0 && a8080 >= 0 && b443 >= 0 && b80 >= 0);
  EbpfBitMap m = ebpf_learned_bit_map(a->conf, b->conf);
  EXPECT_EQ(m[a443], b443);
  EXPECT_EQ(m[a80], b80);
  EXPECT_EQ(m[a8080], -1);
  const uint64_t bits = (uint64_t{1} << a443) | (uint64_t{1} << a8080);
  EXPECT_EQ(ebpf_translate_bits(bits, m), uint64_t{1} << b443);
  EXPECT_EQ(ebpf_translate_bits(uint64_t{1} << a8080, m), 0u);
}

TEST(EbpfSys, Cgroup2MountFromMountinfo) {
  const std::string hybrid =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(cgroup2_mount_from(hybrid), "/sys/fs/cgroup/unified");
  EXPECT_EQ(cgroup2_mount_from("25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"),
            "/sys/fs/cgroup");
  EXPECT_EQ(cgroup2_mount_from("25 1 0:22 / /mnt/my\\040cg rw - cgroup2 none rw\n"), "/mnt/my cg");
  EXPECT_EQ(cgroup2_mount_from("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"), "");
  EXPECT_EQ(cgroup2_mount_from("garbage\n\n - cgroup2\n"), "");
}

}  // namespace
}  // namespace amlfw
