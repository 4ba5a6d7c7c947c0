// SPDX-License-Identifier: MIT
// Reads the packets the nftables backend logs to its NFLOG group (denied, or would-be-denied
// in audit mode): destination, port, protocol and direction, for `status` "denied".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "policy/net.h"
#include "policy/result.h"

struct mnl_socket;

namespace amlfw {

struct NflogPacket {
  IpAddr dst;
  uint16_t port = 0;   // 0 for protocols without ports
  uint8_t proto = 0;   // IPPROTO_*
  bool egress = true;  // logged on the output hook (no input device) or forward (both devices)
};

// Parses one NFULNL_MSG_PACKET netlink message (for tests and the reader).
bool parse_nflog_message(const void* nlmsg, size_t len, NflogPacket* out);

class NflogReader {
 public:
  // Binds `group` (one listener per group: a second daemon fails here).
  static Result<std::unique_ptr<NflogReader>> open(uint16_t group);
  ~NflogReader();
  int fd() const;
  // Reads what is queued (non-blocking) and calls `cb` for each packet.
  void drain(const std::function<void(const NflogPacket&)>& cb);

 private:
  explicit NflogReader(mnl_socket* nl) : nl_(nl) {}
  mnl_socket* nl_;
};

}  // namespace amlfw
