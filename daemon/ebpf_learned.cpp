// SPDX-License-Identifier: MIT
#include "daemon/ebpf_learned.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <array>
#include <cerrno>

namespace amlfw {
namespace {

// Renews one learned address in one family's map; 0 or the errno of the update.
int learn_one(int fd, const void* key, uint64_t bits, uint64_t expires, uint64_t now) {
  amlfw_learned v{};
  if (bpf_map_lookup_elem(fd, key, &v) == 0 && v.expires_ns > now) {
    v.groups |= bits;
    v.expires_ns = std::max<uint64_t>(v.expires_ns, expires);
  } else {
    v.groups = bits;
    v.expires_ns = expires;
  }
  return bpf_map_update_elem(fd, key, &v, BPF_ANY) == 0 ? 0 : errno;
}

template <size_t KeySize>
struct LearnedEntry {
  std::array<uint8_t, KeySize> key;
  amlfw_learned value;
};

// Every entry of one family's learned map. BPF_MAP_LOOKUP_BATCH reads thousands of entries in
// a few system calls; where the kernel has no batch operations for the map (or a bucket is
// larger than a batch), get_next_key + lookup, from the start.
template <size_t KeySize>
std::vector<LearnedEntry<KeySize>> read_learned(int fd) {
  constexpr uint32_t kBatch = 4096;
  std::vector<LearnedEntry<KeySize>> all;
  std::vector<std::array<uint8_t, KeySize>> keys(kBatch);
  std::vector<amlfw_learned> vals(kBatch);
  std::array<uint8_t, 16> in{}, out{};  // the batch token (a bucket index for hash maps)
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  for (bool first = true;; first = false) {
    uint32_t count = kBatch;
    const int rc = bpf_map_lookup_batch(fd, first ? nullptr : in.data(), out.data(), keys.data(), vals.data(), &count,
                                        &opts);
    const int err = rc == 0 ? 0 : errno;
    if (rc != 0 && err != ENOENT) break;  // no batch support: one by one below
    for (uint32_t i = 0; i < count && i < kBatch; ++i) all.push_back({keys[i], vals[i]});
    if (err == ENOENT) return all;  // the last batch
    in = out;
  }
  all.clear();
  std::array<uint8_t, KeySize> key{}, next{};
  for (bool first = true; bpf_map_get_next_key(fd, first ? nullptr : key.data(), next.data()) == 0; first = false) {
    key = next;
    amlfw_learned v{};
    if (bpf_map_lookup_elem(fd, key.data(), &v) == 0) all.push_back({key, v});
  }
  return all;
}

template <size_t KeySize>
Result<size_t> collect_one(int fd, uint64_t now) {
  std::vector<std::array<uint8_t, KeySize>> dead;
  for (const auto& e : read_learned<KeySize>(fd)) {
    if (e.value.expires_ns <= now) dead.push_back(e.key);
  }
  if (dead.empty()) return size_t{0};
  uint32_t count = static_cast<uint32_t>(dead.size());
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_delete_batch(fd, dead.data(), &count, &opts) == 0 && count == dead.size()) return dead.size();
  // Partly done (count: how many were deleted) or no batch support: the rest one by one.
  size_t n = std::min<size_t>(count, dead.size());
  for (size_t i = n; i < dead.size(); ++i) {
    if (bpf_map_delete_elem(fd, dead[i].data()) == 0) ++n;
  }
  return n;
}

template <size_t KeySize>
void dump_one(int fd, bool v6, std::vector<EbpfLearnedEntry>* out) {
  for (const auto& e : read_learned<KeySize>(fd)) {
    out->push_back(EbpfLearnedEntry{IpAddr::from_bytes(v6, e.key.data()), e.value.expires_ns, e.value.groups});
  }
}

template <size_t KeySize>
Status carry_one(int from, int to, const EbpfBitMap& map, uint64_t now, EbpfFillStats* st) {
  std::vector<std::array<uint8_t, KeySize>> keys;
  std::vector<amlfw_learned> vals;
  for (auto& e : read_learned<KeySize>(from)) {
    e.value.groups = ebpf_translate_bits(e.value.groups, map);
    if (e.value.expires_ns <= now || e.value.groups == 0) {
      if (st) ++st->learned_dropped;
      continue;
    }
    keys.push_back(e.key);
    vals.push_back(e.value);
  }
  AMLFW_TRY(ebpf_update_many(to, "learned addresses", keys.data(), vals.data(), static_cast<uint32_t>(keys.size()),
                        KeySize, sizeof(amlfw_learned)));
  if (st) st->learned_carried += keys.size();
  return {};
}

}  // namespace

Status ebpf_carry_learned(const EbpfGeneration& from, const amlfw_conf& from_conf, const EbpfGeneration& to,
                          const amlfw_conf& to_conf, EbpfFillStats* st) {
  const EbpfBitMap map = ebpf_learned_bit_map(from_conf, to_conf);
  const uint64_t now = ebpf_now_ns();
  AMLFW_TRY(carry_one<4>(from.learn4.get(), to.learn4.get(), map, now, st));
  AMLFW_TRY(carry_one<16>(from.learn6.get(), to.learn6.get(), map, now, st));
  return {};
}

Status ebpf_learn(const EbpfGeneration& g, uint64_t bits, const std::vector<LearnedAddr>& addrs) {
  const uint64_t now = ebpf_now_ns();
  bool collected = false;
  for (const LearnedAddr& la : addrs) {
    const uint64_t expires = now + static_cast<uint64_t>(la.timeout_s) * 1000000000ull;
    uint8_t key[16];
    la.addr.to_bytes(key);
    const int fd = la.addr.v6 ? g.learn6.get() : g.learn4.get();
    int err = learn_one(fd, key, bits, expires, now);
    if (err == E2BIG && !collected) {
      collected = true;
      auto n = ebpf_collect_learned(g);
      if (!n.ok()) return n.error();
      err = learn_one(fd, key, bits, expires, now);
    }
    if (err == E2BIG) {
      return runtime_error("ebpf: learn " + la.addr.str() + ": the learned-address map is full (" +
                           std::to_string(AMLFW_LEARN_MAX) +
                           " live addresses per family; lower dns.grace or dns.max_ttl)");
    }
    if (err != 0) return sys_error("ebpf: learn " + la.addr.str(), err);
  }
  return {};
}

Result<size_t> ebpf_collect_learned(const EbpfGeneration& g) {
  const uint64_t now = ebpf_now_ns();
  auto a = collect_one<4>(g.learn4.get(), now);
  if (!a.ok()) return a.error();
  auto b = collect_one<16>(g.learn6.get(), now);
  if (!b.ok()) return b.error();
  return *a + *b;
}

Result<std::vector<EbpfLearnedEntry>> ebpf_dump_learned(const EbpfGeneration& g) {
  std::vector<EbpfLearnedEntry> out;
  dump_one<4>(g.learn4.get(), false, &out);
  dump_one<16>(g.learn6.get(), true, &out);
  return out;
}

Result<std::vector<uint64_t>> ebpf_read_stats(int stats_fd) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return sys_error("ebpf: count the possible CPUs", -ncpu);
  std::vector<uint64_t> out(AMLFW_STATS_MAX, 0);
  std::vector<uint64_t> per(static_cast<size_t>(ncpu));
  for (uint32_t i = 0; i < AMLFW_STATS_MAX; ++i) {
    if (bpf_map_lookup_elem(stats_fd, &i, per.data()) != 0) return sys_error("ebpf: read amlfw_stats");
    for (uint64_t v : per) out[i] += v;
  }
  return out;
}

}  // namespace amlfw
