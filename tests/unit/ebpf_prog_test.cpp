// SPDX-License-Identifier: MIT
// The cgroup_skb programs against the real verifier and kernel, with BPF_PROG_TEST_RUN:
// packet in, verdict out, table-driven (katran style). A policy generation is built and
// published into a freshly loaded object (nothing attached, nothing pinned). The
// connect/sendmsg programs cannot be test-run (the kernel has no test_run for
// cgroup_sock_addr): tests/e2e/test_ebpf_backend.sh covers them.
// Needs root: skipped otherwise, except under CI=true where that is a failure.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "daemon/ebpf_events.h"
#include "daemon/ebpf_image.h"
#include "daemon/ebpf_learned.h"
#include "daemon/ebpf_object.h"
#include "daemon/ebpf_sys.h"
#include "tests/unit/ci_skip.h"

namespace amlfw {
namespace {

using Bytes = std::vector<uint8_t>;

void put16(Bytes* b, uint16_t v) {
  b->push_back(static_cast<uint8_t>(v >> 8));
  b->push_back(static_cast<uint8_t>(v));
}
void put_addr(Bytes* b, const char* s) {
  IpAddr a = *IpAddr::parse(s);
  uint8_t buf[16];
  a.to_bytes(buf);
  b->insert(b->end(), buf, buf + (a.v6 ? 16 : 4));
}

constexpr uint8_t kSyn = 0x02, kAck = 0x10, kRst = 0x04;

Bytes tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
  Bytes b;
  put16(&b, sport);
  put16(&b, dport);
  for (int i = 0; i < 8; ++i) b.push_back(0);  // seq, ack
  b.push_back(0x50);
  b.push_back(flags);
  put16(&b, 65535);
  put16(&b, 0);
  put16(&b, 0);
  return b;
}
Bytes udp(uint16_t sport, uint16_t dport) {
  Bytes b;
  put16(&b, sport);
  put16(&b, dport);
  put16(&b, 12);
  put16(&b, 0);
  for (int i = 0; i < 4; ++i) b.push_back('x');
  return b;
}
Bytes icmp(uint8_t type) { return Bytes{type, 0, 0, 0, 0, 0, 0, 0}; }

Bytes ether(uint16_t type) {
  Bytes b(12, 0);
  b[0] = 0x02;
  b[6] = 0x02;
  put16(&b, type);
  return b;
}

Bytes ip4(const char* src, const char* dst, uint8_t proto, const Bytes& l4) {
  Bytes b = ether(0x0800);
  b.push_back(0x45);
  b.push_back(0);
  put16(&b, static_cast<uint16_t>(20 + l4.size()));
  put16(&b, 0);
  put16(&b, 0x4000);
  b.push_back(64);
  b.push_back(proto);
  put16(&b, 0);
  put_addr(&b, src);
  put_addr(&b, dst);
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

// hop_by_hop: an 8-byte hop-by-hop options header before the transport header.
Bytes ip6(const char* src, const char* dst, uint8_t proto, const Bytes& l4, bool hop_by_hop = false) {
  Bytes b = ether(0x86DD);
  b.push_back(0x60);
  b.push_back(0);
  put16(&b, 0);
  put16(&b, static_cast<uint16_t>(l4.size() + (hop_by_hop ? 8 : 0)));
  b.push_back(hop_by_hop ? 0 : proto);
  b.push_back(64);
  put_addr(&b, src);
  put_addr(&b, dst);
  if (hop_by_hop) {
    Bytes h = {proto, 0, 1, 4, 0, 0, 0, 0};  // next header, length 0 (8 bytes), PadN
    b.insert(b.end(), h.begin(), h.end());
  }
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

PortGroup group(std::string name, Direction d, Proto p, std::vector<PortRange> ports, std::vector<const char*> cidrs,
                bool names = false) {
  PortGroup g;
  g.name = std::move(name);
  g.direction = d;
  g.proto = p;
  g.ports = std::move(ports);
  for (const char* c : cidrs) g.prefixes.add(*Prefix::parse(c));
  g.prefixes.normalize();
  g.has_names = names;
  return g;
}

class EbpfProgTest : public ::testing::Test {
 public:
  void SetUp() override {
    if (::geteuid() != 0) {
      AMLFW_SKIP_OR_FAIL_IN_CI("BPF_PROG_TEST_RUN needs root");
    }
    Status k = ebpf_check_kernel();
    if (!k.ok()) {
      AMLFW_SKIP_OR_FAIL_IN_CI(k.error().message);
    }
    auto o = EbpfObject::load("");
    ASSERT_TRUE(o.ok()) << o.error().message;
    obj_ = std::move(*o);
    // The test run's device: loopback unless told (and loopback passes everything).
    if (struct if_nameindex* ifs = if_nameindex()) {
      for (auto* i = ifs; i->if_index != 0; ++i) {
        if (i->if_index > 1) {
          ifindex_ = i->if_index;
          break;
        }
      }
      if_freenameindex(ifs);
    }
    if (ifindex_ == 0) {
      AMLFW_SKIP_OR_FAIL_IN_CI("no network device other than lo for BPF_PROG_TEST_RUN");
    }
  }

  Policy policy(Mode mode = Mode::kEnforce, bool inbound = true) {
    Policy p;
    p.mode = mode;
    p.inbound_enforce = inbound;
    p.platform_azure = true;
    p.dns_upstreams = {*IpAddr::parse("192.0.2.53"), *IpAddr::parse("2001:db8::53")};
    p.dns_listen = "127.0.0.1:53";
    return p;
  }
  std::vector<PortGroup> groups() {
    return {
        group("e_tcp_443", Direction::kEgress, Proto::kTcp, {{443, 443}}, {"198.51.100.0/24", "2001:db8:443::/48"},
              true),
        group("e_udp_5831", Direction::kEgress, Proto::kUdp, {{5831, 5831}}, {"203.0.113.0/24"}),
        group("i_tcp_22", Direction::kIngress, Proto::kTcp, {{22, 22}}, {"192.0.2.128/25", "2001:db8:22::/48"}),
    };
  }

  void install(const Policy& p, const std::vector<PortGroup>& gs) {
    auto img = build_ebpf_image(p, gs);
    ASSERT_TRUE(img.ok()) << img.error().message;
    ++generation_;
    auto g = ebpf_create_generation(*img, generation_, nullptr);
    ASSERT_TRUE(g.ok()) << g.error().message;
    slot_ = 1 - slot_;
    Status s = ebpf_publish(obj_->map_fds(), *g, slot_, generation_);
    ASSERT_TRUE(s.ok()) << s.error().message;
    gen_ = std::move(*g);
    image_ = std::move(*img);
  }

  // The program's verdict: 1 pass, 0 drop.
  int run(EbpfProg prog, const Bytes& pkt, uint32_t ifindex = 0) {
    __sk_buff ctx{};
    ctx.ifindex = ifindex ? ifindex : ifindex_;
    Bytes out(pkt.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(pkt.size()), .data_size_out = static_cast<uint32_t>(out.size()),
                .ctx_in = &ctx, .ctx_size_in = sizeof ctx, .repeat = 1);
    int err = bpf_prog_test_run_opts(obj_->prog_fd(prog), &opts);
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(errno);
    return err == 0 ? static_cast<int>(opts.retval) : -1;
  }

  std::vector<EbpfEvent> events() {
    std::vector<EbpfEvent> out;
    auto ev = EbpfEvents::open_fd(obj_->map_fd(EbpfMap::kEvents), [&](const EbpfEvent& e) { out.push_back(e); });
    EXPECT_TRUE(ev.ok());
    if (ev.ok()) {
      EXPECT_TRUE((*ev)->drain().ok());
    }
    return out;
  }

  std::unique_ptr<EbpfObject> obj_;
  uint32_t ifindex_ = 0;
  EbpfGeneration gen_;
  EbpfImage image_;
  uint32_t slot_ = 1;
  uint64_t generation_ = 0;
};

struct Case {
  const char* what;
  Bytes pkt;
  int want;
};

void run_table(EbpfProgTest* t, EbpfProg prog, const std::vector<Case>& cases,
               int (EbpfProgTest::*run)(EbpfProg, const Bytes&, uint32_t)) {
  for (const Case& c : cases) EXPECT_EQ((t->*run)(prog, c.pkt, 0), c.want) << c.what;
}

TEST_F(EbpfProgTest, EgressTable) {
  install(policy(), groups());
  const std::vector<Case> cases = {
      {"tcp SYN to an allowed prefix and port", ip4("192.0.2.1", "198.51.100.7", 6, tcp(40000, 443, kSyn)), 1},
      {"tcp SYN to an allowed prefix, other port", ip4("192.0.2.1", "198.51.100.7", 6, tcp(40000, 80, kSyn)), 0},
      {"tcp SYN to an address in no group", ip4("192.0.2.1", "192.0.2.9", 6, tcp(40000, 443, kSyn)), 0},
      {"tcp SYN to a udp-only group", ip4("192.0.2.1", "203.0.113.9", 6, tcp(40000, 5831, kSyn)), 0},
      {"tcp ACK of a connection (established)", ip4("192.0.2.1", "203.0.113.9", 6, tcp(40000, 443, kAck)), 1},
      {"tcp SYN-ACK (accepted connection)", ip4("192.0.2.1", "203.0.113.9", 6, tcp(22, 40000, kSyn | kAck)), 1},
      {"tcp RST", ip4("192.0.2.1", "203.0.113.9", 6, tcp(40000, 443, kRst)), 1},
      {"udp to an allowed group", ip4("192.0.2.1", "203.0.113.9", 17, udp(40000, 5831)), 1},
      {"udp to an allowed group, other port", ip4("192.0.2.1", "203.0.113.9", 17, udp(40000, 5832)), 0},
      {"udp DNS to the resolver", ip4("192.0.2.1", "192.0.2.53", 17, udp(40000, 53)), 1},
      {"tcp DNS to the resolver", ip4("192.0.2.1", "192.0.2.53", 6, tcp(40000, 53, kSyn)), 1},
      {"udp DNS elsewhere", ip4("192.0.2.1", "203.0.113.9", 17, udp(40000, 53)), 0},
      {"DHCP request", ip4("0.0.0.0", "255.255.255.255", 17, udp(68, 67)), 1},
      {"udp to 67 from another port", ip4("192.0.2.1", "255.255.255.255", 17, udp(40000, 67)), 0},
      {"wireserver 32526", ip4("192.0.2.1", "168.63.129.16", 6, tcp(40000, 32526, kSyn)), 1},
      {"wireserver DNS over udp", ip4("192.0.2.1", "168.63.129.16", 17, udp(40000, 53)), 1},
      {"wireserver 443", ip4("192.0.2.1", "168.63.129.16", 6, tcp(40000, 443, kSyn)), 0},
      {"IMDS 80", ip4("192.0.2.1", "169.254.169.254", 6, tcp(40000, 80, kSyn)), 1},
      {"IMDS 443", ip4("192.0.2.1", "169.254.169.254", 6, tcp(40000, 443, kSyn)), 0},
      {"icmp echo request", ip4("192.0.2.1", "198.51.100.7", 1, icmp(8)), 0},
      {"icmp destination unreachable (related)", ip4("192.0.2.1", "203.0.113.9", 1, icmp(3)), 1},
      {"icmp echo reply", ip4("192.0.2.1", "203.0.113.9", 1, icmp(0)), 1},
      {"ipv6 tcp SYN allowed", ip6("2001:db8:ffff::1", "2001:db8:443::7", 6, tcp(40000, 443, kSyn)), 1},
      {"ipv6 tcp SYN other port", ip6("2001:db8:ffff::1", "2001:db8:443::7", 6, tcp(40000, 80, kSyn)), 0},
      {"ipv6 tcp SYN no group", ip6("2001:db8:ffff::1", "2001:db8:444::7", 6, tcp(40000, 443, kSyn)), 0},
      {"ipv6 hop-by-hop then allowed SYN", ip6("2001:db8:ffff::1", "2001:db8:443::7", 6, tcp(40000, 443, kSyn), true),
       1},
      {"ipv6 hop-by-hop then denied SYN", ip6("2001:db8:ffff::1", "2001:db8:444::7", 6, tcp(40000, 443, kSyn), true),
       0},
      {"ipv6 DNS to the resolver", ip6("2001:db8:ffff::1", "2001:db8::53", 17, udp(40000, 53)), 1},
      {"ipv6 neighbour solicitation", ip6("fe80::1", "ff02::1:ff00:2", 58, icmp(135)), 1},
      {"ipv6 echo request", ip6("2001:db8:ffff::1", "2001:db8:443::7", 58, icmp(128)), 0},
      {"DHCPv6", ip6("fe80::1", "ff02::1:2", 17, udp(546, 547)), 1},
      {"truncated TCP header", ip4("192.0.2.1", "198.51.100.7", 6, Bytes{0x9c, 0x40, 0x01, 0xbb}), 0},
  };
  run_table(this, EbpfProg::kEgress, cases, &EbpfProgTest::run);
  // Loopback passes whatever it carries.
  EXPECT_EQ(run(EbpfProg::kEgress, ip4("127.0.0.1", "192.0.2.9", 6, tcp(40000, 443, kSyn)), 1), 1);

  // Every denial was reported with its stable reason code.
  std::vector<EbpfEvent> ev = events();
  auto find = [&](const char* addr, uint16_t port, uint8_t proto) -> const EbpfEvent* {
    for (const auto& e : ev) {
      if (e.addr == *IpAddr::parse(addr) && e.port == port && e.proto == proto) return &e;
    }
    return nullptr;
  };
  const EbpfEvent* e = find("192.0.2.9", 443, 6);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->reason, static_cast<uint32_t>(AMLFW_REASON_NO_MATCH));
  EXPECT_EQ(e->hook, AMLFW_HOOK_EGRESS);
  EXPECT_FALSE(e->audit);
  EXPECT_EQ(e->generation, generation_);
  ASSERT_NE(e = find("198.51.100.7", 80, 6), nullptr);
  EXPECT_EQ(e->reason, static_cast<uint32_t>(AMLFW_REASON_PORT));
  ASSERT_NE(e = find("203.0.113.9", 5831, 6), nullptr);  // the address is in a udp-only group
  EXPECT_EQ(e->reason, static_cast<uint32_t>(AMLFW_REASON_PORT));
  ASSERT_NE(e = find("203.0.113.9", 53, 17), nullptr);
  EXPECT_EQ(e->reason, static_cast<uint32_t>(AMLFW_REASON_DNS));
  ASSERT_NE(e = find("198.51.100.7", 0, 1), nullptr);
  EXPECT_EQ(e->reason, static_cast<uint32_t>(AMLFW_REASON_PROTO));
  ASSERT_NE(e = find("2001:db8:444::7", 443, 6), nullptr);
  EXPECT_EQ(e->reason, static_cast<uint32_t>(AMLFW_REASON_NO_MATCH));
  size_t malformed = 0;
  for (const auto& x : ev) malformed += x.reason == AMLFW_REASON_MALFORMED;
  EXPECT_EQ(malformed, 1u);
  size_t denied = 0;
  for (const auto& c : cases) denied += c.want == 0;
  EXPECT_EQ(ev.size(), denied);

  auto stats = ebpf_read_stats(obj_->map_fd(EbpfMap::kStats));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[ebpf_stat_index(AMLFW_HOOK_EGRESS, AMLFW_STAT_DENY)], denied);
}

TEST_F(EbpfProgTest, LearnedAddressesHonourGroupPortAndExpiry) {
  install(policy(), groups());
  const Bytes syn443 = ip4("192.0.2.1", "192.0.2.77", 6, tcp(40000, 443, kSyn));
  const Bytes syn80 = ip4("192.0.2.1", "192.0.2.77", 6, tcp(40000, 80, kSyn));
  const Bytes old443 = ip4("192.0.2.1", "192.0.2.78", 6, tcp(40000, 443, kSyn));
  const Bytes v6syn = ip6("2001:db8:ffff::1", "2001:db8:77::1", 6, tcp(40000, 443, kSyn));
  EXPECT_EQ(run(EbpfProg::kEgress, syn443), 0);
  const int bit = image_.learn_bit("e_tcp_443");
  ASSERT_GE(bit, 0);
  Status s = ebpf_learn(gen_, uint64_t{1} << bit,
                        {{*IpAddr::parse("192.0.2.77"), 600}, {*IpAddr::parse("192.0.2.78"), 0},
                         {*IpAddr::parse("2001:db8:77::1"), 600}});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(run(EbpfProg::kEgress, syn443), 1);
  EXPECT_EQ(run(EbpfProg::kEgress, syn80), 0);   // learned for 443 only
  EXPECT_EQ(run(EbpfProg::kEgress, old443), 0);  // expired: absent
  EXPECT_EQ(run(EbpfProg::kEgress, v6syn), 1);
  std::vector<EbpfEvent> ev = events();
  bool expired = false, port = false;
  for (const auto& e : ev) {
    expired |= e.addr == *IpAddr::parse("192.0.2.78") && e.reason == AMLFW_REASON_EXPIRED;
    port |= e.addr == *IpAddr::parse("192.0.2.77") && e.port == 80 && e.reason == AMLFW_REASON_PORT;
  }
  EXPECT_TRUE(expired);
  EXPECT_TRUE(port);

  // Garbage collection removes the expired entry only.
  auto n = ebpf_collect_learned(gen_);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  auto all = ebpf_dump_learned(gen_);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);

  // A new generation carries live learned addresses over, bits renumbered by name: a group
  // sorting before e_tcp_443 moves its bit.
  auto next = groups();
  next.push_back(group("e_tcp_1000", Direction::kEgress, Proto::kTcp, {{1000, 1000}}, {}, true));
  auto img2 = build_ebpf_image(policy(), next);
  ASSERT_TRUE(img2.ok());
  ASSERT_NE(img2->learn_bit("e_tcp_443"), bit);
  auto g2 = ebpf_create_generation(*img2, generation_ + 1, nullptr);
  ASSERT_TRUE(g2.ok());
  EbpfFillStats st;
  ASSERT_TRUE(ebpf_carry_learned(gen_, image_.conf, *g2, img2->conf, &st).ok());
  EXPECT_EQ(st.learned_carried, 2u);
  ASSERT_TRUE(ebpf_publish(obj_->map_fds(), *g2, 1 - slot_, generation_ + 1).ok());
  EXPECT_EQ(run(EbpfProg::kEgress, syn443), 1);
  EXPECT_EQ(run(EbpfProg::kEgress, syn80), 0);
  EXPECT_EQ(run(EbpfProg::kEgress, ip4("192.0.2.1", "192.0.2.77", 6, tcp(40000, 1000, kSyn))), 0);
}

TEST_F(EbpfProgTest, IngressTable) {
  install(policy(), groups());
  const std::vector<Case> cases = {
      {"SYN from an allowed source to 22", ip4("192.0.2.130", "192.0.2.1", 6, tcp(40000, 22, kSyn)), 1},
      {"SYN from another source to 22", ip4("192.0.2.5", "192.0.2.1", 6, tcp(40000, 22, kSyn)), 0},
      {"SYN from an allowed source to 23", ip4("192.0.2.130", "192.0.2.1", 6, tcp(40000, 23, kSyn)), 0},
      {"ACK from anywhere (a reply)", ip4("203.0.113.9", "192.0.2.1", 6, tcp(443, 40000, kAck)), 1},
      {"SYN-ACK from anywhere (a reply)", ip4("203.0.113.9", "192.0.2.1", 6, tcp(443, 40000, kSyn | kAck)), 1},
      {"udp from nowhere known", ip4("203.0.113.9", "192.0.2.1", 17, udp(5831, 40001)), 0},
      {"DHCP offer", ip4("192.0.2.2", "255.255.255.255", 17, udp(67, 68)), 1},
      {"echo request", ip4("203.0.113.9", "192.0.2.1", 1, icmp(8)), 1},
      {"ipv6 SYN from an allowed source", ip6("2001:db8:22::9", "2001:db8:ffff::1", 6, tcp(40000, 22, kSyn)), 1},
      {"ipv6 SYN from another source", ip6("2001:db8:23::9", "2001:db8:ffff::1", 6, tcp(40000, 22, kSyn)), 0},
      {"ipv6 neighbour advertisement", ip6("fe80::2", "fe80::1", 58, icmp(136)), 1},
  };
  run_table(this, EbpfProg::kIngress, cases, &EbpfProgTest::run);

  // A UDP exchange we started lets its answer in (and only that answer).
  const Bytes answer = ip4("203.0.113.9", "192.0.2.1", 17, udp(5831, 40000));
  EXPECT_EQ(run(EbpfProg::kIngress, answer), 0);
  EXPECT_EQ(run(EbpfProg::kEgress, ip4("192.0.2.1", "203.0.113.9", 17, udp(40000, 5831))), 1);
  EXPECT_EQ(run(EbpfProg::kIngress, answer), 1);
  EXPECT_EQ(run(EbpfProg::kIngress, ip4("203.0.113.9", "192.0.2.1", 17, udp(5832, 40000))), 0);
  EXPECT_EQ(run(EbpfProg::kIngress, ip4("203.0.113.10", "192.0.2.1", 17, udp(5831, 40000))), 0);

  // inbound.enforce = false: nothing inbound is filtered.
  install(policy(Mode::kEnforce, false), groups());
  EXPECT_EQ(run(EbpfProg::kIngress, ip4("192.0.2.5", "192.0.2.1", 6, tcp(40000, 22, kSyn))), 1);
  EXPECT_EQ(run(EbpfProg::kIngress, ip4("203.0.113.9", "192.0.2.1", 17, udp(9, 40002))), 1);
}

TEST_F(EbpfProgTest, AuditModeReportsAndPasses) {
  install(policy(Mode::kAudit), groups());
  EXPECT_EQ(run(EbpfProg::kEgress, ip4("192.0.2.1", "203.0.113.9", 6, tcp(40000, 443, kSyn))), 1);
  EXPECT_EQ(run(EbpfProg::kIngress, ip4("192.0.2.5", "192.0.2.1", 6, tcp(40000, 22, kSyn))), 1);
  std::vector<EbpfEvent> ev = events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(ev[0].audit);
  EXPECT_EQ(ev[0].direction, Direction::kEgress);
  EXPECT_EQ(ev[1].direction, Direction::kIngress);
  EXPECT_EQ(ev[1].addr, *IpAddr::parse("192.0.2.5"));
  EXPECT_EQ(ev[1].port, 22);
  auto stats = ebpf_read_stats(obj_->map_fd(EbpfMap::kStats));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[ebpf_stat_index(AMLFW_HOOK_EGRESS, AMLFW_STAT_AUDIT)], 1u);
  EXPECT_EQ((*stats)[ebpf_stat_index(AMLFW_HOOK_EGRESS, AMLFW_STAT_DENY)], 0u);

  // Back to enforce: the same packet is dropped. One write switched the whole policy.
  install(policy(), groups());
  EXPECT_EQ(run(EbpfProg::kEgress, ip4("192.0.2.1", "203.0.113.9", 6, tcp(40000, 443, kSyn))), 0);
}

TEST_F(EbpfProgTest, NoGenerationFailsClosed) {
  // Nothing published: egress decisions deny, inbound passes (it is only filtered on request).
  EXPECT_EQ(run(EbpfProg::kEgress, ip4("192.0.2.1", "198.51.100.7", 6, tcp(40000, 443, kSyn))), 0);
  EXPECT_EQ(run(EbpfProg::kIngress, ip4("192.0.2.5", "192.0.2.1", 6, tcp(40000, 22, kSyn))), 1);
  std::vector<EbpfEvent> ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].reason, static_cast<uint32_t>(AMLFW_REASON_NO_POLICY));
}

}  // namespace
}  // namespace amlfw
