// SPDX-License-Identifier: MIT
#include "daemon/nflog.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace amlfw {
namespace {

Status config(mnl_socket* nl, uint16_t group, uint8_t family, const void* attr, uint16_t type, size_t len) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = 1;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = family;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons(group);
  mnl_attr_put(nlh, type, len, attr);
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return sys_error("nflog: send config");
  char rbuf[MNL_SOCKET_BUFFER_SIZE];
  ssize_t n = mnl_socket_recvfrom(nl, rbuf, sizeof rbuf);
  if (n < 0) return sys_error("nflog: read ack");
  if (mnl_cb_run(rbuf, static_cast<size_t>(n), 1, mnl_socket_get_portid(nl), nullptr, nullptr) < 0)
    return sys_error("nflog: bind group " + std::to_string(group) +
                     (errno == EBUSY ? " (another process listens on it: a second amlfw?)" : ""));
  return {};
}

}  // namespace

bool parse_nflog_message(const void* msg, size_t len, NflogPacket* out) {
  auto* nlh = static_cast<const nlmsghdr*>(msg);
  if (len < sizeof(nlmsghdr) || nlh->nlmsg_len > len) return false;
  if (nlh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) return false;
  if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(nfgenmsg))) return false;
  const nlattr* tb[NFULA_MAX + 1] = {};
  mnl_attr_parse(
      nlh, sizeof(nfgenmsg),
      [](const nlattr* a, void* data) {
        auto** t = static_cast<const nlattr**>(data);
        const int type = mnl_attr_get_type(a);
        if (type >= 0 && type <= NFULA_MAX) t[type] = a;
        return MNL_CB_OK;
      },
      tb);
  if (tb[NFULA_PAYLOAD] == nullptr) return false;
  const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(tb[NFULA_PAYLOAD]));
  const size_t n = mnl_attr_get_payload_len(tb[NFULA_PAYLOAD]);
  if (n < 1) return false;
  size_t l4 = 0;
  const int version = p[0] >> 4;
  if (version == 4) {
    if (n < 20) return false;
    const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
    if (ihl < 20 || ihl > n) return false;
    out->dst = IpAddr::from_bytes(false, p + 16);
    out->proto = p[9];
    l4 = ihl;
  } else if (version == 6) {
    if (n < 40) return false;
    out->dst = IpAddr::from_bytes(true, p + 24);
    out->proto = p[6];  // extension headers are not followed: their port stays 0
    l4 = 40;
  } else {
    return false;
  }
  out->port = 0;
  if ((out->proto == IPPROTO_TCP || out->proto == IPPROTO_UDP) && l4 + 4 <= n)
    out->port = static_cast<uint16_t>((p[l4 + 2] << 8) | p[l4 + 3]);
  // Output: no input device. Forward ([forward] pods): both devices; the pods' egress.
  out->egress = tb[NFULA_IFINDEX_INDEV] == nullptr || tb[NFULA_IFINDEX_OUTDEV] != nullptr;
  return true;
}

Result<std::unique_ptr<NflogReader>> NflogReader::open(uint16_t group) {
  mnl_socket* nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (nl == nullptr) return sys_error("nflog: netlink socket");
  std::unique_ptr<NflogReader> r(new NflogReader(nl));
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) return sys_error("nflog: bind");
  nfulnl_msg_config_cmd bind{NFULNL_CFG_CMD_BIND};
  // The socket is non-blocking: switch to blocking for the two configuration round trips.
  const int fd = mnl_socket_get_fd(nl);
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  AMLFW_TRY(config(nl, group, AF_UNSPEC, &bind, NFULA_CFG_CMD, sizeof bind));
  nfulnl_msg_config_mode mode{};
  mode.copy_range = htonl(128);
  mode.copy_mode = NFULNL_COPY_PACKET;
  AMLFW_TRY(config(nl, group, AF_UNSPEC, &mode, NFULA_CFG_MODE, sizeof mode));
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int rcv = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  return r;
}

NflogReader::~NflogReader() {
  if (nl_ != nullptr) mnl_socket_close(nl_);
}

int NflogReader::fd() const { return mnl_socket_get_fd(nl_); }

void NflogReader::drain(const std::function<void(const NflogPacket&)>& cb) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  for (int i = 0; i < 64; ++i) {  // bounded: the loop comes back when more is queued
    ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
    if (n <= 0) return;  // EAGAIN, or ENOBUFS after an overflow: what was lost is lost
    int left = static_cast<int>(n);
    auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
    while (mnl_nlmsg_ok(nlh, left)) {
      NflogPacket pkt;
      if (parse_nflog_message(nlh, nlh->nlmsg_len, &pkt)) cb(pkt);
      nlh = mnl_nlmsg_next(nlh, &left);
    }
  }
}

}  // namespace amlfw
