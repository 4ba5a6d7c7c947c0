// SPDX-License-Identifier: MIT
// Learned addresses in real BPF hash maps (the layout of a generation's amlfw_i_learn4/6):
// learn/renew, and garbage collection of expired entries, which the daemon runs on a timer
// (batched lookups and deletes; thousands of entries, expired ones only).
// Needs root: skipped otherwise, except under CI=true where that is a failure.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "daemon/ebpf_learned.h"
#include "daemon/ebpf_object.h"
#include "tests/unit/ci_skip.h"

namespace amlfw {
namespace {

class EbpfLearnedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      AMLFW_SKIP_OR_FAIL_IN_CI("needs root (BPF maps)");
    }
    LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
    int fd4 = bpf_map_create(BPF_MAP_TYPE_HASH, "amlfw_t_learn4", 4, sizeof(amlfw_learned), AMLFW_LEARN_MAX, &o);
    int fd6 = bpf_map_create(BPF_MAP_TYPE_HASH, "amlfw_t_learn6", 16, sizeof(amlfw_learned), AMLFW_LEARN_MAX, &o);
    ASSERT_GE(fd4, 0);
    ASSERT_GE(fd6, 0);
    gen_.learn4 = Fd(fd4);
    gen_.learn6 = Fd(fd6);
  }

  // Writes an entry directly (expiry relative to now, in seconds; negative: expired).
  void put(const IpAddr& a, int64_t expires_in_s, uint64_t bits) {
    amlfw_learned v{};
    v.expires_ns = static_cast<uint64_t>(static_cast<int64_t>(ebpf_now_ns()) + expires_in_s * 1000000000LL);
    v.groups = bits;
    uint8_t key[16];
    a.to_bytes(key);
    ASSERT_EQ(bpf_map_update_elem(a.v6 ? gen_.learn6.get() : gen_.learn4.get(), key, &v, BPF_ANY), 0);
  }

  std::set<std::string> live() {
    auto all = ebpf_dump_learned(gen_);
    EXPECT_TRUE(all.ok());
    std::set<std::string> out;
    if (all.ok()) {
      for (const auto& e : *all) out.insert(e.addr.str());
    }
    return out;
  }

  EbpfGeneration gen_;
};

TEST_F(EbpfLearnedTest, CollectRemovesExpiredOnlyAcrossManyBatches) {
  // 10000 IPv4 (every third one expired) and 3000 IPv6 (every other one expired): more than
  // one lookup batch per family.
  std::set<std::string> want;
  for (uint32_t i = 0; i < 10000; ++i) {
    IpAddr a = IpAddr::v4addr(0xC6336400u + i);  // 198.51.100.0 onwards
    const bool expired = i % 3 == 0;
    put(a, expired ? -1 : 600, 1);
    if (!expired) want.insert(a.str());
  }
  for (uint32_t i = 0; i < 3000; ++i) {
    IpAddr a = *IpAddr::parse("2001:db8::");
    a.value += i;
    const bool expired = i % 2 == 0;
    put(a, expired ? -5 : 600, 2);
    if (!expired) want.insert(a.str());
  }
  auto n = ebpf_collect_learned(gen_);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 3334u + 1500u);
  EXPECT_EQ(live(), want);
  // Nothing left to collect.
  auto again = ebpf_collect_learned(gen_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
}

TEST_F(EbpfLearnedTest, CollectOnEmptyMapsAndLearnRenews) {
  auto n = ebpf_collect_learned(gen_);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 0u);
  IpAddr a = *IpAddr::parse("203.0.113.7");
  // Learned for 1 s, then renewed for another group with a longer lifetime: one entry with
  // both groups and the later expiry, which collection keeps.
  ASSERT_TRUE(ebpf_learn(gen_, 1, {LearnedAddr{a, 1}}).ok());
  ASSERT_TRUE(ebpf_learn(gen_, 4, {LearnedAddr{a, 600}}).ok());
  auto all = ebpf_dump_learned(gen_);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].groups, 5u);
  EXPECT_GT((*all)[0].expires_ns, ebpf_now_ns() + 500ull * 1000000000ull);
  auto c = ebpf_collect_learned(gen_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 0u);
  // An expired entry is replaced (not merged) by the next learn.
  IpAddr b = *IpAddr::parse("203.0.113.8");
  put(b, -1, 8);
  ASSERT_TRUE(ebpf_learn(gen_, 2, {LearnedAddr{b, 60}}).ok());
  all = ebpf_dump_learned(gen_);
  ASSERT_TRUE(all.ok());
  bool seen = false;
  for (const auto& e : *all) {
    if (e.addr == b) {
      seen = true;
      EXPECT_EQ(e.groups, 2u);
    }
  }
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace amlfw
