// SPDX-License-Identifier: MIT
// The loaded BPF object (the skeleton of bpf/amlfw.bpf.c) and the maps of one policy
// generation. Building a generation aside and switching amlfw_active to it is the atomic
// step of every policy change; learned addresses are added and removed one by one in the
// active generation's hash maps. No logging: libbpf's messages are kept and the last one
// ends up in the error.
#pragma once

#include <array>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <linux/bpf.h>

#include "bpf/amlfw_abi.h"
#include "daemon/ebpf_image.h"
#include "daemon/enforcer.h"
#include "daemon/fd.h"
#include "policy/result.h"

struct amlfw_bpf;  // the generated skeleton (amlfw.skel.h), private to ebpf_object.cpp

namespace amlfw {

enum class EbpfProg : uint8_t { kConnect4, kConnect6, kSendmsg4, kSendmsg6, kEgress, kIngress, kRecvmsg4, kRecvmsg6 };
inline constexpr EbpfProg kEbpfProgs[] = {EbpfProg::kConnect4, EbpfProg::kConnect6, EbpfProg::kSendmsg4,
                                          EbpfProg::kSendmsg6, EbpfProg::kEgress,   EbpfProg::kIngress,
                                          EbpfProg::kRecvmsg4, EbpfProg::kRecvmsg6};
// The maps a restarted process adopts (pinned under the pin directory by these names).
enum class EbpfMap : uint8_t { kActive, kConf, kPorts, kLpm4, kLpm6, kLearn4, kLearn6, kFlows, kEvents, kStats, kDnsOrig };
inline constexpr EbpfMap kEbpfMaps[] = {EbpfMap::kActive, EbpfMap::kConf,   EbpfMap::kPorts,  EbpfMap::kLpm4,
                                        EbpfMap::kLpm6,   EbpfMap::kLearn4, EbpfMap::kLearn6, EbpfMap::kFlows,
                                        EbpfMap::kEvents, EbpfMap::kStats,  EbpfMap::kDnsOrig};

inline constexpr size_t kEbpfMapCount = std::size(kEbpfMaps);
// The pinned maps' fds, indexed by EbpfMap: from a loaded object or from the pins.
struct EbpfMapFds {
  std::array<int, kEbpfMapCount> fd{};
  int operator[](EbpfMap m) const { return fd[static_cast<size_t>(m)]; }
};

std::string_view ebpf_prog_name(EbpfProg p);  // "amlfw_connect4": the program's and its link pin's name
std::string_view ebpf_map_name(EbpfMap m);    // "amlfw_active"

// Load-time tunables (const volatile in the program).
struct EbpfTunables {
  uint64_t flow_timeout_ns = 120ull * 1000000000ull;  // UDP replies pass this long after the last datagram
  uint64_t flow_refresh_ns = 1000000000ull;
};

class EbpfObject {
 public:
  // Opens and loads the programs (the verifier runs here). With a non-empty `reuse_dir`,
  // the maps pinned there are reused when every one is present with this build's layout
  // (same types, sizes and AMLFW_ABI_VERSION): reused() tells. Otherwise fresh maps.
  static Result<std::unique_ptr<EbpfObject>> load(const std::string& reuse_dir, const EbpfTunables& t = {});
  ~EbpfObject();
  EbpfObject(const EbpfObject&) = delete;
  EbpfObject& operator=(const EbpfObject&) = delete;

  bool reused() const { return reused_; }
  int prog_fd(EbpfProg p) const;
  bpf_attach_type attach_type(EbpfProg p) const;
  int map_fd(EbpfMap m) const;
  EbpfMapFds map_fds() const;

 private:
  EbpfObject() = default;
  ::amlfw_bpf* skel_ = nullptr;
  bool reused_ = false;
};

// The inner maps of one generation (owned fds).
struct EbpfGeneration {
  Fd conf, ports, lpm4, lpm6, learn4, learn6;
  bool valid() const { return conf.valid() && ports.valid() && lpm4.valid() && lpm6.valid() && learn4.valid() && learn6.valid(); }
};

struct EbpfFillStats {
  size_t lpm4 = 0, lpm6 = 0, ports = 0;  // entries written
  size_t learned_carried = 0;            // learned addresses moved from the previous generation
  size_t learned_dropped = 0;            // expired, or their groups are gone
};

// CLOCK_MONOTONIC in ns: bpf_ktime_get_ns's clock.
uint64_t ebpf_now_ns();

// The maps pinned in `pin_dir` (every one of kEbpfMaps), opened for reading and writing.
struct EbpfPins {
  std::vector<Fd> owned;
  EbpfMapFds fds;
};
Result<EbpfPins> ebpf_open_pins(const std::string& pin_dir);

// Creates the inner maps of a new generation and fills them from `img` (conf.generation =
// `generation`). Nothing the programs read changes.
Result<EbpfGeneration> ebpf_create_generation(const EbpfImage& img, uint64_t generation, EbpfFillStats* st);
// The inner maps installed in `slot` (the outer maps' entries); error when the slot is empty.
Result<EbpfGeneration> ebpf_open_generation(const EbpfMapFds& maps, uint32_t slot);
Result<amlfw_active> ebpf_read_active(const EbpfMapFds& maps);
Result<amlfw_conf> ebpf_read_conf(const EbpfGeneration& g);
// Installs `g` in `slot` of every outer map, then points amlfw_active at it: one write
// switches the whole policy.
Status ebpf_publish(const EbpfMapFds& maps, const EbpfGeneration& g, uint32_t slot, uint64_t generation);
// Empties `slot` (its inner maps are freed once no program runs on them).
void ebpf_clear_slot(const EbpfMapFds& maps, uint32_t slot);

// Writes n entries: one BPF_MAP_UPDATE_BATCH when the map type has it, else one by one.
Status ebpf_update_many(int fd, const char* what, const void* keys, const void* values, uint32_t n, size_t key_size,
                        size_t value_size);

// The last message libbpf printed (verifier log tail, ...), for error texts.
std::string ebpf_last_libbpf_message();

}  // namespace amlfw
