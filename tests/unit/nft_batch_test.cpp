// SPDX-License-Identifier: MIT
// The nftables batch builder without a kernel: every message we emit is parsed back with
// libnftnl and compared; interval encoding edge cases; paging of 100k elements; mapping
// of an error (sequence number, extended-ACK offset) back to the message and element.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <cstring>
#include <string>
#include <vector>

#include "daemon/nft_batch.h"
#include "daemon/nft_expr.h"

namespace amlfw {
namespace {

uint32_t v4(const char* s) { return IpAddr::parse(s)->v4value(); }
u128 v6(const char* s) { return IpAddr::parse(s)->value; }

struct ParsedElem {
  u128 key = 0;
  uint32_t len = 0;
  bool end = false;
  uint64_t timeout = 0;
};

// libnftnl builds each element nest with its index as the attribute type (the kernel
// ignores the type), while its own parser wants NFTA_LIST_ELEM: parse a copy with the
// types set as the kernel sends them in dumps.
std::vector<char> as_dumped(const nlmsghdr* nlh) {
  std::vector<char> copy(reinterpret_cast<const char*>(nlh), reinterpret_cast<const char*>(nlh) + nlh->nlmsg_len);
  auto* c = reinterpret_cast<nlmsghdr*>(copy.data());
  auto* tail = static_cast<char*>(mnl_nlmsg_get_payload_tail(c));
  auto* a = static_cast<nlattr*>(mnl_nlmsg_get_payload_offset(c, sizeof(nfgenmsg)));
  for (; mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<char*>(a))); a = mnl_attr_next(a)) {
    if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS) continue;
    char* end = reinterpret_cast<char*>(a) + mnl_attr_get_len(a);
    for (auto* e = static_cast<nlattr*>(mnl_attr_get_payload(a)); mnl_attr_ok(e, static_cast<int>(end - reinterpret_cast<char*>(e)));
         e = mnl_attr_next(e)) {
      e->nla_type = static_cast<uint16_t>((e->nla_type & ~NLA_TYPE_MASK) | NFTA_LIST_ELEM);
    }
  }
  return copy;
}

std::vector<ParsedElem> parse_elems(const nlmsghdr* orig, std::string* set_name = nullptr) {
  std::vector<char> copy = as_dumped(orig);
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(copy.data());
  NftnlSet s(nftnl_set_alloc());
  EXPECT_GE(nftnl_set_elems_nlmsg_parse(nlh, s.get()), 0);
  if (set_name && nftnl_set_is_set(s.get(), NFTNL_SET_NAME)) *set_name = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
  std::vector<ParsedElem> out;
  nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s.get());
  for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it)) {
    ParsedElem p;
    const auto* k = static_cast<const uint8_t*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &p.len));
    for (uint32_t i = 0; i < p.len; ++i) p.key = (p.key << 8) | k[i];
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS)) {
      p.end = nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END;
    }
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT)) p.timeout = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
    out.push_back(p);
  }
  nftnl_set_elems_iter_destroy(it);
  return out;
}

std::vector<std::string> expr_names(nftnl_rule* r) {
  std::vector<std::string> out;
  nftnl_expr_iter* it = nftnl_expr_iter_create(r);
  for (nftnl_expr* e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it)) {
    out.push_back(nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
  }
  nftnl_expr_iter_destroy(it);
  return out;
}

std::string comment_of(nftnl_rule* r) {
  uint32_t len = 0;
  const void* d = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
  std::string out;
  if (d == nullptr) return out;
  nftnl_udata_parse(d, len, [](const nftnl_udata* a, void* arg) -> int {
    if (nftnl_udata_type(a) == NFTNL_UDATA_RULE_COMMENT) *static_cast<std::string*>(arg) = static_cast<const char*>(nftnl_udata_get(a));
    return 0;
  }, &out);
  return out;
}

uint16_t msg_type(const nlmsghdr* nlh) { return nlh->nlmsg_type & 0xff; }

// Every message lies inside the iovecs, in order, and the iovecs hold nothing else.
void expect_pages_hold_messages(const NftBatch& b) {
  auto iov = b.iovecs();
  ASSERT_FALSE(iov.empty());
  std::vector<const nlmsghdr*> seen;
  for (const auto& v : iov) {
    int left = static_cast<int>(v.iov_len);
    for (auto* nlh = static_cast<const nlmsghdr*>(v.iov_base); mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
      seen.push_back(nlh);
    }
    EXPECT_EQ(left, 0);
    EXPECT_LE(v.iov_len, kNftBatchPage + 65535 + 4096);
  }
  ASSERT_EQ(seen.size(), b.messages().size() + 2);  // + BEGIN and END
  EXPECT_EQ(seen.front()->nlmsg_type, NFNL_MSG_BATCH_BEGIN);
  EXPECT_EQ(seen.back()->nlmsg_type, NFNL_MSG_BATCH_END);
  EXPECT_EQ(seen.front()->nlmsg_seq, b.first_seq());
  EXPECT_EQ(seen.back()->nlmsg_seq, b.last_seq());
  for (size_t i = 0; i < b.messages().size(); ++i) {
    EXPECT_EQ(seen[i + 1], b.messages()[i].nlh) << i;
    EXPECT_EQ(seen[i + 1]->nlmsg_seq, b.first_seq() + 1 + i);  // one sequence number per message
    EXPECT_TRUE(seen[i + 1]->nlmsg_flags & NLM_F_ACK);
  }
}

TEST(NftInterval, EncodesStartAndEndPlusOne) {
  auto e = nft_interval_elems4({v4("192.0.2.0"), v4("192.0.2.255")});
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].key, v4("192.0.2.0"));
  EXPECT_FALSE(e[0].end);
  EXPECT_EQ(e[1].key, v4("192.0.3.0"));
  EXPECT_TRUE(e[1].end);
  auto one = nft_interval_elems4({v4("198.51.100.7"), v4("198.51.100.7")});
  ASSERT_EQ(one.size(), 2u);
  EXPECT_EQ(one[1].key, v4("198.51.100.8"));
}

TEST(NftInterval, TopOfSpaceHasNoEnd) {
  EXPECT_EQ(nft_interval_elems4({v4("255.255.255.0"), 0xffffffffu}).size(), 1u);
  EXPECT_EQ(nft_interval_elems4({0, 0xffffffffu}).size(), 1u);  // 0.0.0.0/0
  EXPECT_EQ(nft_interval_elems6({0, ~u128{0}}).size(), 1u);     // ::/0
  auto e = nft_interval_elems6({v6("2001:db8::"), v6("2001:db8::ffff")});
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].key, v6("2001:db8::1:0"));
}

TEST(NftInterval, DecodesDumpBackToRanges) {
  std::vector<Range4> r4;
  std::vector<Range6> r6;
  // As nft -f leaves them: a zero interval end first, unsorted dump order.
  std::vector<NftIntervalElem> elems = {{v4("203.0.114.0"), true}, {0, true}, {v4("203.0.113.0"), false},
                                        {v4("198.51.100.8"), true}, {v4("198.51.100.7"), false},
                                        {v4("255.255.255.0"), false}};
  EXPECT_TRUE(nft_ranges_from_elems(false, elems, &r4, &r6));
  ASSERT_EQ(r4.size(), 3u);
  EXPECT_EQ(r4[0], (Range4{v4("198.51.100.7"), v4("198.51.100.7")}));
  EXPECT_EQ(r4[1], (Range4{v4("203.0.113.0"), v4("203.0.113.255")}));
  EXPECT_EQ(r4[2], (Range4{v4("255.255.255.0"), 0xffffffffu}));
}

TEST(NftInterval, NonCanonicalDumpIsFlagged) {
  std::vector<Range4> r4;
  std::vector<Range6> r6;
  // Adjacent ranges: [.0-.9] and [.10-.19] would have been merged by us.
  EXPECT_FALSE(nft_ranges_from_elems(false, {{10, false}, {20, true}, {20, false}, {30, true}}, &r4, &r6));
  r4.clear();
  EXPECT_FALSE(nft_ranges_from_elems(false, {{10, false}, {15, false}, {30, true}}, &r4, &r6));  // two starts
  r4.clear();
  EXPECT_FALSE(nft_ranges_from_elems(false, {{40, true}}, &r4, &r6));  // orphan end
}

TEST(NftBatchRoundTrip, EveryMessageParsesBack) {
  NftBatch b(1000);
  b.add_table();
  NftChainSpec chain;
  chain.name = "output";
  b.add_chain(chain);
  b.flush_chain("output");
  NftSetSpec p4{"p4_e_tcp_443", false, NftSetKind::kPrefixes};
  NftSetSpec n6{"n6_e_tcp_443", true, NftSetKind::kLearned};
  NftSetSpec dns{"dns4", false, NftSetKind::kPlain};
  b.add_set(p4);
  b.add_set(n6);
  b.add_set(dns);
  std::vector<Range4> ranges = {{v4("192.0.2.0"), v4("192.0.2.127")}, {v4("203.0.113.9"), v4("203.0.113.9")}};
  b.interval_elems4(NftElemOp::kAdd, "p4_e_tcp_443", ranges);
  std::vector<IpAddr> learned = {*IpAddr::parse("2001:db8::7"), *IpAddr::parse("2001:db8::8")};
  b.addr_elems(NftElemOp::kAdd, "n6_e_tcp_443", learned, 300000, false);
  b.interval_elems4(NftElemOp::kDelete, "p4_e_tcp_443", std::span<const Range4>(ranges.data(), 1));

  NftRuleSpec rule;
  NftMatch nf;
  nf.kind = NftMatch::Kind::kNfproto;
  nf.value = kNfprotoIpv4;
  NftMatch in_set;
  in_set.kind = NftMatch::Kind::kAddrInSet;
  in_set.set = "p4_e_tcp_443";
  NftMatch l4;
  l4.kind = NftMatch::Kind::kL4proto;
  l4.value = kIpprotoTcp;
  NftMatch ports;
  ports.kind = NftMatch::Kind::kDports;
  ports.ports = {PortRange{80, 80}, PortRange{8000, 8010}};
  rule.matches = {nf, in_set, l4, ports};
  rule.counter = true;
  rule.comment = "NR2,NR3";
  b.add_rule("output", rule);
  b.delete_set("p4_old");
  b.delete_chain("input");
  b.finish();
  expect_pages_hold_messages(b);

  const auto& m = b.messages();
  size_t i = 0;
  {  // table
    ASSERT_EQ(msg_type(m[i].nlh), NFT_MSG_NEWTABLE);
    NftnlTable t(nftnl_table_alloc());
    ASSERT_GE(nftnl_table_nlmsg_parse(m[i].nlh, t.get()), 0);
    EXPECT_STREQ(nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME), "amlfw");
    EXPECT_EQ(nftnl_table_get_u32(t.get(), NFTNL_TABLE_FAMILY), NFPROTO_INET);
    EXPECT_FALSE(m[i].nlh->nlmsg_flags & NLM_F_EXCL);  // adopting an existing table is fine
    ++i;
  }
  {  // chain
    ASSERT_EQ(msg_type(m[i].nlh), NFT_MSG_NEWCHAIN);
    NftnlChain c(nftnl_chain_alloc());
    ASSERT_GE(nftnl_chain_nlmsg_parse(m[i].nlh, c.get()), 0);
    EXPECT_STREQ(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME), "output");
    EXPECT_EQ(nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM), static_cast<uint32_t>(NF_INET_LOCAL_OUT));
    EXPECT_EQ(nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_POLICY), static_cast<uint32_t>(NF_DROP));
    EXPECT_EQ(nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO), 0);
    EXPECT_STREQ(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TYPE), "filter");
    ++i;
  }
  {  // flush chain: DELRULE naming only the chain
    ASSERT_EQ(msg_type(m[i].nlh), NFT_MSG_DELRULE);
    NftnlRule r(nftnl_rule_alloc());
    ASSERT_GE(nftnl_rule_nlmsg_parse(m[i].nlh, r.get()), 0);
    EXPECT_STREQ(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN), "output");
    EXPECT_FALSE(nftnl_rule_is_set(r.get(), NFTNL_RULE_HANDLE));
    ++i;
  }
  for (const auto* want : {&p4, &n6, &dns}) {
    ASSERT_EQ(msg_type(m[i].nlh), NFT_MSG_NEWSET);
    NftnlSet s(nftnl_set_alloc());
    ASSERT_GE(nftnl_set_nlmsg_parse(m[i].nlh, s.get()), 0);
    EXPECT_EQ(want->name, nftnl_set_get_str(s.get(), NFTNL_SET_NAME));
    EXPECT_EQ(nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_LEN), want->v6 ? 16u : 4u);
    EXPECT_EQ(nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_TYPE), want->v6 ? kNftTypeIpv6Addr : kNftTypeIpv4Addr);
    uint32_t flags = nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS);
    EXPECT_EQ(flags, want->kind == NftSetKind::kPrefixes  ? uint32_t{NFT_SET_INTERVAL}
                     : want->kind == NftSetKind::kLearned ? uint32_t{NFT_SET_TIMEOUT}
                                                          : 0u);
    EXPECT_TRUE(m[i].nlh->nlmsg_flags & NLM_F_EXCL);
    ++i;
  }
  {  // interval elements
    ASSERT_EQ(msg_type(m[i].nlh), NFT_MSG_NEWSETELEM);
    std::string name;
    auto e = parse_elems(m[i].nlh, &name);
    EXPECT_EQ(name, "p4_e_tcp_443");
    ASSERT_EQ(e.size(), 4u);
    EXPECT_EQ(e[0].key, v4("192.0.2.0"));
    EXPECT_FALSE(e[0].end);
    EXPECT_EQ(e[1].key, v4("192.0.2.128"));
    EXPECT_TRUE(e[1].end);
    EXPECT_EQ(e[2].key, v4("203.0.113.9"));
    EXPECT_EQ(e[3].key, v4("203.0.113.10"));
    EXPECT_TRUE(e[3].end);
    for (const auto& x : e) EXPECT_EQ(x.len, 4u);
    EXPECT_TRUE(m[i].nlh->nlmsg_flags & NLM_F_EXCL);
    ++i;
  }
  {  // learned elements with a timeout, no EXCL (re-adding is no error)
    ASSERT_EQ(msg_type(m[i].nlh), NFT_MSG_NEWSETELEM);
    auto e = parse_elems(m[i].nlh);
    ASSERT_EQ(e.size(), 2u);
    EXPECT_EQ(e[0].key, v6("2001:db8::7"));
    EXPECT_EQ(e[0].len, 16u);
    EXPECT_EQ(e[0].timeout, 300000u);
    EXPECT_EQ(e[1].key, v6("2001:db8::8"));
    EXPECT_FALSE(m[i].nlh->nlmsg_flags & NLM_F_EXCL);
    ++i;
  }
  {  // deletion
    ASSERT_EQ(msg_type(m[i].nlh), NFT_MSG_DELSETELEM);
    auto e = parse_elems(m[i].nlh);
    ASSERT_EQ(e.size(), 2u);
    EXPECT_EQ(e[1].key, v4("192.0.2.128"));
    EXPECT_TRUE(e[1].end);
    ++i;
  }
  {  // the rule's anonymous port set, its elements, then the rule
    ASSERT_EQ(msg_type(m[i].nlh), NFT_MSG_NEWSET);
    NftnlSet s(nftnl_set_alloc());
    ASSERT_GE(nftnl_set_nlmsg_parse(m[i].nlh, s.get()), 0);
    EXPECT_STREQ(nftnl_set_get_str(s.get(), NFTNL_SET_NAME), kNftAnonSetName);
    const uint32_t set_id = nftnl_set_get_u32(s.get(), NFTNL_SET_ID);
    EXPECT_EQ(nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS),
              uint32_t{NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL});
    EXPECT_EQ(nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_TYPE), kNftTypeInetService);
    ++i;
    ASSERT_EQ(msg_type(m[i].nlh), NFT_MSG_NEWSETELEM);
    auto e = parse_elems(m[i].nlh);
    ASSERT_EQ(e.size(), 4u);  // 80, 81 end, 8000, 8011 end
    EXPECT_EQ(e[0].key, 80u);
    EXPECT_EQ(e[1].key, 81u);
    EXPECT_TRUE(e[1].end);
    EXPECT_EQ(e[3].key, 8011u);
    ++i;
    ASSERT_EQ(msg_type(m[i].nlh), NFT_MSG_NEWRULE);
    NftnlRule r(nftnl_rule_alloc());
    ASSERT_GE(nftnl_rule_nlmsg_parse(m[i].nlh, r.get()), 0);
    EXPECT_STREQ(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN), "output");
    EXPECT_EQ(expr_names(r.get()), (std::vector<std::string>{"meta", "cmp", "payload", "lookup", "meta", "cmp",
                                                             "payload", "lookup", "counter", "immediate"}));
    EXPECT_EQ(comment_of(r.get()), "NR2,NR3");
    EXPECT_TRUE(m[i].nlh->nlmsg_flags & NLM_F_APPEND);
    // The port lookup names the anonymous set by its batch id.
    nftnl_expr_iter* it = nftnl_expr_iter_create(r.get());
    std::vector<std::pair<std::string, uint32_t>> lookups;
    for (nftnl_expr* x = nftnl_expr_iter_next(it); x; x = nftnl_expr_iter_next(it)) {
      if (std::string(nftnl_expr_get_str(x, NFTNL_EXPR_NAME)) != "lookup") continue;
      lookups.emplace_back(nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET),
                           nftnl_expr_is_set(x, NFTNL_EXPR_LOOKUP_SET_ID) ? nftnl_expr_get_u32(x, NFTNL_EXPR_LOOKUP_SET_ID) : 0);
    }
    nftnl_expr_iter_destroy(it);
    ASSERT_EQ(lookups.size(), 2u);
    EXPECT_EQ(lookups[0].first, "p4_e_tcp_443");
    EXPECT_EQ(lookups[1].first, kNftAnonSetName);
    EXPECT_EQ(lookups[1].second, set_id);
    ++i;
  }
  EXPECT_EQ(msg_type(m[i++].nlh), NFT_MSG_DELSET);
  EXPECT_EQ(msg_type(m[i++].nlh), NFT_MSG_DELCHAIN);
  EXPECT_EQ(i, m.size());
  EXPECT_EQ(b.stats().rules, 1u);
  EXPECT_EQ(b.stats().elements, 4u + 2u + 2u);  // named sets only
  EXPECT_EQ(b.stats().anon_sets, 1u);
}

TEST(NftBatchRoundTrip, CtStateAndRejectMatchNftBytecode) {
  NftRuleSpec est;
  NftMatch ct;
  ct.kind = NftMatch::Kind::kCtEstablished;
  est.matches = {ct};
  auto r = nft_build_rule("output", est, [](const NftAnonSet&) { return 0u; });
  // nft: [ ct load state ] [ bitwise & 0x6 ^ 0 ] [ cmp neq 0 ] [ immediate accept ]
  EXPECT_EQ(expr_names(r.get()), (std::vector<std::string>{"ct", "bitwise", "cmp", "immediate"}));
  nftnl_expr_iter* it = nftnl_expr_iter_create(r.get());
  nftnl_expr_iter_next(it);
  nftnl_expr* bw = nftnl_expr_iter_next(it);
  uint32_t len = 0;
  const auto* mask = static_cast<const uint32_t*>(nftnl_expr_get(bw, NFTNL_EXPR_BITWISE_MASK, &len));
  ASSERT_EQ(len, 4u);
  EXPECT_EQ(*mask, 0x6u);  // established | related
  nftnl_expr_iter_destroy(it);

  NftRuleSpec rej;
  rej.counter = true;
  rej.verdict = NftVerdict::kRejectIcmpx;
  auto r2 = nft_build_rule("output", rej, [](const NftAnonSet&) { return 0u; });
  EXPECT_EQ(expr_names(r2.get()), (std::vector<std::string>{"counter", "reject"}));
}

TEST(NftBatchRoundTrip, PortDispatchIsAVerdictMapAndJumps) {
  NftBatch b(1);
  NftChainSpec g;
  g.name = "g_e_tcp_443";
  g.regular = true;
  b.add_chain(g);
  NftRuleSpec vmap;
  NftMatch l4;
  l4.kind = NftMatch::Kind::kL4proto;
  l4.value = kIpprotoTcp;
  vmap.matches = {l4};
  vmap.verdict = NftVerdict::kDportVmap;
  vmap.vmap = {{PortRange{0, 52}, "g_all"}, {PortRange{443, 443}, "out_tcp_443"}, {PortRange{444, 65535}, "g_all"}};
  b.add_rule("output", vmap);
  NftRuleSpec jump;
  jump.verdict = NftVerdict::kJump;
  jump.target = "g_e_tcp_443";
  b.add_rule("out_tcp_443", jump);
  b.finish();
  expect_pages_hold_messages(b);
  const auto& m = b.messages();
  ASSERT_EQ(m.size(), 5u);  // chain, map, its elements, vmap rule, jump rule
  {  // a regular chain: no hook, type, priority or policy
    NftnlChain c(nftnl_chain_alloc());
    ASSERT_GE(nftnl_chain_nlmsg_parse(m[0].nlh, c.get()), 0);
    EXPECT_STREQ(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME), "g_e_tcp_443");
    EXPECT_FALSE(nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM));
    EXPECT_FALSE(nftnl_chain_is_set(c.get(), NFTNL_CHAIN_POLICY));
    EXPECT_FALSE(nftnl_chain_is_set(c.get(), NFTNL_CHAIN_TYPE));
  }
  NftnlSet s(nftnl_set_alloc());
  ASSERT_GE(nftnl_set_nlmsg_parse(m[1].nlh, s.get()), 0);
  EXPECT_STREQ(nftnl_set_get_str(s.get(), NFTNL_SET_NAME), kNftAnonMapName);
  EXPECT_EQ(nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS),
            uint32_t{NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL | NFT_SET_MAP});
  EXPECT_EQ(nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_TYPE), kNftTypeInetService);
  EXPECT_EQ(nftnl_set_get_u32(s.get(), NFTNL_SET_DATA_TYPE), uint32_t{NFT_DATA_VERDICT});
  {  // 0 -> g_all, 53 end, 443 -> out_tcp_443, 444 -> g_all (no end: top of the space)
    std::vector<char> copy = as_dumped(m[2].nlh);
    NftnlSet e(nftnl_set_alloc());
    ASSERT_GE(nftnl_set_elems_nlmsg_parse(reinterpret_cast<const nlmsghdr*>(copy.data()), e.get()), 0);
    std::vector<std::string> got;
    nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(e.get());
    for (nftnl_set_elem* x = nftnl_set_elems_iter_next(it); x; x = nftnl_set_elems_iter_next(it)) {
      uint32_t len = 0;
      const auto* k = static_cast<const uint8_t*>(nftnl_set_elem_get(x, NFTNL_SET_ELEM_KEY, &len));
      std::string one = std::to_string((k[0] << 8) | k[1]);
      if (nftnl_set_elem_is_set(x, NFTNL_SET_ELEM_FLAGS) &&
          (nftnl_set_elem_get_u32(x, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END)) {
        one += " end";
      }
      if (nftnl_set_elem_is_set(x, NFTNL_SET_ELEM_CHAIN)) {
        EXPECT_EQ(nftnl_set_elem_get_u32(x, NFTNL_SET_ELEM_VERDICT), static_cast<uint32_t>(NFT_JUMP));
        one += std::string(" jump ") + nftnl_set_elem_get_str(x, NFTNL_SET_ELEM_CHAIN);
      }
      got.push_back(one);
    }
    nftnl_set_elems_iter_destroy(it);
    EXPECT_EQ(got, (std::vector<std::string>{"0 jump g_all", "53 end", "443 jump out_tcp_443", "444 jump g_all"}));
  }
  {  // nft: [ meta load l4proto ] [ cmp eq 6 ] [ payload load 2b @ transport + 2 ] [ lookup ... dreg 0 ]
    NftnlRule r(nftnl_rule_alloc());
    ASSERT_GE(nftnl_rule_nlmsg_parse(m[3].nlh, r.get()), 0);
    EXPECT_EQ(expr_names(r.get()), (std::vector<std::string>{"meta", "cmp", "payload", "lookup"}));
    nftnl_expr_iter* it = nftnl_expr_iter_create(r.get());
    nftnl_expr* x = nullptr;
    for (int k = 0; k < 4; ++k) x = nftnl_expr_iter_next(it);
    EXPECT_EQ(nftnl_expr_get_u32(x, NFTNL_EXPR_LOOKUP_DREG), uint32_t{NFT_REG_VERDICT});
    EXPECT_STREQ(nftnl_expr_get_str(x, NFTNL_EXPR_LOOKUP_SET), kNftAnonMapName);
    EXPECT_EQ(nftnl_expr_get_u32(x, NFTNL_EXPR_LOOKUP_SET_ID), nftnl_set_get_u32(s.get(), NFTNL_SET_ID));
    nftnl_expr_iter_destroy(it);
  }
  {  // jump g_e_tcp_443: [ immediate reg 0 jump -> g_e_tcp_443 ]
    NftnlRule r(nftnl_rule_alloc());
    ASSERT_GE(nftnl_rule_nlmsg_parse(m[4].nlh, r.get()), 0);
    EXPECT_STREQ(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN), "out_tcp_443");
    ASSERT_EQ(expr_names(r.get()), (std::vector<std::string>{"immediate"}));
    nftnl_expr_iter* it = nftnl_expr_iter_create(r.get());
    nftnl_expr* x = nftnl_expr_iter_next(it);
    EXPECT_EQ(nftnl_expr_get_u32(x, NFTNL_EXPR_IMM_VERDICT), static_cast<uint32_t>(NFT_JUMP));
    EXPECT_STREQ(nftnl_expr_get_str(x, NFTNL_EXPR_IMM_CHAIN), "g_e_tcp_443");
    nftnl_expr_iter_destroy(it);
  }
  EXPECT_EQ(nft_rule_text(vmap), "meta l4proto tcp th dport vmap { 0-52 : jump g_all, 443 : jump out_tcp_443, "
                                 "444-65535 : jump g_all }");
  EXPECT_EQ(nft_rule_text(jump), "jump g_e_tcp_443");
}

TEST(NftBatchPaging, HundredThousandPrefixesSplitIntoPagesAndParseBack) {
  std::vector<Range4> ranges;
  for (uint32_t i = 0; i < 100000; ++i) {
    const uint32_t lo = 0x0A000000u + i * 512;  // 10.0.0.0 + i*512: /24 blocks with gaps
    ranges.push_back({lo, lo + 255});
  }
  NftBatch b(7);
  b.interval_elems4(NftElemOp::kAdd, "p4_e_tcp_443", ranges);
  b.finish();
  EXPECT_EQ(b.stats().elements, 200000u);
  EXPECT_EQ(b.stats().element_msgs, 100u);  // 2000 elements a message
  auto iov = b.iovecs();
  EXPECT_GT(iov.size(), 20u);               // many pages, one sendmsg
  expect_pages_hold_messages(b);
  std::vector<NftIntervalElem> all;
  for (const auto& m : b.messages()) {
    EXPECT_LT(m.nlh->nlmsg_len, 65535u + 512u);  // the element nest length is 16 bits
    for (const auto& e : parse_elems(m.nlh)) all.push_back({e.key, e.end});
  }
  std::vector<Range4> back;
  std::vector<Range6> back6;
  EXPECT_TRUE(nft_ranges_from_elems(false, all, &back, &back6));
  EXPECT_EQ(back, ranges);
}

TEST(NftBatchErrors, SequenceMapsToMessageAndOffsetToElement) {
  NftBatch b(100);
  b.add_table();
  std::vector<Range4> ranges = {{v4("192.0.2.0"), v4("192.0.2.255")},
                                {v4("203.0.113.0"), v4("203.0.113.255")},
                                {v4("198.51.100.3"), v4("198.51.100.9")}};
  b.interval_elems4(NftElemOp::kAdd, "p4_e_tcp_443", ranges);
  b.finish();
  EXPECT_EQ(b.describe(100, std::nullopt), "batch begin");
  EXPECT_EQ(b.describe(101, std::nullopt), "add table inet amlfw");
  EXPECT_EQ(b.describe(102, std::nullopt),
            "add element to set 'p4_e_tcp_443' [192.0.2.0/24 and 2 more]");
  EXPECT_EQ(b.describe(103, std::nullopt), "batch end");
  EXPECT_EQ(b.describe(999, std::nullopt), "unknown message");

  // The kernel's extended ACK points at the refused element's attribute: element 3 (the
  // end of the second range) and element 4 (the start of the third).
  const nlmsghdr* nlh = b.find(102)->nlh;
  std::vector<uint32_t> offsets;
  const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  const auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
  for (; mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<const char*>(a))); a = mnl_attr_next(a)) {
    if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS) continue;
    const auto* end = reinterpret_cast<const char*>(a) + mnl_attr_get_len(a);
    for (const auto* e = static_cast<const nlattr*>(mnl_attr_get_payload(a));
         mnl_attr_ok(e, static_cast<int>(end - reinterpret_cast<const char*>(e))); e = mnl_attr_next(e)) {
      offsets.push_back(static_cast<uint32_t>(reinterpret_cast<const char*>(e) - reinterpret_cast<const char*>(nlh)));
    }
  }
  ASSERT_EQ(offsets.size(), 6u);
  EXPECT_EQ(b.describe(102, offsets[3]), "add element to set 'p4_e_tcp_443' [203.0.113.0/24]");
  EXPECT_EQ(b.describe(102, offsets[4] + 4), "add element to set 'p4_e_tcp_443' [198.51.100.3-198.51.100.9]");
}

TEST(NftBatchErrors, LearnedElementNamesAddressAndTimeout) {
  NftBatch b(1);
  std::vector<IpAddr> a = {*IpAddr::parse("203.0.113.7")};
  b.addr_elems(NftElemOp::kAdd, "n4_e_tcp_443", a, 120000, false);
  b.finish();
  EXPECT_EQ(b.describe(2, std::nullopt), "add element to set 'n4_e_tcp_443' (timeout 120s) [203.0.113.7]");
}

TEST(NftBatchGenid, BeginCarriesGeneration) {
  NftBatch b(1, 42u);
  b.add_table();
  b.finish();
  const auto* begin = static_cast<const nlmsghdr*>(b.iovecs()[0].iov_base);
  ASSERT_EQ(begin->nlmsg_type, NFNL_MSG_BATCH_BEGIN);
  const auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(begin, sizeof(nfgenmsg)));
  ASSERT_EQ(mnl_attr_get_type(a), NFNL_BATCH_GENID);
  EXPECT_EQ(ntohl(mnl_attr_get_u32(a)), 42u);
}

}  // namespace
}  // namespace amlfw
