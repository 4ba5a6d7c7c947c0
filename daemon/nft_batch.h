// SPDX-License-Identifier: MIT
// NftBatch: one nftables transaction (NFNL_MSG_BATCH_BEGIN .. END) built with libnftnl into
// multi-page buffers, one sequence number per message, every message with NLM_F_ACK, and a
// record of what each message does so a kernel error maps back to the message (and, with
// extended ACKs, to the element) that failed. No socket here: building and describing are
// testable without privileges; daemon/nft_netlink.h sends it.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/net.h"
#include "policy/render_nft.h"

struct nftnl_batch;
struct nlmsghdr;

namespace amlfw {

// Elements per NEWSETELEM/DELSETELEM message: the element list is one netlink attribute
// nest, whose length is 16 bits, so a message carries at most ~64 KiB of elements.
inline constexpr size_t kNftElemsPerMsg4 = 2000;   // <= 24 B per IPv4 interval element
inline constexpr size_t kNftElemsPerMsg6 = 1400;   // <= 36 B per IPv6 interval element
inline constexpr size_t kNftAddrsPerMsg = 1000;    // <= 48 B per element with a timeout
inline constexpr uint32_t kNftBatchPage = 128 * 1024;

// One element of an interval set as the kernel stores it: a start at lo and an
// interval-end element at hi+1 (none when hi is the top of the address space).
struct NftIntervalElem {
  u128 key = 0;
  bool end = false;
};
std::vector<NftIntervalElem> nft_interval_elems4(const Range4& r);
std::vector<NftIntervalElem> nft_interval_elems6(const Range6& r);
// Inverse: elements (any order, as dumped) to normalized ranges. Returns false when the
// elements are not a clean interval encoding (orphan ends, two starts in a row, adjacent
// ranges): the caller then rewrites the set instead of diffing it.
bool nft_ranges_from_elems(bool v6, std::vector<NftIntervalElem> elems, std::vector<Range4>* out4,
                           std::vector<Range6>* out6);

enum class NftElemOp : uint8_t { kAdd, kDelete };

struct NftMsgInfo {
  uint32_t seq = 0;
  uint16_t type = 0;          // NFT_MSG_*
  std::string what;           // "add element to set 'p4_e_tcp_443'"
  const nlmsghdr* nlh = nullptr;  // inside the batch pages; valid while the batch lives
  // Element messages: the items in wire order, to name the element the kernel refused.
  bool interval = false;
  std::vector<Range4> r4;
  std::vector<Range6> r6;
  std::vector<IpAddr> addrs;
  uint64_t timeout_ms = 0;
  size_t elements = 0;
  bool anonymous = false;     // elements of a rule's anonymous set
};

struct NftBatchStats {
  size_t messages = 0;       // between BEGIN and END
  size_t element_msgs = 0;   // NEWSETELEM + DELSETELEM messages of named sets
  size_t elements = 0;       // elements of named sets added or deleted
  size_t anon_sets = 0;      // anonymous sets of rules (with their elements)
  size_t rules = 0;
  size_t bytes = 0;
};

class NftBatch {
 public:
  // Sequence numbers: BEGIN gets first_seq, each message the next one, END the last.
  // With `genid`, the kernel refuses the whole batch (ERESTART) when the ruleset changed
  // since that generation was read (NFNL_BATCH_GENID): what was read is what is changed.
  explicit NftBatch(uint32_t first_seq, std::optional<uint32_t> genid = std::nullopt);
  ~NftBatch();
  NftBatch(const NftBatch&) = delete;
  NftBatch& operator=(const NftBatch&) = delete;

  void add_table();                                    // NEWTABLE inet amlfw (no EXCL: adopt)
  void delete_table();                                 // DELTABLE inet amlfw
  void add_chain(const NftChainSpec& c);               // NEWCHAIN (create or keep)
  void flush_chain(std::string_view chain);            // DELRULE of all rules of the chain
  void delete_chain(std::string_view chain);
  void add_rule(std::string_view chain, const NftRuleSpec& r);
  void add_set(const NftSetSpec& s);                   // NEWSET with CREATE|EXCL
  void delete_set(std::string_view set);
  void flush_set(std::string_view set);                // DELSETELEM without elements
  void interval_elems4(NftElemOp op, std::string_view set, std::span<const Range4> ranges);
  void interval_elems6(NftElemOp op, std::string_view set, std::span<const Range6> ranges);
  // Plain (dns4/dns6) or learned (timeout_ms > 0) sets. Adds are NLM_F_EXCL unless `excl`
  // is false (then adding an element that exists is no error; kernels >= 6.10 renew its timeout).
  void addr_elems(NftElemOp op, std::string_view set, std::span<const IpAddr> addrs, uint64_t timeout_ms = 0,
                  bool excl = true);
  // Writes BATCH_END. No message may be added after.
  void finish();

  bool empty() const { return msgs_.empty(); }
  uint32_t first_seq() const { return first_seq_; }
  uint32_t last_seq() const { return seq_; }
  const NftBatchStats& stats() const { return stats_; }
  const std::vector<NftMsgInfo>& messages() const { return msgs_; }
  size_t byte_size() const;
  std::vector<iovec> iovecs() const;
  const NftMsgInfo* find(uint32_t seq) const;
  // "add element to set 'p4_e_tcp_443' [203.0.113.0/24]" for the message with sequence
  // `seq`; bad_attr_offset (extended ACK, from the message start) narrows it to the element.
  std::string describe(uint32_t seq, std::optional<uint32_t> bad_attr_offset) const;

 private:
  char* buffer();
  void commit(NftMsgInfo info, bool counts_as_rule = false);
  // `jumps`: a verdict map; the chain each element jumps to ("" for interval ends).
  uint32_t anon_set(uint32_t key_type, uint32_t key_len, bool interval, std::vector<NftIntervalElem> elems,
                    std::string_view what, const std::vector<std::string>& jumps = {});
  void build_elems_msg(NftElemOp op, std::string_view set, uint32_t set_id, uint32_t key_len,
                       std::span<const NftIntervalElem> elems, uint64_t timeout_ms, NftMsgInfo info,
                       bool excl = true, std::span<const std::string> jumps = {});

  struct Deleter {
    void operator()(nftnl_batch* b) const;
  };
  std::unique_ptr<nftnl_batch, Deleter> batch_;
  uint32_t first_seq_;
  uint32_t seq_;
  uint32_t next_set_id_ = 1;
  bool finished_ = false;
  std::vector<NftMsgInfo> msgs_;
  NftBatchStats stats_;
};

}  // namespace amlfw
