// SPDX-License-Identifier: MIT
// The nftables view of a compiled policy: one table `inet amlfw`, described as plain
// values (NftTable: sets and chains of rule statements). Both the netlink backend
// (daemon/nft_backend.cpp) and the text renderer (render_nft, used by
// `amlfw plan --format nft`) are driven by the same NftTable, so the text always
// describes exactly what the backend programs. Pure: no netlink headers, no syscalls.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/net.h"
#include "policy/policy.h"

namespace amlfw {

inline constexpr std::string_view kNftTable = "amlfw";   // family inet
inline constexpr std::string_view kNftOutputChain = "output";
inline constexpr std::string_view kNftInputChain = "input";
inline constexpr std::string_view kNftDns4Set = "dns4";
inline constexpr std::string_view kNftDns6Set = "dns6";
inline constexpr std::string_view kNftDenyLogPrefix = "amlfw deny: ";
inline constexpr std::string_view kNftAuditLogPrefix = "amlfw audit: ";
inline constexpr uint32_t kNftLogRatePerSecond = 10;
// Denied (and audit) packets go to this NFLOG group, where the daemon reads them for
// `status` "denied" and logs them rate-limited; snaplen covers the IP and port headers.
inline constexpr uint16_t kNftLogGroup = 4269;
inline constexpr uint32_t kNftLogSnaplen = 128;
inline constexpr uint32_t kNftLogBurst = 5;              // nft's default burst
inline constexpr size_t kNftCommentMax = 127;            // nft limits comments to 128 bytes with NUL
inline constexpr uint32_t kLoopbackIfindex = 1;          // "lo" is ifindex 1 in every namespace
inline constexpr std::string_view kNftDnsRedirectChain = "dns_redirect";
// [forward] (docs/kubernetes.md): the forward hook chain sends the pods' packets (by input
// interface or source) to the regular chain "pods", which holds the output chain's policy;
// "pods_dns" (nat, prerouting) sends the pods' DNS for the configured resolvers to the proxy.
inline constexpr std::string_view kNftForwardChain = "forward";
inline constexpr std::string_view kNftPodsChain = "pods";
inline constexpr std::string_view kNftPodsDnsChain = "pods_dns";
// Before kube-proxy's service translation (dstnat, -100): a pod's query to the cluster DNS
// service is redirected while its destination is still the service address.
inline constexpr int32_t kNftPodsDnsPriority = -110;
// Hook numbers (the values of NF_INET_PRE_ROUTING ... NF_INET_LOCAL_OUT; policy/ has no
// netfilter headers: daemon/nft_expr.cpp checks them).
inline constexpr uint32_t kNftHookPrerouting = 0;
inline constexpr uint32_t kNftHookInput = 1;
inline constexpr uint32_t kNftHookForward = 2;
inline constexpr uint32_t kNftHookOutput = 3;
// With dns.redirect, DNS packets carrying this mark (SO_MARK) are not redirected: the DNS
// proxy marks the sockets it uses to ask the upstream resolvers.
inline constexpr uint32_t kDnsProxyMark = 0x616d6c66;  // "amlf"

// Set names of a port group: p4_/p6_ (prefixes, interval sets), n4_/n6_ (learned, timeout sets).
// A group name longer than kNftGroupNameMax is shortened to its start plus "_h" and a hash.
inline constexpr size_t kNftGroupNameMax = 200;
std::string nft_set_group_part(std::string_view group);
std::string nft_prefix_set_name(std::string_view group, bool v6);
std::string nft_name_set_name(std::string_view group, bool v6);
// The regular chain holding a group's rules: "g_" + the group part of its set names.
std::string nft_group_chain_name(std::string_view group);
// The hook chain whose dispatch reaches a chain of the table: "output" for the output
// dispatch chains ("out_...") and egress group chains ("g_e_..."), "input" for "in_..." and
// "g_i_...", "forward" for "pods", else the name itself. Counters are reported per hook chain
// and comment.
std::string_view nft_hook_chain_of(std::string_view chain);
// The rule comment of a group: its rule ids joined by ',', cut to kNftCommentMax with "+N".
std::string nft_group_comment(const PortGroup& g);
// The groups the table programs: enforced ones; ingress ones only with inbound_enforce.
std::vector<const PortGroup*> nft_active_groups(const Policy& p, const std::vector<PortGroup>& groups);

// ---- The table as values -----------------------------------------------------------------

enum class NftSetKind : uint8_t {
  kPrefixes,  // flags interval: merged prefix ranges of one family
  kLearned,   // flags timeout: addresses learned from DNS, each with its own timeout
  kPlain,     // exact addresses (dns4 / dns6)
};

struct NftSetSpec {
  std::string name;
  bool v6 = false;
  NftSetKind kind = NftSetKind::kPlain;
  const PrefixSet* prefixes = nullptr;  // kPrefixes: the ranges of family v6 (points into a group)
  std::vector<IpAddr> addrs;            // kPlain: the elements
  std::string group;                    // owning group ("" for dns4/dns6)
};

inline constexpr uint8_t kNfprotoIpv4 = 2;    // NFPROTO_IPV4
inline constexpr uint8_t kNfprotoIpv6 = 10;   // NFPROTO_IPV6
inline constexpr uint8_t kIpprotoIcmp = 1;
inline constexpr uint8_t kIpprotoTcp = 6;
inline constexpr uint8_t kIpprotoUdp = 17;
inline constexpr uint8_t kIpprotoIcmpv6 = 58;

// One match of a rule. The backend turns each into netlink expressions in the order given;
// dependencies (meta nfproto before ip daddr, meta l4proto before th dport) are explicit
// matches so that `nft -f` of the rendered text produces the same bytecode.
struct NftMatch {
  enum class Kind : uint8_t {
    kOifLo,            // oif "lo"
    kIifLo,            // iif "lo"
    kCtEstablished,    // ct state established,related
    kNfproto,          // meta nfproto ipv4|ipv6             (value)
    kL4proto,          // meta l4proto tcp|udp|icmp|...      (value)
    kL4protoTcpUdp,    // meta l4proto { tcp, udp }
    kAddrInSet,        // ip|ip6 saddr|daddr @set            (v6, src, set)
    kAddrEq,           // ip|ip6 saddr|daddr ADDR            (addr, src)
    kPorts,            // th sport 68 th dport 67            (sport, dport): one 4-byte compare
    kDports,           // th dport P | P-Q | { ... }         (ports, never all ports)
    kIcmpTypes,        // icmp|icmpv6 type X | { ... }       (v6, types)
    kMarkNot,          // meta mark != MARK                  (mark)
    kAddrNotPrefix,    // ip daddr != 127.0.0.0/8 | ip6 daddr != ::1  (addr, value = prefix length)
    kAddrPrefix,       // ip|ip6 saddr|daddr 10.244.0.0/16         (addr, value = prefix length, src)
    kIifname,          // iifname "cni0" | iifname "cali*"          (set = the name; '*' last: a prefix)
  };
  Kind kind = Kind::kOifLo;
  uint8_t value = 0;
  bool v6 = false;
  bool src = false;
  std::string set;
  IpAddr addr;
  uint16_t sport = 0, dport = 0;
  std::vector<PortRange> ports;
  std::vector<uint8_t> types;
  uint32_t mark = 0;
};

// One entry of a port dispatch: th dport in `ports` (lo may be 0) -> jump `chain`.
struct NftVmapEntry {
  PortRange ports;
  std::string chain;
  friend bool operator==(const NftVmapEntry&, const NftVmapEntry&) = default;
};

enum class NftVerdict : uint8_t {
  kNone,            // no verdict: the rule only logs (limit + log), evaluation continues
  kAccept,
  kJump,            // jump `target` (a regular chain; evaluation continues here when it does not decide)
  kDportVmap,       // th dport vmap { ports : jump chain, ... } (needs meta l4proto tcp|udp before)
  kRejectTcpReset,  // reject with tcp reset (needs meta l4proto tcp before)
  kRejectIcmpx,     // reject with icmpx admin-prohibited
  kDnat,            // dnat ip|ip6 to ADDR:PORT (nat chains)
};

struct NftRuleSpec {
  std::vector<NftMatch> matches;
  bool limit_log = false;     // limit rate kNftLogRatePerSecond/second log prefix "log_prefix"
  std::string log_prefix;
  uint16_t log_group = 0;     // NFLOG group (0: the kernel log)
  bool counter = false;
  NftVerdict verdict = NftVerdict::kAccept;
  std::string comment;        // "" = none
  IpAddr nat_addr;            // kDnat
  uint16_t nat_port = 0;
  std::string target;         // kJump
  std::vector<NftVmapEntry> vmap;  // kDportVmap: sorted, disjoint port ranges
};

struct NftChainSpec {
  std::string name;
  bool input = false;         // hook input (else output); type filter, priority filter (0), policy drop
  bool nat = false;           // type nat hook output priority -100, policy accept (dns.redirect)
  bool regular = false;       // no hook: reached only by jumps (dispatch and group chains)
  bool forward = false;       // type filter hook forward priority filter (0), policy accept ([forward])
  bool prerouting = false;    // with nat: hook prerouting priority kNftPodsDnsPriority ([forward] dns_redirect)
  std::vector<NftRuleSpec> rules;
};
// What a base chain is hooked as (meaningless for regular chains): the hook number
// (kNftHook*), the priority, the type ("filter" or "nat") and whether its policy accepts.
uint32_t nft_chain_hook(const NftChainSpec& c);
int32_t nft_chain_priority(const NftChainSpec& c);
std::string_view nft_chain_type(const NftChainSpec& c);
bool nft_chain_policy_accept(const NftChainSpec& c);
// `type filter hook output priority filter; policy drop;` as nft writes it in a table.
std::string nft_chain_header(const NftChainSpec& c);
// "127.0.0.1:53", "[::1]:53", "::1" (port 53): the DNS proxy's address; false if unparsable.
bool nft_parse_listen(std::string_view s, IpAddr* addr, uint16_t* port);

struct NftTableSpec {
  std::vector<NftSetSpec> sets;      // in creation order
  // output, input when inbound_enforce, dns_redirect when dns_redirect, then the regular
  // chains: port dispatch chains (out_*, in_*) and group chains (g_*). See docs/nftables.md.
  std::vector<NftChainSpec> chains;
};

// The whole table for a policy. The result points into `groups` (NftSetSpec::prefixes):
// keep `groups` alive while using it.
NftTableSpec nft_table_spec(const Policy& p, const std::vector<PortGroup>& groups);
// Only the chains (what depends on base settings and the list of groups).
std::vector<NftChainSpec> nft_chain_specs(const Policy& p, const std::vector<PortGroup>& groups);
// The same filter chains in their linear form: every rule in one chain, in order (base
// rules, then each group's p4/p6/n4/n6 rules with their protocol and port matches, then the
// end). This is the meaning of the dispatched chains: for every packet, the dispatch reaches
// the same first matching rule (same verdict, same comment counted). Not programmed; the
// reference for tests and benchmarks.
std::vector<NftChainSpec> nft_linear_chain_specs(const Policy& p, const std::vector<PortGroup>& groups);

// Text of the parts, as `nft -f` accepts them.
std::string nft_rule_text(const NftRuleSpec& r);
std::string nft_range4_text(const Range4& r);   // "192.0.2.0/24", "192.0.2.1", "192.0.2.3-192.0.2.9"
std::string nft_range6_text(const Range6& r);

// The complete ruleset text the backend loads: `table inet amlfw { ... }`, an `nft -f`
// script. The deterministic, element-for-element description of what apply() programs.
std::string render_nft(const Policy& p, const std::vector<PortGroup>& groups);

}  // namespace amlfw
