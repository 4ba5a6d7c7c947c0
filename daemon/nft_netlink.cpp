// SPDX-License-Identifier: MIT
#include "daemon/nft_netlink.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "daemon/nft_expr.h"

namespace amlfw {
namespace {

// Replies of a dump come in skbs of at most 32 KiB; a reply to a batch is small.
constexpr size_t kRecvBuf = 64 * 1024;
// Receive-queue cost of one ACK (skb truesize with headroom), to size SO_RCVBUF.
constexpr size_t kAckCost = 2048;

// Makes the socket buffer `opt` hold `want` bytes; `*have` is what it is known to hold (the
// kernel doubles what is set), so that the common small batch costs no system call.
void raise_buffer(int fd, int force_opt, int opt, size_t want, size_t* have) {
  if (*have >= want) return;
  int cur = 0;
  socklen_t len = sizeof(cur);
  if (getsockopt(fd, SOL_SOCKET, opt, &cur, &len) == 0 && static_cast<size_t>(cur) >= want * 2) {
    *have = static_cast<size_t>(cur) / 2;
    return;
  }
  int v = static_cast<int>(std::min<size_t>(want, 1u << 30));
  // The FORCE variant ignores net.core.[rw]mem_max (needs CAP_NET_ADMIN, which we need anyway).
  if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof(v)) != 0) setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
  if (getsockopt(fd, SOL_SOCKET, opt, &cur, &len) == 0) *have = static_cast<size_t>(cur) / 2;
}

struct Reply {
  uint32_t seq = 0;
  int err = 0;
  std::optional<uint32_t> offset;
  std::string ext_msg;
};

// Reads an NLMSG_ERROR (an ACK when error == 0) with its extended-ACK attributes.
Reply parse_error(const nlmsghdr* nlh) {
  Reply r;
  if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return r;
  const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  r.seq = e->msg.nlmsg_seq;
  r.err = -e->error;
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return r;
  size_t off = sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - sizeof(nlmsghdr);
  const size_t payload = mnl_nlmsg_get_payload_len(nlh);
  if (off >= payload) return r;
  const auto* p = static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + off;
  size_t left = payload - off;
  const auto* a = reinterpret_cast<const nlattr*>(p);
  while (mnl_attr_ok(a, static_cast<int>(left))) {
    if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_get_payload_len(a) > 0) {
      r.ext_msg.assign(static_cast<const char*>(mnl_attr_get_payload(a)), strnlen(static_cast<const char*>(mnl_attr_get_payload(a)), mnl_attr_get_payload_len(a)));
    }
    if (mnl_attr_get_type(a) == NLMSGERR_ATTR_OFFS && mnl_attr_get_payload_len(a) >= 4) r.offset = mnl_attr_get_u32(a);
    left -= MNL_ALIGN(a->nla_len);
    a = mnl_attr_next(a);
  }
  return r;
}

std::string errno_text(int err) {
  if (err == 0) return "ok";
  return std::strerror(err);
}

// Dump callbacks -------------------------------------------------------------------------

struct ElemParse {
  NftSetDump* set;
  std::vector<NftIntervalElem> interval;
};

u128 key_value(const void* data, uint32_t len) {
  u128 v = 0;
  const auto* b = static_cast<const uint8_t*>(data);
  for (uint32_t i = 0; i < len; ++i) v = (v << 8) | b[i];
  return v;
}

int parse_elems(const nlmsghdr* nlh, ElemParse* st) {
  NftnlSet s(nftnl_set_alloc());
  if (nftnl_set_elems_nlmsg_parse(nlh, s.get()) < 0) return MNL_CB_ERROR;
  nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s.get());
  for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e != nullptr; e = nftnl_set_elems_iter_next(it)) {
    uint32_t len = 0;
    const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
    if (key == nullptr || len == 0 || len > 16) continue;
    uint32_t flags = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) ? nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) : 0;
    st->set->elements++;
    if (st->set->flags & NFT_SET_INTERVAL) {
      st->interval.push_back({key_value(key, len), (flags & NFT_SET_ELEM_INTERVAL_END) != 0});
    } else {
      NftLearnedDump d;
      d.addr = IpAddr::from_bytes(len == 16, static_cast<const uint8_t*>(key));
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT)) d.timeout_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION)) {
        d.expires_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);
      }
      st->set->addrs.push_back(d);
    }
  }
  nftnl_set_elems_iter_destroy(it);
  return MNL_CB_OK;
}

std::string rule_comment(nftnl_rule* r) {
  if (!nftnl_rule_is_set(r, NFTNL_RULE_USERDATA)) return "";
  uint32_t len = 0;
  const void* data = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
  std::string out;
  nftnl_udata_parse(
      data, len,
      [](const nftnl_udata* attr, void* arg) -> int {
        if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT) {
          const char* s = static_cast<const char*>(nftnl_udata_get(attr));
          static_cast<std::string*>(arg)->assign(s, strnlen(s, nftnl_udata_len(attr)));
        }
        return 0;
      },
      &out);
  return out;
}

}  // namespace

const NftSetDump* NftTableDump::find_set(std::string_view name) const {
  for (const auto& s : sets) {
    if (s.name == name) return &s;
  }
  return nullptr;
}
const NftChainDump* NftTableDump::find_chain(std::string_view name) const {
  for (const auto& c : chains) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

NftSocket::NftSocket(mnl_socket* nl) : nl_(nl), portid_(mnl_socket_get_portid(nl)) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  seq_ = static_cast<uint32_t>(ts.tv_sec);
}
NftSocket::NftSocket(NftSocket&& o) noexcept
    : nl_(std::exchange(o.nl_, nullptr)), portid_(o.portid_), seq_(o.seq_) {}
NftSocket& NftSocket::operator=(NftSocket&& o) noexcept {
  if (this != &o) {
    if (nl_ != nullptr) mnl_socket_close(nl_);
    nl_ = std::exchange(o.nl_, nullptr);
    portid_ = o.portid_;
    seq_ = o.seq_;
  }
  return *this;
}
NftSocket::~NftSocket() {
  if (nl_ != nullptr) mnl_socket_close(nl_);
}

Result<NftSocket> NftSocket::open() {
  mnl_socket* nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (nl == nullptr) return sys_error("nftables: open netlink socket");
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(nl);
    return sys_error("nftables: bind netlink socket", err);
  }
  int one = 1;
  // Errors carry the offset of the attribute (element) refused, and not the whole request.
  mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
  mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
  return NftSocket(nl);
}

uint32_t NftSocket::reserve_seq(uint32_t count) {
  uint32_t first = seq_ + 1;
  seq_ += count + 1;
  return first;
}

Status NftSocket::send(const NftBatch& b, int* errno_out, uint32_t* failed_seq) {
  if (errno_out) *errno_out = 0;
  if (failed_seq) *failed_seq = 0;
  seq_ = std::max(seq_, b.last_seq());
  const int fd = mnl_socket_get_fd(nl_);
  std::vector<iovec> iov = b.iovecs();
  size_t total = 0;
  for (const auto& v : iov) total += v.iov_len;
  if (iov.size() > 1024) return runtime_error("nft batch: too large (" + std::to_string(total) + " bytes)");
  // The whole batch is one skb: the send buffer must hold it; every reply must fit the
  // receive queue until we read it (the kernel answers during sendmsg).
  raise_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, total + 4096, &sndbuf_);
  raise_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, (b.messages().size() + 2) * kAckCost + 65536, &rcvbuf_);

  sockaddr_nl snl{};
  snl.nl_family = AF_NETLINK;
  msghdr msg{};
  msg.msg_name = &snl;
  msg.msg_namelen = sizeof(snl);
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  ssize_t n = sendmsg(fd, &msg, 0);
  if (n < 0) return sys_error("nft batch: sendmsg (" + std::to_string(total) + " bytes)");

  std::vector<char> buf(kRecvBuf);
  std::map<uint32_t, Reply> errors;
  size_t acks = 0;
  bool lost = false;
  for (;;) {
    ssize_t len = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (len < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        lost = true;
        continue;
      }
      return sys_error("nft batch: read replies");
    }
    int left = static_cast<int>(len);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, left);
         nlh = mnl_nlmsg_next(nlh, &left)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;  // no echo requested: nothing else expected
      Reply r = parse_error(nlh);
      if (r.seq < b.first_seq() || r.seq > b.last_seq()) continue;  // not this batch's
      if (r.err == 0) {
        acks++;
      } else if (!errors.count(r.seq)) {
        errors[r.seq] = r;
      }
    }
    // Every message acknowledged: nothing more comes for this batch (no recv to find the
    // queue empty: a learned address's answer waits for this call).
    if (errors.empty() && !lost && acks >= b.messages().size()) break;
  }
  if (!errors.empty()) {
    const Reply& r = errors.begin()->second;
    if (errno_out) *errno_out = r.err;
    if (failed_seq) *failed_seq = r.seq;
    std::string text = "nft batch seq " + std::to_string(r.seq) + " (" + b.describe(r.seq, r.offset) + "): " +
                       errno_text(r.err);
    if (!r.ext_msg.empty()) text += " (" + r.ext_msg + ")";
    if (errors.size() > 1) text += " (and " + std::to_string(errors.size() - 1) + " more errors)";
    return runtime_error(text);
  }
  if (lost || acks < b.messages().size()) {
    if (errno_out) *errno_out = -1;
    return runtime_error("nft batch: " + std::to_string(b.messages().size() - std::min(acks, b.messages().size())) +
                         " of " + std::to_string(b.messages().size()) +
                         " replies lost (receive buffer overrun): the outcome is unknown; the next apply re-reads the table");
  }
  return {};
}

Status NftSocket::request(char* req, const std::function<int(const nlmsghdr*)>& cb, int* err) {
  *err = 0;
  auto* nlh = reinterpret_cast<nlmsghdr*>(req);
  const uint32_t seq = nlh->nlmsg_seq;
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) return sys_error("nftables: send request");
  std::vector<char> buf(kRecvBuf);
  for (;;) {
    ssize_t len = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
    if (len < 0) {
      if (errno == EINTR) continue;
      return sys_error("nftables: read reply");
    }
    int left = static_cast<int>(len);
    for (auto* m = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, left); m = mnl_nlmsg_next(m, &left)) {
      if (m->nlmsg_seq != seq || m->nlmsg_pid != portid_) continue;  // a late reply to something else
      if (m->nlmsg_type == NLMSG_DONE) return {};
      if (m->nlmsg_type == NLMSG_ERROR) {
        Reply r = parse_error(m);
        *err = r.err;
        return {};
      }
      if (cb(m) != MNL_CB_OK) return runtime_error("nftables: cannot parse a reply");
      if (!(m->nlmsg_flags & NLM_F_MULTI)) return {};
    }
  }
}

Result<uint32_t> NftSocket::genid() {
  std::vector<char> req(MNL_SOCKET_BUFFER_SIZE);
  nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETGEN, AF_UNSPEC, 0, ++seq_);
  uint32_t id = 0;
  int err = 0;
  AMLFW_TRY(request(req.data(), [&](const nlmsghdr* nlh) {
    nftnl_gen* g = nftnl_gen_alloc();
    int rc = nftnl_gen_nlmsg_parse(nlh, g);
    if (rc >= 0) id = nftnl_gen_get_u32(g, NFTNL_GEN_ID);
    nftnl_gen_free(g);
    return rc < 0 ? MNL_CB_ERROR : MNL_CB_OK;
  }, &err));
  if (err != 0) return sys_error("nftables: get generation", err);
  return id;
}

Result<NftTableDump> NftSocket::dump(const NftDumpOptions& opts) {
  NftTableDump d;
  const std::string table(kNftTable);
  std::vector<char> req(MNL_SOCKET_BUFFER_SIZE);
  int err = 0;

  auto gen = genid();
  if (!gen) return std::move(gen).error();
  d.genid = *gen;

  // The table: a plain GET answers ENOENT when it does not exist.
  {
    NftnlTable t = nft_build_table();
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETTABLE, NFPROTO_INET, 0, ++seq_);
    nftnl_table_nlmsg_build_payload(nlh, t.get());
    AMLFW_TRY(request(req.data(), [](const nlmsghdr*) { return MNL_CB_OK; }, &err));
    if (err == ENOENT) return d;
    if (err != 0) return sys_error("nftables: read table inet " + table, err);
    d.exists = true;
  }
  // Chains (the dump covers every inet table: keep ours).
  {
    nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_DUMP, ++seq_);
    AMLFW_TRY(request(req.data(), [&](const nlmsghdr* nlh) {
      NftnlChain c(nftnl_chain_alloc());
      if (nftnl_chain_nlmsg_parse(nlh, c.get()) < 0) return MNL_CB_ERROR;
      const char* t = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE);
      if (t == nullptr || table != t) return MNL_CB_OK;
      NftChainDump cd;
      cd.name = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME);
      cd.base = nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM);
      if (cd.base) {
        cd.hooknum = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM);
        cd.prio = nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO);
        if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_POLICY)) cd.policy = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_POLICY);
        if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_TYPE)) cd.type = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TYPE);
      }
      d.chains.push_back(std::move(cd));
      return MNL_CB_OK;
    }, &err));
    if (err != 0) return sys_error("nftables: list chains of inet " + table, err);
  }
  // Sets.
  {
    NftnlSet s(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP, ++seq_);
    nftnl_set_nlmsg_build_payload(nlh, s.get());
    AMLFW_TRY(request(req.data(), [&](const nlmsghdr* m) {
      NftnlSet x(nftnl_set_alloc());
      if (nftnl_set_nlmsg_parse(m, x.get()) < 0) return MNL_CB_ERROR;
      const char* t = nftnl_set_get_str(x.get(), NFTNL_SET_TABLE);
      if (t == nullptr || table != t) return MNL_CB_OK;
      NftSetDump sd;
      sd.name = nftnl_set_get_str(x.get(), NFTNL_SET_NAME);
      sd.flags = nftnl_set_is_set(x.get(), NFTNL_SET_FLAGS) ? nftnl_set_get_u32(x.get(), NFTNL_SET_FLAGS) : 0;
      if (sd.flags & NFT_SET_ANONYMOUS) return MNL_CB_OK;
      sd.key_type = nftnl_set_get_u32(x.get(), NFTNL_SET_KEY_TYPE);
      sd.key_len = nftnl_set_get_u32(x.get(), NFTNL_SET_KEY_LEN);
      sd.v6 = sd.key_len == 16;
      d.sets.push_back(std::move(sd));
      return MNL_CB_OK;
    }, &err));
    if (err != 0) return sys_error("nftables: list sets of inet " + table, err);
  }
  // Elements, set by set.
  if (opts.elements) {
    for (auto& sd : d.sets) {
      NftnlSet s(nftnl_set_alloc());
      nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
      nftnl_set_set_str(s.get(), NFTNL_SET_NAME, sd.name.c_str());
      nlmsghdr* nlh = nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, ++seq_);
      nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
      ElemParse st{&sd, {}};
      if (sd.key_len != 4 && sd.key_len != 16) continue;  // not ours: never read, only replaced
      if ((sd.flags & NFT_SET_INTERVAL) && !opts.interval_elements) {
        sd.clean = false;  // unknown content
        continue;
      }
      AMLFW_TRY(request(req.data(), [&](const nlmsghdr* m) { return parse_elems(m, &st); }, &err));
      if (err != 0) return sys_error("nftables: list elements of set '" + sd.name + "'", err);
      if (sd.flags & NFT_SET_INTERVAL) {
        sd.clean = nft_ranges_from_elems(sd.v6, std::move(st.interval), &sd.r4, &sd.r6);
      } else {
        std::sort(sd.addrs.begin(), sd.addrs.end(),
                  [](const NftLearnedDump& a, const NftLearnedDump& b) { return a.addr < b.addr; });
      }
    }
  }
  // Rules: comments and counters.
  if (opts.rules) {
    NftnlRule r(nftnl_rule_alloc());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, ++seq_);
    nftnl_rule_nlmsg_build_payload(nlh, r.get());
    AMLFW_TRY(request(req.data(), [&](const nlmsghdr* m) {
      NftnlRule x(nftnl_rule_alloc());
      if (nftnl_rule_nlmsg_parse(m, x.get()) < 0) return MNL_CB_ERROR;
      const char* t = nftnl_rule_get_str(x.get(), NFTNL_RULE_TABLE);
      if (t == nullptr || table != t) return MNL_CB_OK;
      NftRuleDump rd;
      rd.chain = nftnl_rule_get_str(x.get(), NFTNL_RULE_CHAIN);
      rd.handle = nftnl_rule_get_u64(x.get(), NFTNL_RULE_HANDLE);
      rd.comment = rule_comment(x.get());
      nftnl_expr_iter* it = nftnl_expr_iter_create(x.get());
      for (nftnl_expr* e = nftnl_expr_iter_next(it); e != nullptr; e = nftnl_expr_iter_next(it)) {
        const char* name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
        if (name != nullptr && std::strcmp(name, "counter") == 0) {
          rd.has_counter = true;
          rd.packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
          rd.bytes = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
        }
      }
      nftnl_expr_iter_destroy(it);
      d.rules.push_back(std::move(rd));
      return MNL_CB_OK;
    }, &err));
    if (err != 0) return sys_error("nftables: list rules of inet " + table, err);
  }
  return d;
}

}  // namespace amlfw
