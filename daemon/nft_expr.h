// SPDX-License-Identifier: MIT
// NftRuleSpec -> libnftnl rule (expressions), the same bytecode `nft -f` produces for the
// text that render_nft() prints. Matches on several values (meta l4proto { tcp, udp },
// th dport { 80, 443 }) and port dispatches (th dport vmap { 443 : jump g_x }) use anonymous
// constant sets and maps, which the caller creates in the batch before the rule (make_set
// returns the batch-local set id).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/render_nft.h"

struct nftnl_rule;
struct nftnl_set;
struct nftnl_chain;
struct nftnl_table;

namespace amlfw {

struct NftnlDeleter {
  void operator()(nftnl_rule* r) const;
  void operator()(nftnl_set* s) const;
  void operator()(nftnl_chain* c) const;
  void operator()(nftnl_table* t) const;
};
using NftnlRule = std::unique_ptr<nftnl_rule, NftnlDeleter>;
using NftnlSet = std::unique_ptr<nftnl_set, NftnlDeleter>;
using NftnlChain = std::unique_ptr<nftnl_chain, NftnlDeleter>;
using NftnlTable = std::unique_ptr<nftnl_table, NftnlDeleter>;

// nft's datatype ids (src/datatype.h), stored as the set key type.
inline constexpr uint32_t kNftTypeIpv4Addr = 7;
inline constexpr uint32_t kNftTypeIpv6Addr = 8;
inline constexpr uint32_t kNftTypeInetProto = 12;
inline constexpr uint32_t kNftTypeInetService = 13;
inline constexpr uint32_t kNftTypeIcmpType = 14;
inline constexpr uint32_t kNftTypeIcmpv6Type = 29;

// The name the kernel fills in for anonymous sets (nft's convention).
inline constexpr const char* kNftAnonSetName = "__set%d";
inline constexpr const char* kNftAnonMapName = "__map%d";

struct NftAnonSet {
  uint32_t key_type = 0;
  uint32_t key_len = 0;
  bool interval = false;
  std::vector<u128> keys;                            // !interval: the values
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // interval: inclusive [lo, hi]
  uint32_t max = 0;                                  // interval: top of the key space
  // A verdict map when not empty: the chain each key (or range) jumps to, in the same order.
  std::vector<std::string> jumps;
};

using NftMakeSet = std::function<uint32_t(const NftAnonSet&)>;

// An object of amlfw's table named for a message (table, family and name): what delete,
// flush and element messages need, and what the builders below start from.
NftnlSet nft_table_set(std::string_view name);
NftnlChain nft_table_chain(std::string_view name);
NftnlRule nft_chain_rule(std::string_view chain);  // a rule of `chain` (no expressions yet)
NftnlRule nft_build_rule(std::string_view chain, const NftRuleSpec& r, const NftMakeSet& make_set);
inline constexpr int32_t kNftNatPriority = -100;  // NF_IP_PRI_NAT_DST
NftnlChain nft_build_chain(const NftChainSpec& c);
NftnlTable nft_build_table();
// A named set of the table (no elements).
NftnlSet nft_build_set(const NftSetSpec& s, uint32_t set_id);

}  // namespace amlfw
