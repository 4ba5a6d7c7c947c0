// SPDX-License-Identifier: MIT
#include "daemon/nft_batch.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/chain.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <algorithm>
#include <unistd.h>

#include "daemon/nft_expr.h"

namespace amlfw {
namespace {

constexpr u128 kTop4 = 0xffffffffu;
constexpr u128 kTop6 = ~u128{0};
// nft's NFT_NLMSG_MAXSIZE: one message may run this far past the page limit.
constexpr uint32_t kOverrun = 65535 + 4096;

void key_bytes(u128 v, uint32_t len, uint8_t* out) {
  for (uint32_t i = 0; i < len; ++i) out[len - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string range_text(const NftMsgInfo& m, size_t i) {
  if (!m.r4.empty()) return nft_range4_text(m.r4[i]);
  if (!m.r6.empty()) return nft_range6_text(m.r6[i]);
  if (!m.addrs.empty()) return m.addrs[i].str();
  return "";
}
size_t item_count(const NftMsgInfo& m) { return m.r4.size() + m.r6.size() + m.addrs.size(); }

// Which item (range or address) of an element message holds element number `elem`.
size_t item_of_element(const NftMsgInfo& m, size_t elem) {
  if (!m.interval) return elem;
  size_t e = 0;
  for (size_t i = 0; i < item_count(m); ++i) {
    size_t n = 2;
    if (!m.r4.empty() && m.r4[i].hi == kTop4) n = 1;
    if (!m.r6.empty() && m.r6[i].hi == kTop6) n = 1;
    if (elem < e + n) return i;
    e += n;
  }
  return item_count(m) - 1;
}

}  // namespace

std::vector<NftIntervalElem> nft_interval_elems4(const Range4& r) {
  std::vector<NftIntervalElem> out{{r.lo, false}};
  if (r.hi != kTop4) out.push_back({u128{r.hi} + 1, true});
  return out;
}

std::vector<NftIntervalElem> nft_interval_elems6(const Range6& r) {
  std::vector<NftIntervalElem> out{{r.lo, false}};
  if (r.hi != kTop6) out.push_back({r.hi + 1, true});
  return out;
}

bool nft_ranges_from_elems(bool v6, std::vector<NftIntervalElem> elems, std::vector<Range4>* out4,
                           std::vector<Range6>* out6) {
  // Ends sort before starts at the same key: [a, k-1] then [k, ...] (adjacent: not clean).
  std::sort(elems.begin(), elems.end(), [](const NftIntervalElem& a, const NftIntervalElem& b) {
    if (a.key != b.key) return a.key < b.key;
    return a.end && !b.end;
  });
  const u128 top = v6 ? kTop6 : kTop4;
  bool clean = true;
  bool open = false;
  u128 lo = 0;
  std::optional<u128> last_end;
  auto emit = [&](u128 a, u128 b) {
    if (last_end && *last_end + 1 >= a) clean = false;  // adjacent or overlapping: merge-worthy
    last_end = b;
    if (v6) {
      out6->push_back({a, b});
    } else {
      out4->push_back({static_cast<uint32_t>(a), static_cast<uint32_t>(b)});
    }
  };
  for (const auto& e : elems) {
    if (e.end) {
      if (!open) {
        // nft (before 1.0.7) adds an interval end at 0 to every interval set: harmless.
        if (e.key != 0) clean = false;
        continue;
      }
      if (e.key == 0) return false;
      emit(lo, e.key - 1);
      open = false;
    } else {
      if (open) clean = false;  // two starts in a row: the first one's range is unclear
      open = true;
      lo = e.key;
    }
  }
  if (open) emit(lo, top);
  return clean;
}

void NftBatch::Deleter::operator()(nftnl_batch* b) const { nftnl_batch_free(b); }

NftBatch::NftBatch(uint32_t first_seq, std::optional<uint32_t> genid)
    : batch_(nftnl_batch_alloc(kNftBatchPage, kOverrun)), first_seq_(first_seq), seq_(first_seq) {
  nlmsghdr* nlh = nftnl_batch_begin(buffer(), seq_);
  if (genid) mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(*genid));
  nftnl_batch_update(batch_.get());
}

NftBatch::~NftBatch() = default;

char* NftBatch::buffer() { return static_cast<char*>(nftnl_batch_buffer(batch_.get())); }

void NftBatch::commit(NftMsgInfo info, bool counts_as_rule) {
  auto* nlh = reinterpret_cast<nlmsghdr*>(buffer());
  const uint32_t len = nlh->nlmsg_len;
  nftnl_batch_update(batch_.get());
  // nftnl_batch_update moves a message that overflows the page to a new page: either way
  // it now ends at the current write position.
  info.nlh = reinterpret_cast<const nlmsghdr*>(buffer() - len);
  stats_.messages++;
  stats_.bytes += len;
  if (counts_as_rule) stats_.rules++;
  if (info.anonymous) {
    stats_.anon_sets += info.type == NFT_MSG_NEWSET ? 1 : 0;
  } else if (info.type == NFT_MSG_NEWSETELEM || info.type == NFT_MSG_DELSETELEM) {
    stats_.element_msgs++;
    stats_.elements += info.elements;
  }
  msgs_.push_back(std::move(info));
}

void NftBatch::add_table() {
  auto t = nft_build_table();
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer(), NFT_MSG_NEWTABLE, NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, ++seq_);
  nftnl_table_nlmsg_build_payload(nlh, t.get());
  commit({seq_, NFT_MSG_NEWTABLE, "add table inet " + std::string(kNftTable)});
}

void NftBatch::delete_table() {
  auto t = nft_build_table();
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer(), NFT_MSG_DELTABLE, NFPROTO_INET, NLM_F_ACK, ++seq_);
  nftnl_table_nlmsg_build_payload(nlh, t.get());
  commit({seq_, NFT_MSG_DELTABLE, "delete table inet " + std::string(kNftTable)});
}

void NftBatch::add_chain(const NftChainSpec& c) {
  auto ch = nft_build_chain(c);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer(), NFT_MSG_NEWCHAIN, NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, ++seq_);
  nftnl_chain_nlmsg_build_payload(nlh, ch.get());
  commit({seq_, NFT_MSG_NEWCHAIN, "add chain " + quoted(c.name)});
}

void NftBatch::flush_chain(std::string_view chain) {
  NftnlRule r = nft_chain_rule(chain);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer(), NFT_MSG_DELRULE, NFPROTO_INET, NLM_F_ACK, ++seq_);
  nftnl_rule_nlmsg_build_payload(nlh, r.get());
  commit({seq_, NFT_MSG_DELRULE, "flush chain " + quoted(chain)});
}

void NftBatch::delete_chain(std::string_view chain) {
  NftnlChain c = nft_table_chain(chain);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer(), NFT_MSG_DELCHAIN, NFPROTO_INET, NLM_F_ACK, ++seq_);
  nftnl_chain_nlmsg_build_payload(nlh, c.get());
  commit({seq_, NFT_MSG_DELCHAIN, "delete chain " + quoted(chain)});
}

uint32_t NftBatch::anon_set(uint32_t key_type, uint32_t key_len, bool interval, std::vector<NftIntervalElem> elems,
                            std::string_view what, const std::vector<std::string>& jumps) {
  const uint32_t id = next_set_id_++;
  const bool map = !jumps.empty();
  NftnlSet set = nft_table_set(map ? kNftAnonMapName : kNftAnonSetName);
  nftnl_set* s = set.get();
  nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, key_type);
  nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, key_len);
  nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | (interval ? NFT_SET_INTERVAL : 0) |
                                            (map ? NFT_SET_MAP : 0));
  if (map) {
    nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
    nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 0);
  }
  nftnl_set_set_u32(s, NFTNL_SET_ID, id);
  nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, static_cast<uint32_t>(elems.size()));
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(buffer(), NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, ++seq_);
  nftnl_set_nlmsg_build_payload(nlh, s);
  NftMsgInfo set_info{seq_, NFT_MSG_NEWSET,
                      std::string(map ? "add anonymous map for " : "add anonymous set for ") + std::string(what)};
  set_info.anonymous = true;
  commit(std::move(set_info));
  NftMsgInfo info{0, NFT_MSG_NEWSETELEM,
                  std::string(map ? "add element to anonymous map for " : "add element to anonymous set for ") +
                      std::string(what)};
  info.anonymous = true;
  build_elems_msg(NftElemOp::kAdd, map ? kNftAnonMapName : kNftAnonSetName, id, key_len, elems, 0, std::move(info),
                  true, jumps);
  return id;
}

void NftBatch::add_rule(std::string_view chain, const NftRuleSpec& spec) {
  const std::string text = nft_rule_text(spec);
  auto make_set = [&](const NftAnonSet& a) {
    std::vector<NftIntervalElem> elems;
    std::vector<std::string> jumps;  // verdict maps: per element ("" for an interval end)
    const bool map = !a.jumps.empty();
    if (a.interval) {
      for (size_t i = 0; i < a.ranges.size(); ++i) {
        const auto [lo, hi] = a.ranges[i];
        elems.push_back({lo, false});
        if (map) jumps.push_back(a.jumps[i]);
        // No end where the next range starts right after (adjacent map entries), as nft does.
        const bool next_adjacent = i + 1 < a.ranges.size() && a.ranges[i + 1].first == hi + 1;
        if (hi != a.max && !next_adjacent) {
          elems.push_back({u128{hi} + 1, true});
          if (map) jumps.emplace_back();
        }
      }
    } else {
      for (size_t i = 0; i < a.keys.size(); ++i) {
        elems.push_back({a.keys[i], false});
        if (map) jumps.push_back(a.jumps[i]);
      }
    }
    return anon_set(a.key_type, a.key_len, a.interval, std::move(elems), "rule '" + text + "'", jumps);
  };
  auto r = nft_build_rule(chain, spec, make_set);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer(), NFT_MSG_NEWRULE, NFPROTO_INET,
                                        NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, ++seq_);
  nftnl_rule_nlmsg_build_payload(nlh, r.get());
  commit({seq_, NFT_MSG_NEWRULE, "add rule to chain " + quoted(chain) + " '" + text + "'"}, true);
}

void NftBatch::add_set(const NftSetSpec& spec) {
  auto set = nft_build_set(spec, next_set_id_++);
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(buffer(), NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, ++seq_);
  nftnl_set_nlmsg_build_payload(nlh, set.get());
  commit({seq_, NFT_MSG_NEWSET, "add set " + quoted(spec.name)});
}

void NftBatch::delete_set(std::string_view name) {
  NftnlSet set = nft_table_set(name);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer(), NFT_MSG_DELSET, NFPROTO_INET, NLM_F_ACK, ++seq_);
  nftnl_set_nlmsg_build_payload(nlh, set.get());
  commit({seq_, NFT_MSG_DELSET, "delete set " + quoted(name)});
}

void NftBatch::flush_set(std::string_view name) {
  NftnlSet set = nft_table_set(name);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer(), NFT_MSG_DELSETELEM, NFPROTO_INET, NLM_F_ACK, ++seq_);
  nftnl_set_elems_nlmsg_build_payload(nlh, set.get());
  commit({seq_, NFT_MSG_DELSETELEM, "flush set " + quoted(name)});
}

void NftBatch::build_elems_msg(NftElemOp op, std::string_view set_name, uint32_t set_id, uint32_t key_len,
                               std::span<const NftIntervalElem> elems, uint64_t timeout_ms, NftMsgInfo info,
                               bool excl, std::span<const std::string> jumps) {
  NftnlSet set = nft_table_set(set_name);
  nftnl_set* s = set.get();
  if (set_id != 0) nftnl_set_set_u32(s, NFTNL_SET_ID, set_id);
  for (size_t i = 0; i < elems.size(); ++i) {
    const auto& e = elems[i];
    nftnl_set_elem* el = nftnl_set_elem_alloc();
    uint8_t key[16];
    key_bytes(e.key, key_len, key);
    nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, key, key_len);
    if (e.end) nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
    if (i < jumps.size() && !jumps[i].empty()) {
      nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_VERDICT, static_cast<uint32_t>(NFT_JUMP));
      nftnl_set_elem_set_str(el, NFTNL_SET_ELEM_CHAIN, jumps[i].c_str());
    }
    if (timeout_ms != 0 && op == NftElemOp::kAdd) nftnl_set_elem_set_u64(el, NFTNL_SET_ELEM_TIMEOUT, timeout_ms);
    nftnl_set_elem_add(s, el);
  }
  const bool add = op == NftElemOp::kAdd;
  const uint16_t type = add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM;
  const uint16_t flags = add ? (NLM_F_CREATE | (excl ? NLM_F_EXCL : 0) | NLM_F_ACK) : NLM_F_ACK;
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer(), type, NFPROTO_INET, flags, ++seq_);
  nftnl_set_elems_nlmsg_build_payload(nlh, s);
  info.seq = seq_;
  info.type = type;
  info.elements = elems.size();
  info.timeout_ms = timeout_ms;
  commit(std::move(info));
}

void NftBatch::interval_elems4(NftElemOp op, std::string_view set, std::span<const Range4> ranges) {
  const std::string what = std::string(op == NftElemOp::kAdd ? "add element to set " : "delete element from set ") +
                           quoted(set);
  std::vector<NftIntervalElem> elems;
  size_t i = 0;
  while (i < ranges.size()) {
    elems.clear();
    NftMsgInfo info;
    info.what = what;
    info.interval = true;
    while (i < ranges.size() && elems.size() + 2 <= kNftElemsPerMsg4) {
      for (const auto& e : nft_interval_elems4(ranges[i])) elems.push_back(e);
      info.r4.push_back(ranges[i]);
      ++i;
    }
    build_elems_msg(op, set, 0, 4, elems, 0, std::move(info));
  }
}

void NftBatch::interval_elems6(NftElemOp op, std::string_view set, std::span<const Range6> ranges) {
  const std::string what = std::string(op == NftElemOp::kAdd ? "add element to set " : "delete element from set ") +
                           quoted(set);
  std::vector<NftIntervalElem> elems;
  size_t i = 0;
  while (i < ranges.size()) {
    elems.clear();
    NftMsgInfo info;
    info.what = what;
    info.interval = true;
    while (i < ranges.size() && elems.size() + 2 <= kNftElemsPerMsg6) {
      for (const auto& e : nft_interval_elems6(ranges[i])) elems.push_back(e);
      info.r6.push_back(ranges[i]);
      ++i;
    }
    build_elems_msg(op, set, 0, 16, elems, 0, std::move(info));
  }
}

void NftBatch::addr_elems(NftElemOp op, std::string_view set, std::span<const IpAddr> addrs, uint64_t timeout_ms,
                          bool excl) {
  const std::string what = std::string(op == NftElemOp::kAdd ? "add element to set " : "delete element from set ") +
                           quoted(set);
  std::vector<NftIntervalElem> elems;
  size_t i = 0;
  while (i < addrs.size()) {
    elems.clear();
    NftMsgInfo info;
    info.what = what;
    const bool v6 = addrs[i].v6;
    while (i < addrs.size() && elems.size() < kNftAddrsPerMsg && addrs[i].v6 == v6) {
      elems.push_back({addrs[i].value, false});
      info.addrs.push_back(addrs[i]);
      ++i;
    }
    build_elems_msg(op, set, 0, v6 ? 16 : 4, elems, timeout_ms, std::move(info), excl);
  }
}

void NftBatch::finish() {
  if (finished_) return;
  nftnl_batch_end(buffer(), ++seq_);
  nftnl_batch_update(batch_.get());
  finished_ = true;
}

size_t NftBatch::byte_size() const {
  size_t n = 0;
  for (const auto& v : iovecs()) n += v.iov_len;
  return n;
}

std::vector<iovec> NftBatch::iovecs() const {
  std::vector<iovec> iov(static_cast<size_t>(nftnl_batch_iovec_len(batch_.get())));
  nftnl_batch_iovec(batch_.get(), iov.data(), static_cast<uint32_t>(iov.size()));
  // The last page may be empty (a page switch right before END); drop empty entries.
  std::erase_if(iov, [](const iovec& v) { return v.iov_len == 0; });
  return iov;
}

const NftMsgInfo* NftBatch::find(uint32_t seq) const {
  if (seq <= first_seq_ || seq > first_seq_ + msgs_.size()) return nullptr;
  const NftMsgInfo& m = msgs_[seq - first_seq_ - 1];
  return m.seq == seq ? &m : nullptr;
}

std::string NftBatch::describe(uint32_t seq, std::optional<uint32_t> bad_attr_offset) const {
  if (seq == first_seq_) return "batch begin";
  if (finished_ && seq == seq_) return "batch end";
  const NftMsgInfo* m = find(seq);
  if (m == nullptr) return "unknown message";
  std::string out = m->what;
  const size_t items = item_count(*m);
  if (items == 0) return out;
  std::optional<size_t> which;
  if (bad_attr_offset && m->nlh != nullptr) {
    // Walk NFTA_SET_ELEM_LIST_ELEMENTS: the n-th nested element holding the offset.
    const auto* base = reinterpret_cast<const char*>(m->nlh);
    const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(m->nlh));
    const auto* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(m->nlh, sizeof(nfgenmsg)));
    for (; mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr))); attr = mnl_attr_next(attr)) {
      if (mnl_attr_get_type(attr) != NFTA_SET_ELEM_LIST_ELEMENTS) continue;
      const auto* nest_end = reinterpret_cast<const char*>(attr) + mnl_attr_get_len(attr);
      const auto* e = static_cast<const nlattr*>(mnl_attr_get_payload(attr));
      for (size_t n = 0; mnl_attr_ok(e, static_cast<int>(nest_end - reinterpret_cast<const char*>(e)));
           e = mnl_attr_next(e), ++n) {
        const auto off = static_cast<uint32_t>(reinterpret_cast<const char*>(e) - base);
        if (*bad_attr_offset >= off && *bad_attr_offset < off + e->nla_len) which = item_of_element(*m, n);
      }
    }
  }
  if (m->timeout_ms != 0) out += " (timeout " + std::to_string(m->timeout_ms / 1000) + "s)";
  if (which && *which < items) return out + " [" + range_text(*m, *which) + "]";
  out += " [" + range_text(*m, 0);
  if (items > 1) out += " and " + std::to_string(items - 1) + " more";
  return out + "]";
}

}  // namespace amlfw
