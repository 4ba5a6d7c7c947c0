// SPDX-License-Identifier: MIT
// Learned addresses in a generation's hash maps (address -> expiry + group bits): added and
// renewed one by one, carried into the next generation with their bits renumbered, expired
// ones collected; and the per-CPU counters. See daemon/ebpf_object.h for generations.
#pragma once

#include <cstdint>
#include <vector>

#include "daemon/ebpf_object.h"

namespace amlfw {

// Copies the live learned addresses of `from` into `to`, their bits renumbered by group name.
Status ebpf_carry_learned(const EbpfGeneration& from, const amlfw_conf& from_conf, const EbpfGeneration& to,
                          const amlfw_conf& to_conf, EbpfFillStats* st);
// Adds (or renews) addresses with the group bits `bits`: a live entry keeps its groups and
// the later expiry; an expired one is replaced. When the map is full, expired entries are
// collected once and the update retried.
Status ebpf_learn(const EbpfGeneration& g, uint64_t bits, const std::vector<LearnedAddr>& addrs);
// Deletes expired learned addresses; returns how many.
Result<size_t> ebpf_collect_learned(const EbpfGeneration& g);
struct EbpfLearnedEntry {
  IpAddr addr;
  uint64_t expires_ns = 0;
  uint64_t groups = 0;
};
Result<std::vector<EbpfLearnedEntry>> ebpf_dump_learned(const EbpfGeneration& g);

// amlfw_stats summed over CPUs: [ebpf_stat_index(hook, counter)].
constexpr size_t ebpf_stat_index(int hook, int stat) {
  return static_cast<size_t>(hook) * static_cast<size_t>(AMLFW_STAT_PER_HOOK) + static_cast<size_t>(stat);
}
Result<std::vector<uint64_t>> ebpf_read_stats(int stats_fd);

}  // namespace amlfw
