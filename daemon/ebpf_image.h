// SPDX-License-Identifier: MIT
// What one policy generation puts in the eBPF maps (bpf/amlfw_abi.h), computed from a
// compiled policy: the settings and group descriptors, the port table and the LPM entries.
// Pure: no syscalls, no libbpf, so it is unit-tested without privileges.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/amlfw_abi.h"
#include "policy/policy.h"
#include "policy/result.h"

namespace amlfw {

inline constexpr size_t kEbpfPortTableSize = 2 * AMLFW_PORTS_PER_PROTO;

// The group names of the entries the backend adds itself (they are not PortGroups).
inline constexpr std::string_view kEbpfDnsGroup = "dns";
inline constexpr std::string_view kEbpfDnsProxyGroup = "dns-proxy";
inline constexpr std::string_view kEbpfWireServerDnsGroup = "platform-wireserver-dns";
inline constexpr std::string_view kEbpfWireServerGroup = "platform-wireserver";
inline constexpr std::string_view kEbpfImdsGroup = "platform-imds";
inline constexpr std::string_view kEbpfLocalGroup = "local";

struct EbpfLpm4 {
  amlfw_lpm4_key key{};
  uint64_t groups = 0;
};
struct EbpfLpm6 {
  amlfw_lpm6_key key{};
  uint64_t groups = 0;
};

struct EbpfImage {
  amlfw_conf conf{};                 // generation = 0: the backend numbers generations
  std::vector<uint64_t> ports;       // kEbpfPortTableSize: (proto == udp) * 65536 + port -> groups
  std::vector<EbpfLpm4> lpm4;        // sorted by (address, length)
  std::vector<EbpfLpm6> lpm6;
  std::vector<std::string> group_names;  // by bit

  // Same maps content (the generation number aside).
  bool same_content(const EbpfImage& o) const;
  // Bit of the group named `name` that learned addresses may carry, or -1.
  int learn_bit(std::string_view name) const;
};

// The image of `p`: the groups the kernel enforces (enforced ones; ingress ones only with
// inbound_enforce) plus the resolvers, the proxy, the platform addresses and `local_addrs`
// (the host's own addresses, every port: connect() runs before routing, so the hooks cannot
// see that such traffic stays on lo). Each LPM entry carries every group that contains the
// whole prefix, so the longest match of an address carries every group that contains the
// address. Errors (kUsage): more than AMLFW_MAX_GROUPS groups.
Result<EbpfImage> build_ebpf_image(const Policy& p, const std::vector<PortGroup>& groups,
                                   const std::vector<IpAddr>& local_addrs = {});

// FNV-1a 64 of a group name (amlfw_group.name_hash).
uint64_t ebpf_name_hash(std::string_view name);

// Learned addresses move from one generation to the next with their bits renumbered:
// map[old bit] = new bit, or -1 when the group has no learned set any more.
using EbpfBitMap = std::array<int, AMLFW_MAX_GROUPS>;
EbpfBitMap ebpf_learned_bit_map(const amlfw_conf& from, const amlfw_conf& to);
uint64_t ebpf_translate_bits(uint64_t bits, const EbpfBitMap& map);

}  // namespace amlfw
