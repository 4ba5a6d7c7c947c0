// SPDX-License-Identifier: MIT
#include "daemon/nft_expr.h"

#include <arpa/inet.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace amlfw {

void NftnlDeleter::operator()(nftnl_rule* r) const { nftnl_rule_free(r); }
void NftnlDeleter::operator()(nftnl_set* s) const { nftnl_set_free(s); }
void NftnlDeleter::operator()(nftnl_chain* c) const { nftnl_chain_free(c); }
void NftnlDeleter::operator()(nftnl_table* t) const { nftnl_table_free(t); }

namespace {

// nft's byte order ids kept in set userdata (BYTEORDER_BIG_ENDIAN).
constexpr uint32_t kByteorderBig = 2;
constexpr uint32_t kCtStateEstablished = NF_CT_STATE_BIT(IP_CT_ESTABLISHED);
constexpr uint32_t kCtStateRelated = NF_CT_STATE_BIT(IP_CT_RELATED);

void add(nftnl_rule* r, nftnl_expr* e) { nftnl_rule_add_expr(r, e); }

void meta_load(nftnl_rule* r, uint32_t key) {
  nftnl_expr* e = nftnl_expr_alloc("meta");
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
  add(r, e);
}

void cmp(nftnl_rule* r, uint32_t op, const void* data, uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("cmp");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
  add(r, e);
}

void payload(nftnl_rule* r, uint32_t base, uint32_t offset, uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("payload");
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
  add(r, e);
}

void lookup(nftnl_rule* r, const char* set, uint32_t set_id, bool verdict_map = false) {
  nftnl_expr* e = nftnl_expr_alloc("lookup");
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
  if (verdict_map) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
  if (set_id != 0) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
  add(r, e);
}

void cmp_u8(nftnl_rule* r, uint8_t v) { cmp(r, NFT_CMP_EQ, &v, 1); }

void ports_match(nftnl_rule* r, const std::vector<PortRange>& ports, const NftMakeSet& make_set) {
  payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
  if (ports.size() == 1 && ports[0].lo == ports[0].hi) {
    uint16_t p = htons(ports[0].lo);
    cmp(r, NFT_CMP_EQ, &p, 2);
    return;
  }
  if (ports.size() == 1) {
    uint16_t lo = htons(ports[0].lo), hi = htons(ports[0].hi);
    cmp(r, NFT_CMP_GTE, &lo, 2);
    cmp(r, NFT_CMP_LTE, &hi, 2);
    return;
  }
  NftAnonSet s;
  s.key_type = kNftTypeInetService;
  s.key_len = 2;
  for (const auto& p : ports) s.interval = s.interval || p.lo != p.hi;
  for (const auto& p : ports) {
    if (s.interval) {
      s.ranges.emplace_back(p.lo, p.hi);
    } else {
      s.keys.push_back(p.lo);
    }
  }
  s.max = 65535;
  lookup(r, kNftAnonSetName, make_set(s));
}

void match(nftnl_rule* r, const NftMatch& m, const NftMakeSet& make_set) {
  switch (m.kind) {
    case NftMatch::Kind::kOifLo:
    case NftMatch::Kind::kIifLo: {
      meta_load(r, m.kind == NftMatch::Kind::kOifLo ? NFT_META_OIF : NFT_META_IIF);
      uint32_t idx = kLoopbackIfindex;
      cmp(r, NFT_CMP_EQ, &idx, 4);
      return;
    }
    case NftMatch::Kind::kCtEstablished: {
      nftnl_expr* e = nftnl_expr_alloc("ct");
      nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
      nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
      add(r, e);
      uint32_t mask = kCtStateEstablished | kCtStateRelated, zero = 0;
      e = nftnl_expr_alloc("bitwise");
      nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
      nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
      nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
      nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
      nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
      add(r, e);
      cmp(r, NFT_CMP_NEQ, &zero, 4);
      return;
    }
    case NftMatch::Kind::kNfproto:
      meta_load(r, NFT_META_NFPROTO);
      cmp_u8(r, m.value);
      return;
    case NftMatch::Kind::kL4proto:
      meta_load(r, NFT_META_L4PROTO);
      cmp_u8(r, m.value);
      return;
    case NftMatch::Kind::kL4protoTcpUdp: {
      meta_load(r, NFT_META_L4PROTO);
      NftAnonSet s;
      s.key_type = kNftTypeInetProto;
      s.key_len = 1;
      s.keys = {kIpprotoTcp, kIpprotoUdp};
      lookup(r, kNftAnonSetName, make_set(s));
      return;
    }
    case NftMatch::Kind::kAddrInSet:
      if (m.v6) {
        payload(r, NFT_PAYLOAD_NETWORK_HEADER, m.src ? 8 : 24, 16);
      } else {
        payload(r, NFT_PAYLOAD_NETWORK_HEADER, m.src ? 12 : 16, 4);
      }
      lookup(r, m.set.c_str(), 0);
      return;
    case NftMatch::Kind::kAddrEq: {
      uint8_t bytes[16];
      m.addr.to_bytes(bytes);
      if (m.addr.v6) {
        payload(r, NFT_PAYLOAD_NETWORK_HEADER, m.src ? 8 : 24, 16);
        cmp(r, NFT_CMP_EQ, bytes, 16);
      } else {
        payload(r, NFT_PAYLOAD_NETWORK_HEADER, m.src ? 12 : 16, 4);
        cmp(r, NFT_CMP_EQ, bytes, 4);
      }
      return;
    }
    case NftMatch::Kind::kPorts: {
      // nft merges `th sport A th dport B` into one 4-byte load and compare.
      payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 4);
      uint16_t both[2] = {htons(m.sport), htons(m.dport)};
      cmp(r, NFT_CMP_EQ, both, 4);
      return;
    }
    case NftMatch::Kind::kDports:
      ports_match(r, m.ports, make_set);
      return;
    case NftMatch::Kind::kMarkNot: {
      meta_load(r, NFT_META_MARK);
      cmp(r, NFT_CMP_NEQ, &m.mark, 4);
      return;
    }
    case NftMatch::Kind::kAddrNotPrefix: {
      // Byte-aligned prefixes only (127.0.0.0/8, ::1/128): nft loads just the prefix bytes.
      uint8_t bytes[16];
      m.addr.to_bytes(bytes);
      const uint32_t len = m.value / 8;
      const uint32_t offset = m.v6 ? (m.src ? 8 : 24) : (m.src ? 12 : 16);
      payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, len);
      cmp(r, NFT_CMP_NEQ, bytes, len);
      return;
    }
    case NftMatch::Kind::kAddrPrefix: {
      // As nft does: a byte-aligned prefix loads and compares just its bytes; another loads
      // the whole address and masks it.
      uint8_t bytes[16];
      m.addr.to_bytes(bytes);
      const uint32_t size = m.v6 ? 16 : 4;
      const uint32_t offset = m.v6 ? (m.src ? 8 : 24) : (m.src ? 12 : 16);
      if (m.value % 8 == 0) {
        payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, m.value / 8);
        cmp(r, NFT_CMP_EQ, bytes, m.value / 8);
        return;
      }
      payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, size);
      uint8_t mask[16] = {}, zero[16] = {};
      for (uint32_t bit = 0; bit < m.value; ++bit) mask[bit / 8] |= static_cast<uint8_t>(0x80u >> (bit % 8));
      nftnl_expr* e = nftnl_expr_alloc("bitwise");
      nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
      nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
      nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, size);
      nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, size);
      nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, size);
      add(r, e);
      cmp(r, NFT_CMP_EQ, bytes, size);
      return;
    }
    case NftMatch::Kind::kIifname: {
      // As nft does: an exact name compares all IFNAMSIZ bytes (NUL padded); "cali*" compares
      // the prefix "cali" only.
      meta_load(r, NFT_META_IIFNAME);
      char name[16] = {};
      const bool prefix = !m.set.empty() && m.set.back() == '*';
      const size_t n = std::min<size_t>(m.set.size() - (prefix ? 1 : 0), sizeof(name) - 1);
      std::memcpy(name, m.set.data(), n);
      cmp(r, NFT_CMP_EQ, name, prefix ? static_cast<uint32_t>(n) : sizeof(name));
      return;
    }
    case NftMatch::Kind::kIcmpTypes: {
      payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
      if (m.types.size() == 1) {
        cmp_u8(r, m.types[0]);
        return;
      }
      NftAnonSet s;
      s.key_type = m.v6 ? kNftTypeIcmpv6Type : kNftTypeIcmpType;
      s.key_len = 1;
      for (uint8_t t : m.types) s.keys.push_back(t);
      lookup(r, kNftAnonSetName, make_set(s));
      return;
    }
  }
}

}  // namespace

NftnlSet nft_table_set(std::string_view name) {
  NftnlSet s(nftnl_set_alloc());
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, std::string(kNftTable).c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, std::string(name).c_str());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
  return s;
}

NftnlChain nft_table_chain(std::string_view name) {
  NftnlChain c(nftnl_chain_alloc());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, std::string(kNftTable).c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, std::string(name).c_str());
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
  return c;
}

NftnlRule nft_chain_rule(std::string_view chain) {
  NftnlRule r(nftnl_rule_alloc());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, std::string(kNftTable).c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, std::string(chain).c_str());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
  return r;
}

NftnlRule nft_build_rule(std::string_view chain, const NftRuleSpec& spec, const NftMakeSet& make_set) {
  NftnlRule rule = nft_chain_rule(chain);
  nftnl_rule* r = rule.get();
  for (const auto& m : spec.matches) match(r, m, make_set);
  if (spec.limit_log) {
    nftnl_expr* e = nftnl_expr_alloc("limit");
    nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_RATE, kNftLogRatePerSecond);
    nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_UNIT, 1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_BURST, kNftLogBurst);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_FLAGS, 0);
    add(r, e);
    e = nftnl_expr_alloc("log");
    nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, spec.log_prefix.c_str());
    if (spec.log_group != 0) {
      nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, spec.log_group);
      nftnl_expr_set_u32(e, NFTNL_EXPR_LOG_SNAPLEN, kNftLogSnaplen);
    }
    add(r, e);
  }
  if (spec.counter) add(r, nftnl_expr_alloc("counter"));
  switch (spec.verdict) {
    case NftVerdict::kNone: break;
    case NftVerdict::kAccept: {
      nftnl_expr* e = nftnl_expr_alloc("immediate");
      nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
      nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
      add(r, e);
      break;
    }
    case NftVerdict::kJump: {
      nftnl_expr* e = nftnl_expr_alloc("immediate");
      nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
      nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(NFT_JUMP));
      nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, spec.target.c_str());
      add(r, e);
      break;
    }
    case NftVerdict::kDportVmap: {
      // th dport vmap { ... }: the port, looked up in an anonymous verdict map.
      payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
      NftAnonSet s;
      s.key_type = kNftTypeInetService;
      s.key_len = 2;
      for (const auto& v : spec.vmap) s.interval = s.interval || v.ports.lo != v.ports.hi;
      for (const auto& v : spec.vmap) {
        if (s.interval) {
          s.ranges.emplace_back(v.ports.lo, v.ports.hi);
        } else {
          s.keys.push_back(v.ports.lo);
        }
        s.jumps.push_back(v.chain);
      }
      s.max = 65535;
      lookup(r, kNftAnonMapName, make_set(s), true);
      break;
    }
    case NftVerdict::kRejectTcpReset:
    case NftVerdict::kRejectIcmpx: {
      nftnl_expr* e = nftnl_expr_alloc("reject");
      bool tcp = spec.verdict == NftVerdict::kRejectTcpReset;
      nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, tcp ? NFT_REJECT_TCP_RST : NFT_REJECT_ICMPX_UNREACH);
      nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, tcp ? 0 : NFT_REJECT_ICMPX_ADMIN_PROHIBITED);
      add(r, e);
      break;
    }
    case NftVerdict::kDnat: {
      uint8_t addr[16];
      spec.nat_addr.to_bytes(addr);
      nftnl_expr* e = nftnl_expr_alloc("immediate");
      nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
      nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, addr, spec.nat_addr.v6 ? 16 : 4);
      add(r, e);
      uint16_t port = htons(spec.nat_port);
      e = nftnl_expr_alloc("immediate");
      nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_2);
      nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &port, 2);
      add(r, e);
      e = nftnl_expr_alloc("nat");
      nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
      nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, spec.nat_addr.v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
      nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
      nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
      nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
      add(r, e);
      break;
    }
  }
  if (!spec.comment.empty()) {
    nftnl_udata_buf* ud = nftnl_udata_buf_alloc(256);
    nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, spec.comment.c_str());
    nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
    nftnl_udata_buf_free(ud);
  }
  return rule;
}

NftnlChain nft_build_chain(const NftChainSpec& spec) {
  NftnlChain c = nft_table_chain(spec.name);
  if (spec.regular) return c;  // no hook, type, priority or policy
  static_assert(kNftHookPrerouting == NF_INET_PRE_ROUTING && kNftHookInput == NF_INET_LOCAL_IN &&
                kNftHookForward == NF_INET_FORWARD && kNftHookOutput == NF_INET_LOCAL_OUT);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, nft_chain_hook(spec));
  nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, nft_chain_priority(spec));
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, nft_chain_policy_accept(spec) ? NF_ACCEPT : NF_DROP);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, std::string(nft_chain_type(spec)).c_str());
  return c;
}

NftnlTable nft_build_table() {
  NftnlTable t(nftnl_table_alloc());
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, std::string(kNftTable).c_str());
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FLAGS, 0);
  return t;
}

NftnlSet nft_build_set(const NftSetSpec& spec, uint32_t set_id) {
  NftnlSet set = nft_table_set(spec.name);
  nftnl_set* s = set.get();
  nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, spec.v6 ? kNftTypeIpv6Addr : kNftTypeIpv4Addr);
  nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, spec.v6 ? 16 : 4);
  uint32_t flags = 0;
  if (spec.kind == NftSetKind::kPrefixes) flags |= NFT_SET_INTERVAL;
  if (spec.kind == NftSetKind::kLearned) flags |= NFT_SET_TIMEOUT;
  nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags);
  nftnl_set_set_u32(s, NFTNL_SET_ID, set_id);
  nftnl_udata_buf* ud = nftnl_udata_buf_alloc(64);
  nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, kByteorderBig);
  nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
  nftnl_udata_buf_free(ud);
  return set;
}

}  // namespace amlfw
