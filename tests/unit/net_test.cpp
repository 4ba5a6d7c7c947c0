// SPDX-License-Identifier: MIT
#include "policy/net.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include <random>
#include <set>

namespace amlfw {
namespace {

IpAddr ip(std::string_view s) {
  auto a = IpAddr::parse(s);
  EXPECT_TRUE(a.has_value()) << s;
  return a.value_or(IpAddr{});
}

Prefix pfx(std::string_view s) {
  auto p = Prefix::parse(s);
  EXPECT_TRUE(p.ok()) << s << ": " << (p.ok() ? "" : p.error().message);
  return p.ok() ? *p : Prefix{};
}

PrefixSet set_of(std::initializer_list<std::string_view> prefixes) {
  PrefixSet s;
  for (auto p : prefixes) s.add(pfx(p));
  s.normalize();
  return s;
}

std::vector<std::string> strs(const std::vector<Prefix>& v) {
  std::vector<std::string> out;
  for (const auto& p : v) out.push_back(p.str());
  return out;
}

std::string parse_error(std::string_view s, bool allow_bare = false) {
  auto p = Prefix::parse(s, allow_bare);
  EXPECT_FALSE(p.ok()) << s << " parsed as " << (p.ok() ? p->str() : "");
  return p.ok() ? "" : p.error().message;
}

// ---- IpAddr ------------------------------------------------------------------------------

TEST(IpAddr, ParsesIpv4) {
  auto a = IpAddr::parse("192.0.2.1");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->v6);
  EXPECT_EQ(a->v4value(), 0xc0000201u);
  EXPECT_EQ(a->str(), "192.0.2.1");
  EXPECT_EQ(ip("0.0.0.0").v4value(), 0u);
  EXPECT_EQ(ip("255.255.255.255").v4value(), 0xffffffffu);
}

TEST(IpAddr, RejectsBadIpv4) {
  for (std::string_view s : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4",
                             "01.2.3.4", "1.2.3.04", "1..3.4", "1.2.3.", "a.b.c.d", "1.2.3.4/8",
                             "1234.1.1.1", "-1.2.3.4", "1.2.3.4x"}) {
    EXPECT_FALSE(IpAddr::parse(s).has_value()) << "'" << s << "'";
  }
}

TEST(IpAddr, ParsesIpv6Canonically) {
  auto a = IpAddr::parse("2001:DB8:0:0:0:0:0:1");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->v6);
  EXPECT_EQ(a->str(), "2001:db8::1");
  EXPECT_EQ(a->value >> 96, u128{0x20010db8});
  EXPECT_EQ(ip("::").value, u128{0});
  EXPECT_EQ(ip("::1").value, u128{1});
  EXPECT_EQ(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").value, ~u128{0});
  EXPECT_EQ(ip("::ffff:192.0.2.1").value, (u128{0xffff} << 32) | 0xc0000201u);
}

TEST(IpAddr, RejectsBadIpv6) {
  for (std::string_view s : {":", ":::", "2001:db8::1::2", "2001:db8::g", "[2001:db8::1]",
                             "fe80::1%eth0", "1:2:3:4:5:6:7:8:9", "2001:db8::1/64"}) {
    EXPECT_FALSE(IpAddr::parse(s).has_value()) << s;
  }
  std::string longest(60, '1');
  longest[4] = ':';
  EXPECT_FALSE(IpAddr::parse(longest).has_value());
}

// The hand-written parsers accept exactly what inet_pton accepts (IPv4 without the
// leading-zero forms, which glibc rejects too) and give the same bytes.
TEST(IpAddr, AgreesWithInetPton) {
  std::mt19937_64 rng(7);
  const std::string alphabet = "0123456789abcdefABCDEF:.:.:::x/ ";
  const std::vector<std::string> seeds = {
      "2001:db8::1", "::", "::1", "1::", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4",
      "::1:2:3:4:5:6:7", "1:2:3:4:5:6:7::", "fe80::1:2", "2603:1050:403:400::1f8", "192.0.2.1",
      "0.0.0.0", "255.255.255.255", "1.2.3.4", "ffff::ffff", "0:0:0:0:0:0:0:0"};
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string t = seeds[rng() % seeds.size()];
    const int edits = static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = t.empty() ? 0 : rng() % (t.size() + 1);
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: t.insert(t.begin() + static_cast<long>(pos), c); break;
        case 1: if (pos < t.size()) t.erase(pos, 1); break;
        default: if (pos < t.size()) t[pos] = c; break;
      }
    }
    uint8_t b4[4], b6[16];
    const bool v4 = inet_pton(AF_INET, t.c_str(), b4) == 1;
    const bool v6 = inet_pton(AF_INET6, t.c_str(), b6) == 1;
    auto a = IpAddr::parse(t);
    ASSERT_EQ(a.has_value(), v4 || v6) << "'" << t << "'";
    if (!a) continue;
    ++accepted;
    ASSERT_EQ(a->v6, v6) << t;
    uint8_t got[16];
    a->to_bytes(got);
    ASSERT_EQ(0, std::memcmp(got, v6 ? b6 : b4, v6 ? 16 : 4)) << t;
  }
  EXPECT_GT(accepted, 10000);
}

TEST(IpAddr, BytesRoundTrip) {
  uint8_t b4[4];
  ip("198.51.100.7").to_bytes(b4);
  EXPECT_EQ(b4[0], 198);
  EXPECT_EQ(b4[3], 7);
  EXPECT_EQ(IpAddr::from_bytes(false, b4), ip("198.51.100.7"));
  uint8_t b6[16];
  ip("2001:db8::ab").to_bytes(b6);
  EXPECT_EQ(b6[0], 0x20);
  EXPECT_EQ(b6[1], 0x01);
  EXPECT_EQ(b6[2], 0x0d);
  EXPECT_EQ(b6[15], 0xab);
  EXPECT_EQ(IpAddr::from_bytes(true, b6), ip("2001:db8::ab"));
}

TEST(IpAddr, OrdersIpv4BeforeIpv6) {
  EXPECT_LT(ip("255.255.255.255"), ip("::"));
  EXPECT_LT(ip("192.0.2.1"), ip("192.0.2.2"));
}

// ---- Prefix ------------------------------------------------------------------------------

TEST(Prefix, ParsesStrictCidr) {
  Prefix p = pfx("198.51.100.0/24");
  EXPECT_EQ(p.len, 24);
  EXPECT_EQ(p.str(), "198.51.100.0/24");
  EXPECT_EQ(pfx("0.0.0.0/0").str(), "0.0.0.0/0");
  EXPECT_EQ(pfx("255.255.255.255/32").str(), "255.255.255.255/32");
  EXPECT_EQ(pfx("2001:db8::/32").str(), "2001:db8::/32");
  EXPECT_EQ(pfx("::/0").str(), "::/0");
  EXPECT_EQ(pfx("2603:1050:403:400::1f8/125").str(), "2603:1050:403:400::1f8/125");
  EXPECT_EQ(pfx("2001:DB8:0::/48").str(), "2001:db8::/48");
}

TEST(Prefix, HostBitsErrorNamesTheFix) {
  std::string m = parse_error("10.1.2.3/8");
  EXPECT_NE(m.find("'10.1.2.3/8'"), std::string::npos) << m;
  EXPECT_NE(m.find("host bits"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 10.0.0.0/8?"), std::string::npos) << m;
  m = parse_error("2001:db8::1/32");
  EXPECT_NE(m.find("did you mean 2001:db8::/32?"), std::string::npos) << m;
  m = parse_error("192.0.2.1/0");
  EXPECT_NE(m.find("did you mean 0.0.0.0/0?"), std::string::npos) << m;
}

TEST(Prefix, LengthOutOfRange) {
  EXPECT_NE(parse_error("10.0.0.1/33").find("use 0..32"), std::string::npos);
  EXPECT_NE(parse_error("2001:db8::/129").find("use 0..128"), std::string::npos);
  for (std::string_view s : {"10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08", "10.0.0.0/8/8",
                             "10.0.0.0/ 8", "10.0.0.0/1000", "10.0.0.0/x"}) {
    EXPECT_NE(parse_error(s).find("bad prefix length"), std::string::npos) << s;
  }
}

TEST(Prefix, BareAddressOnlyWhenAllowed) {
  EXPECT_NE(parse_error("192.0.2.1").find("write 192.0.2.1/32"), std::string::npos);
  EXPECT_NE(parse_error("2001:db8::1").find("write 2001:db8::1/128"), std::string::npos);
  auto p = Prefix::parse("192.0.2.1", true);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->len, 32);
  auto q = Prefix::parse("2001:db8::1", true);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->len, 128);
}

TEST(Prefix, GarbageIsAnErrorNotACrash) {
  for (std::string_view s : {std::string_view(""), std::string_view("/"), std::string_view("/24"),
                             std::string_view("example.com/24"), std::string_view("1.2.3.4.5/32"),
                             std::string_view("::g/64"), std::string_view("10.0.0.0\n/8"),
                             std::string_view("10.0.0.0\0/8", 11)}) {
    auto m = parse_error(s);
    EXPECT_FALSE(m.empty()) << s;
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
  }
  EXPECT_EQ(Prefix::parse("x").error().code, Exit::kUsage);
}

// ---- PrefixSet ---------------------------------------------------------------------------

TEST(PrefixSet, MergesOverlappingNestedAndAdjacent) {
  PrefixSet s = set_of({"10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "10.0.3.0/24",
                        "192.0.2.0/25", "192.0.2.128/25", "198.51.100.7/32", "10.0.0.0/23"});
  ASSERT_EQ(s.v4().size(), 4u);
  EXPECT_EQ(s.v4()[0], (Range4{0x0a000000, 0x0a0001ff}));  // 10.0.0.0 - 10.0.1.255
  EXPECT_EQ(s.v4()[1], (Range4{0x0a000300, 0x0a0003ff}));  // 10.0.3.0/24 (gap at .2)
  EXPECT_EQ(s.v4()[2], (Range4{0xc0000200, 0xc00002ff}));  // 192.0.2.0/24
  EXPECT_EQ(s.v4()[3], (Range4{0xc6336407, 0xc6336407}));
  EXPECT_EQ(strs(s.to_prefixes()),
            (std::vector<std::string>{"10.0.0.0/23", "10.0.3.0/24", "192.0.2.0/24",
                                      "198.51.100.7/32"}));
  EXPECT_TRUE(s.normalized());
}

TEST(PrefixSet, AdjacentSingleAddressesMerge) {
  PrefixSet s = set_of({"192.0.2.1/32", "192.0.2.0/32", "192.0.2.3/32", "192.0.2.2/32"});
  ASSERT_EQ(s.v4().size(), 1u);
  EXPECT_EQ(strs(s.to_prefixes()), std::vector<std::string>{"192.0.2.0/30"});
}

TEST(PrefixSet, Ipv6KeptSeparateAndMerged) {
  PrefixSet s = set_of({"2001:db8::/33", "2001:db8:8000::/33", "2001:db8::1/128", "10.0.0.0/8",
                        "2001:db9::/48"});
  ASSERT_EQ(s.v4().size(), 1u);
  ASSERT_EQ(s.v6().size(), 1u);  // 2001:db8::/32 and 2001:db9::/48 are adjacent
  EXPECT_EQ(strs(s.to_prefixes()),
            (std::vector<std::string>{"10.0.0.0/8", "2001:db8::/32", "2001:db9::/48"}));
}

TEST(PrefixSet, FullRangeEdgeCases) {
  PrefixSet all4 = set_of({"0.0.0.0/0", "10.0.0.0/8", "255.255.255.255/32"});
  ASSERT_EQ(all4.v4().size(), 1u);
  EXPECT_EQ(all4.v4()[0], (Range4{0, 0xffffffff}));
  EXPECT_EQ(strs(all4.to_prefixes()), std::vector<std::string>{"0.0.0.0/0"});
  EXPECT_TRUE(all4.contains(ip("0.0.0.0")));
  EXPECT_TRUE(all4.contains(ip("255.255.255.255")));
  EXPECT_FALSE(all4.contains(ip("::")));

  PrefixSet all6 = set_of({"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "::/128"});
  ASSERT_EQ(all6.v6().size(), 1u);
  EXPECT_EQ(strs(all6.to_prefixes()), std::vector<std::string>{"::/0"});
  EXPECT_TRUE(all6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));

  PrefixSet top = set_of({"255.255.255.255/32", "255.255.255.254/32"});
  EXPECT_EQ(strs(top.to_prefixes()), std::vector<std::string>{"255.255.255.254/31"});
  PrefixSet halves = set_of({"128.0.0.0/1", "0.0.0.0/1"});
  EXPECT_EQ(strs(halves.to_prefixes()), std::vector<std::string>{"0.0.0.0/0"});
  PrefixSet halves6 = set_of({"8000::/1", "::/1"});
  EXPECT_EQ(strs(halves6.to_prefixes()), std::vector<std::string>{"::/0"});
}

TEST(PrefixSet, ToPrefixesIsMinimal) {
  PrefixSet s;
  s.add_range4(Range4{0x0a000001, 0x0a0000fe});  // 10.0.0.1 - 10.0.0.254
  s.normalize();
  EXPECT_EQ(strs(s.to_prefixes()),
            (std::vector<std::string>{"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/30", "10.0.0.8/29",
                                      "10.0.0.16/28", "10.0.0.32/27", "10.0.0.64/26",
                                      "10.0.0.128/26", "10.0.0.192/27", "10.0.0.224/28",
                                      "10.0.0.240/29", "10.0.0.248/30", "10.0.0.252/31",
                                      "10.0.0.254/32"}));
  PrefixSet t;
  t.add_range4(Range4{1, 0xfffffffe});
  t.normalize();
  EXPECT_EQ(t.to_prefixes().size(), 62u);  // 31 blocks rising + 31 falling
  PrefixSet u;
  u.add_range6(Range6{1, ~u128{0} - 1});
  u.normalize();
  EXPECT_EQ(u.to_prefixes().size(), 254u);
}

TEST(PrefixSet, ContainsUsesRangeBoundaries) {
  PrefixSet s = set_of({"192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32"});
  EXPECT_TRUE(s.contains(ip("192.0.2.0")));
  EXPECT_TRUE(s.contains(ip("192.0.2.255")));
  EXPECT_FALSE(s.contains(ip("192.0.1.255")));
  EXPECT_FALSE(s.contains(ip("192.0.3.0")));
  EXPECT_FALSE(s.contains(ip("198.51.99.255")));
  EXPECT_TRUE(s.contains(ip("198.51.100.128")));
  EXPECT_FALSE(s.contains(ip("203.0.113.1")));
  EXPECT_FALSE(s.contains(ip("0.0.0.0")));
  EXPECT_TRUE(s.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(s.contains(ip("2001:db9::")));
  EXPECT_FALSE(s.contains(ip("::ffff:192.0.2.1")));  // IPv4-mapped is an IPv6 address
  PrefixSet empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_FALSE(empty.contains(ip("192.0.2.1")));
}

TEST(PrefixSet, MergeIsUnionAndNormalized) {
  PrefixSet a = set_of({"192.0.2.0/25"});
  PrefixSet b = set_of({"192.0.2.128/25", "2001:db8::/32"});
  a.merge(b);
  EXPECT_TRUE(a.normalized());
  EXPECT_EQ(strs(a.to_prefixes()), (std::vector<std::string>{"192.0.2.0/24", "2001:db8::/32"}));
  a.clear();
  EXPECT_TRUE(a.empty());
}

TEST(PrefixSet, AddMarksNotNormalized) {
  PrefixSet s;
  EXPECT_TRUE(s.normalized());
  s.add(pfx("192.0.2.0/24"));
  EXPECT_FALSE(s.normalized());
  s.normalize();
  EXPECT_TRUE(s.normalized());
  s.add(ip("192.0.2.7"));
  s.normalize();
  EXPECT_EQ(s.v4().size(), 1u);
}

// Property: for random sets, to_prefixes() re-added gives the same set; every emitted prefix
// is aligned; membership agrees with a brute-force check on sampled addresses.
TEST(PrefixSet, ToPrefixesRoundTripProperty) {
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 300; ++round) {
    PrefixSet s;
    std::vector<Prefix> input;
    const int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      Prefix p;
      if (rng() % 3 == 0) {
        p.addr.v6 = true;
        p.len = static_cast<uint8_t>(rng() % 129);
        // Cluster addresses so that overlaps and adjacency happen.
        u128 v = (u128{0x20010db8} << 96) | (u128{rng() % 4} << 120 >> 16) | (rng() % 1024);
        if (rng() % 8 == 0) v = (u128{rng()} << 64) | rng();
        u128 m = p.len == 0 ? 0 : ~u128{0} << (128 - p.len);
        p.addr.value = v & m;
      } else {
        p.len = static_cast<uint8_t>(rng() % 33);
        uint32_t v = 0xc0000000u | static_cast<uint32_t>(rng() % 4096);
        if (rng() % 8 == 0) v = static_cast<uint32_t>(rng());
        uint32_t m = p.len == 0 ? 0 : ~uint32_t{0} << (32 - p.len);
        p.addr.value = v & m;
      }
      input.push_back(p);
      s.add(p);
    }
    s.normalize();
    // Sorted, disjoint, non-adjacent.
    for (size_t i = 1; i < s.v4().size(); ++i) ASSERT_GT(s.v4()[i].lo, s.v4()[i - 1].hi + 1ull);
    for (size_t i = 1; i < s.v6().size(); ++i) ASSERT_GT(s.v6()[i].lo - 1, s.v6()[i - 1].hi);

    auto cover = s.to_prefixes();
    PrefixSet again;
    for (const Prefix& p : cover) {
      auto reparsed = Prefix::parse(p.str());  // aligned and canonical
      ASSERT_TRUE(reparsed.ok()) << p.str();
      ASSERT_EQ(*reparsed, p);
      again.add(p);
    }
    again.normalize();
    ASSERT_EQ(again, s) << "round " << round;
    // Minimal: no two emitted prefixes of the same range could be joined into one.
    for (size_t i = 1; i < cover.size(); ++i) {
      const Prefix& a = cover[i - 1];
      const Prefix& b = cover[i];
      if (a.addr.v6 != b.addr.v6 || a.len != b.len || a.len == 0) continue;
      const unsigned bits = a.addr.v6 ? 128 : 32;
      const u128 size = u128{1} << (bits - a.len);
      const bool siblings = b.addr.value == a.addr.value + size &&
                            (a.addr.value & ((size << 1) - 1)) == 0;
      ASSERT_FALSE(siblings) << a.str() << " + " << b.str() << " should be one prefix";
    }
    // Membership against the input prefixes.
    for (int k = 0; k < 50; ++k) {
      const Prefix& base = input[rng() % input.size()];
      IpAddr probe = base.addr;
      probe.value += (rng() % 3 == 0) ? (rng() % 600) : 0;
      probe.value -= (rng() % 4 == 0) ? 1 : 0;
      if (!probe.v6) probe.value &= 0xffffffffu;
      bool expect = false;
      for (const Prefix& p : input) {
        if (p.addr.v6 != probe.v6) continue;
        const unsigned bits = p.addr.v6 ? 128 : 32;
        const u128 m = p.len == 0 ? 0 : (~u128{0} << (bits - p.len)) & (bits == 32 ? 0xffffffffu : ~u128{0});
        if ((probe.value & m) == p.addr.value) expect = true;
      }
      ASSERT_EQ(s.contains(probe), expect) << probe.str();
    }
  }
}

TEST(DiffRanges, AddsAndRemovesWholeRanges) {
  PrefixSet from = set_of({"192.0.2.0/24", "198.51.100.0/24", "2001:db8::/48"});
  PrefixSet to = set_of({"192.0.2.0/24", "198.51.100.0/25", "203.0.113.0/24", "2001:db8:1::/48"});
  RangeDiff d = diff_ranges(from, to);
  ASSERT_EQ(d.add4.size(), 2u);
  EXPECT_EQ(d.add4[0], (Range4{0xc6336400, 0xc633647f}));
  EXPECT_EQ(d.add4[1], (Range4{0xcb007100, 0xcb0071ff}));
  ASSERT_EQ(d.del4.size(), 1u);
  EXPECT_EQ(d.del4[0], (Range4{0xc6336400, 0xc63364ff}));
  ASSERT_EQ(d.add6.size(), 1u);
  ASSERT_EQ(d.del6.size(), 1u);
  EXPECT_EQ(d.size(), 5u);
  EXPECT_FALSE(d.empty());
  EXPECT_TRUE(diff_ranges(to, to).empty());
  RangeDiff back = diff_ranges(to, from);
  EXPECT_EQ(back.add4, d.del4);
  EXPECT_EQ(back.del4, d.add4);
  RangeDiff from_empty = diff_ranges(PrefixSet{}, to);
  EXPECT_EQ(from_empty.add4, to.v4());
  EXPECT_TRUE(from_empty.del4.empty());
}

// ---- protocols and ports -----------------------------------------------------------------

TEST(Proto, RoundTrip) {
  for (Proto p : {Proto::kTcp, Proto::kUdp, Proto::kAny}) {
    EXPECT_EQ(parse_proto(to_string(p)), p);
  }
  EXPECT_EQ(to_string(Proto::kTcp), "tcp");
  EXPECT_EQ(to_string(Proto::kUdp), "udp");
  EXPECT_EQ(to_string(Proto::kAny), "any");
  EXPECT_FALSE(parse_proto("icmp"));
  EXPECT_FALSE(parse_proto(""));
  EXPECT_FALSE(parse_proto("tcp "));
}

TEST(Ports, ParsesSingleRangeAndStar) {
  EXPECT_EQ(*parse_port_range("443"), (PortRange{443, 443}));
  EXPECT_EQ(*parse_port_range("80-90"), (PortRange{80, 90}));
  EXPECT_EQ(*parse_port_range("1-65535"), (PortRange{1, 65535}));
  EXPECT_EQ(*parse_port_range("65535"), (PortRange{65535, 65535}));
  EXPECT_EQ(*parse_port_range("7-7"), (PortRange{7, 7}));
  EXPECT_TRUE(parse_port_range("*")->all());
  EXPECT_EQ(parse_port_range("29876-29877")->str(), "29876-29877");
  EXPECT_EQ(parse_port_range("443")->str(), "443");
}

TEST(Ports, ErrorsNameTheProblem) {
  auto msg = [](std::string_view s) {
    auto r = parse_port_range(s);
    EXPECT_FALSE(r.ok()) << s;
    if (r.ok()) return std::string();
    EXPECT_EQ(r.error().code, Exit::kUsage);
    return r.error().message;
  };
  EXPECT_NE(msg("0").find("out of range"), std::string::npos);
  EXPECT_NE(msg("65536").find("out of range"), std::string::npos);
  EXPECT_NE(msg("99999999999999999999").find("out of range"), std::string::npos);
  EXPECT_NE(msg("0-10").find("out of range"), std::string::npos);
  EXPECT_NE(msg("90-80").find("reversed (write 80-90)"), std::string::npos);
  for (std::string_view s : {"", "http", "-", "80-", "-80", "80-90-100", " 80", "80 ", "+80",
                             "8o", "**", "1,2", "0x50"}) {
    std::string m = msg(s);
    EXPECT_FALSE(m.empty()) << s;
    EXPECT_NE(m.find("N-M"), std::string::npos) << s << ": " << m;
  }
}

TEST(Ports, NormalizeMergesOverlapsAndNeighbours) {
  auto n = normalize_ports({{443, 443}, {80, 90}, {85, 100}, {101, 101}, {444, 444}, {8080, 8080}});
  EXPECT_EQ(n, (std::vector<PortRange>{{80, 101}, {443, 444}, {8080, 8080}}));
  EXPECT_EQ(normalize_ports({{1, 65535}, {443, 443}}), (std::vector<PortRange>{{1, 65535}}));
  EXPECT_EQ(normalize_ports({{65535, 65535}, {65534, 65534}}),
            (std::vector<PortRange>{{65534, 65535}}));
  EXPECT_TRUE(normalize_ports({}).empty());
}

TEST(Ports, Contain) {
  std::vector<PortRange> p = {{80, 80}, {443, 443}, {29876, 29877}};
  EXPECT_TRUE(ports_contain(p, 80));
  EXPECT_TRUE(ports_contain(p, 29877));
  EXPECT_FALSE(ports_contain(p, 81));
  EXPECT_FALSE(ports_contain(p, 29878));
  EXPECT_FALSE(ports_contain({}, 80));
}

// ---- special-use addresses (SPEC guarantee 6) --------------------------------------------

TEST(SpecialUse, EveryBoundary) {
  struct Case {
    const char* first;
    const char* last;
    const char* below;  // just outside, or nullptr at the edge of the space
    const char* above;
  };
  const Case cases[] = {
      {"0.0.0.0", "0.255.255.255", nullptr, "1.0.0.0"},
      {"10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0"},
      {"100.64.0.0", "100.127.255.255", "100.63.255.255", "100.128.0.0"},
      {"127.0.0.0", "127.255.255.255", "126.255.255.255", "128.0.0.0"},
      {"169.254.0.0", "169.254.255.255", "169.253.255.255", "169.255.0.0"},
      {"172.16.0.0", "172.31.255.255", "172.15.255.255", "172.32.0.0"},
      {"192.168.0.0", "192.168.255.255", "192.167.255.255", "192.169.0.0"},
      {"224.0.0.0", "255.255.255.255", "223.255.255.255", nullptr},  // 224/4 + 240/4
      {"::", "::", nullptr, "::2"},                                  // ::/128 and ::1/128
      {"::1", "::1", nullptr, "::2"},
      {"fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       "fe00::"},
      {"fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       "fec0::"},
      {"ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       nullptr},
  };
  for (const Case& c : cases) {
    EXPECT_TRUE(is_special_use(ip(c.first))) << c.first;
    EXPECT_TRUE(is_special_use(ip(c.last))) << c.last;
    if (c.below) {
      EXPECT_FALSE(is_special_use(ip(c.below))) << c.below;
    }
    if (c.above) {
      EXPECT_FALSE(is_special_use(ip(c.above))) << c.above;
    }
  }
  EXPECT_TRUE(is_special_use(ip("240.0.0.0")));
  EXPECT_TRUE(is_special_use(ip("239.255.255.255")));
}

TEST(SpecialUse, DocumentationAndPublicRangesAreLearned) {
  for (const char* s : {"192.0.2.1", "198.51.100.1", "203.0.113.255", "2001:db8::1", "8.8.8.8",
                        "20.38.0.1", "2603:1000::1", "192.0.0.1", "198.18.0.1", "::2",
                        "64:ff9b::1", "2002::1"}) {
    EXPECT_FALSE(is_special_use(ip(s))) << s;
  }
}

TEST(SpecialUse, Ipv4MappedJudgedByItsIpv4) {
  EXPECT_TRUE(is_special_use(ip("::ffff:127.0.0.1")));
  EXPECT_TRUE(is_special_use(ip("::ffff:10.1.2.3")));
  EXPECT_TRUE(is_special_use(ip("::ffff:169.254.169.254")));
  EXPECT_TRUE(is_special_use(ip("::ffff:0.0.0.0")));
  EXPECT_FALSE(is_special_use(ip("::ffff:192.0.2.1")));
  EXPECT_FALSE(is_special_use(ip("::ffff:8.8.8.8")));
  EXPECT_FALSE(is_special_use(ip("::fffe:127.0.0.1")));  // not the mapped prefix
}

}  // namespace
}  // namespace amlfw
