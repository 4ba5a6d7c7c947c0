// SPDX-License-Identifier: MIT
// NFLOG packet messages as the kernel sends them, built here with libmnl, parsed back.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/in.h>

#include <vector>

#include "daemon/nflog.h"

namespace amlfw {
namespace {

std::vector<char> message(const std::vector<uint8_t>& payload, bool indev, bool outdev = false) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_INET;
  mnl_attr_put_str(nlh, NFULA_PREFIX, "amlfw deny: ");
  if (indev) mnl_attr_put_u32(nlh, NFULA_IFINDEX_INDEV, htonl(2));
  if (!indev || outdev) mnl_attr_put_u32(nlh, NFULA_IFINDEX_OUTDEV, htonl(2));
  mnl_attr_put(nlh, NFULA_PAYLOAD, payload.size(), payload.data());
  buf.resize(nlh->nlmsg_len);
  return buf;
}

std::vector<uint8_t> ipv4_tcp(const char* dst, uint16_t port) {
  std::vector<uint8_t> p(40, 0);
  p[0] = 0x45;
  p[9] = IPPROTO_TCP;
  inet_pton(AF_INET, dst, p.data() + 16);
  p[22] = static_cast<uint8_t>(port >> 8);
  p[23] = static_cast<uint8_t>(port);
  return p;
}

TEST(Nflog, Ipv4TcpEgress) {
  auto m = message(ipv4_tcp("203.0.113.200", 443), false);
  NflogPacket pkt;
  ASSERT_TRUE(parse_nflog_message(m.data(), m.size(), &pkt));
  EXPECT_EQ(pkt.dst.str(), "203.0.113.200");
  EXPECT_EQ(pkt.port, 443);
  EXPECT_EQ(pkt.proto, IPPROTO_TCP);
  EXPECT_TRUE(pkt.egress);
}

TEST(Nflog, Ipv6UdpIngress) {
  std::vector<uint8_t> p(48, 0);
  p[0] = 0x60;
  p[6] = IPPROTO_UDP;
  inet_pton(AF_INET6, "2001:db8::5", p.data() + 24);
  p[42] = 0x16;
  p[43] = 0xc7;  // 5831
  auto m = message(p, true);
  NflogPacket pkt;
  ASSERT_TRUE(parse_nflog_message(m.data(), m.size(), &pkt));
  EXPECT_EQ(pkt.dst.str(), "2001:db8::5");
  EXPECT_EQ(pkt.port, 5831);
  EXPECT_FALSE(pkt.egress);
}

TEST(Nflog, ForwardedPacketOfAPodIsEgress) {
  // [forward]: the pods chain logs on the forward hook, with an input and an output device.
  auto m = message(ipv4_tcp("203.0.113.200", 443), true, true);
  NflogPacket pkt;
  ASSERT_TRUE(parse_nflog_message(m.data(), m.size(), &pkt));
  EXPECT_EQ(pkt.dst.str(), "203.0.113.200");
  EXPECT_TRUE(pkt.egress);
}

TEST(Nflog, ShortAndGarbagePayloadsAreRefused) {
  NflogPacket pkt;
  for (size_t n : {0u, 1u, 19u}) {
    auto p = ipv4_tcp("192.0.2.1", 80);
    p.resize(n);
    auto m = message(p, false);
    EXPECT_FALSE(parse_nflog_message(m.data(), m.size(), &pkt)) << n;
  }
  auto bad_ihl = ipv4_tcp("192.0.2.1", 80);
  bad_ihl[0] = 0x4f;  // 60-byte header in a 40-byte payload
  auto m = message(bad_ihl, false);
  EXPECT_FALSE(parse_nflog_message(m.data(), m.size(), &pkt));
  auto truncated = message(ipv4_tcp("192.0.2.1", 80), false);
  EXPECT_FALSE(parse_nflog_message(truncated.data(), 10, &pkt));
  // A header-only IPv4 packet: address known, no port.
  auto hdr = ipv4_tcp("192.0.2.1", 80);
  hdr.resize(20);
  auto mh = message(hdr, false);
  ASSERT_TRUE(parse_nflog_message(mh.data(), mh.size(), &pkt));
  EXPECT_EQ(pkt.port, 0);
}

}  // namespace
}  // namespace amlfw
