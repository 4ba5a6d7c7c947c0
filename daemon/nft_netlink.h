// SPDX-License-Identifier: MIT
// The netfilter netlink socket (libmnl): sends one NftBatch as one sendmsg (the kernel
// needs BEGIN..END in one skb: a multi-page iovec, with the send buffer raised to fit),
// reads every reply and maps an error back to the message that failed; and reads the
// table back (tables, chains, sets, elements, rule counters) into plain structs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/nft_batch.h"
#include "policy/net.h"
#include "policy/result.h"

struct mnl_socket;
struct nlmsghdr;

namespace amlfw {

struct NftLearnedDump {
  IpAddr addr;
  uint64_t timeout_ms = 0;   // as added
  uint64_t expires_ms = 0;   // remaining lifetime when dumped
};

struct NftSetDump {
  std::string name;
  uint32_t flags = 0;        // NFT_SET_*
  uint32_t key_type = 0;
  uint32_t key_len = 0;
  bool v6 = false;
  size_t elements = 0;       // as the kernel holds them (interval sets: starts and ends)
  // Interval sets: the ranges; clean = the elements are a canonical encoding of them.
  std::vector<Range4> r4;
  std::vector<Range6> r6;
  bool clean = true;
  // Other sets: the addresses (with timeouts for timeout sets).
  std::vector<NftLearnedDump> addrs;
};

struct NftChainDump {
  std::string name;
  bool base = false;
  uint32_t hooknum = 0;
  int32_t prio = 0;
  uint32_t policy = 0;
  std::string type;
};

struct NftRuleDump {
  std::string chain;
  uint64_t handle = 0;
  std::string comment;
  uint64_t packets = 0;      // of its counter (0 when it has none)
  uint64_t bytes = 0;
  bool has_counter = false;
};

struct NftTableDump {
  bool exists = false;
  uint32_t genid = 0;        // ruleset generation the dump was taken at
  std::vector<NftChainDump> chains;
  std::vector<NftSetDump> sets;   // named sets only (anonymous ones belong to rules)
  std::vector<NftRuleDump> rules;

  const NftSetDump* find_set(std::string_view name) const;
  const NftChainDump* find_chain(std::string_view name) const;
};

struct NftDumpOptions {
  bool elements = true;      // read set elements
  bool interval_elements = true;  // ... of interval sets too (the big ones)
  bool rules = false;        // read rules (counters, comments)
};

class NftSocket {
 public:
  static Result<NftSocket> open();
  NftSocket(NftSocket&&) noexcept;
  NftSocket& operator=(NftSocket&&) noexcept;
  ~NftSocket();

  // Sequence numbers for the next batch (strictly increasing over the socket's life).
  uint32_t reserve_seq(uint32_t count);
  // Sends a finished batch and reads every reply. An error names the first message the
  // kernel refused: "nft batch seq 7 (add element to set 'p4_x' [192.0.2.0/24]): File exists".
  // `errno_out` gets that message's errno (0 on success, -1 when replies were lost).
  Status send(const NftBatch& b, int* errno_out = nullptr, uint32_t* failed_seq = nullptr);
  // Reads table inet amlfw. A missing table is no error (exists = false).
  Result<NftTableDump> dump(const NftDumpOptions& opts = {});
  Result<uint32_t> genid();

 private:
  explicit NftSocket(mnl_socket* nl);
  // Sends one request built in `buf` and runs `cb` on every reply until the dump ends.
  // `err` gets the errno of an NLMSG_ERROR reply (0 when none).
  Status request(char* buf, const std::function<int(const nlmsghdr*)>& cb, int* err);

  mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  // The socket buffers as raised so far (0: not yet): a small batch (a learned address)
  // asks the kernel nothing.
  size_t sndbuf_ = 0;
  size_t rcvbuf_ = 0;
};

}  // namespace amlfw
