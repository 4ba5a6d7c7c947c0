// SPDX-License-Identifier: MIT
#include "daemon/dns_learned.h"

#include <gtest/gtest.h>

#include <thread>
#include <tuple>

namespace amlfw {
namespace {

IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

class Recorder final : public Enforcer {
 public:
  std::string_view name() const override { return "rec"; }
  Status apply(const Policy&, const std::vector<PortGroup>&) override { return {}; }
  Status learn(const std::vector<std::string>& g, const std::vector<LearnedAddr>& a) override {
    calls.emplace_back(g, a);
    if (fail) return runtime_error("no");
    return {};
  }
  Status flush() override { return {}; }
  std::vector<std::pair<std::vector<std::string>, std::vector<LearnedAddr>>> calls;
  bool fail = false;
};

TEST(DnsLearner, ReportsWhatWentToTheKernel) {
  Recorder rec;
  DnsLearner l(rec, [](std::string_view) { return std::vector<std::string>{}; }, LearnLimits{}, 100);
  std::vector<std::tuple<std::string, std::vector<std::string>, std::vector<LearnedAddr>>> seen;
  l.set_on_learned([&](std::string_view n, const std::vector<std::string>& g, const std::vector<LearnedAddr>& a) {
    seen.emplace_back(std::string(n), g, a);
  });
  ASSERT_TRUE(l.learn("x.example", {"e_tcp_443", "e_tcp_80_443"},
                      {{ip("192.0.2.1"), 120}, {ip("10.0.0.1"), 120}, {ip("2001:db8::1"), 5}})
                  .ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(std::get<0>(seen[0]), "x.example");
  EXPECT_EQ(std::get<1>(seen[0]), (std::vector<std::string>{"e_tcp_443", "e_tcp_80_443"}));
  ASSERT_EQ(std::get<2>(seen[0]).size(), 2u);  // 10.0.0.1 is special-use
  EXPECT_EQ(std::get<2>(seen[0])[1].timeout_s, 60u + 900u);
  EXPECT_EQ(l.size(), 4u);  // (group, address) pairs
  // Renewing within the slack sends nothing and reports nothing.
  ASSERT_TRUE(l.learn("x.example", {"e_tcp_443"}, {{ip("192.0.2.1"), 120}}).ok());
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(rec.calls.size(), 1u);
}

TEST(DnsLearner, FailureLeavesTheTableUnchanged) {
  Recorder rec;
  rec.fail = true;
  DnsLearner l(rec, [](std::string_view) { return std::vector<std::string>{"e_tcp_443"}; }, LearnLimits{}, 100);
  auto s = l.learn("x.example", {"e_tcp_443"}, {{ip("192.0.2.1"), 60}});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(l.size(), 0u);
  EXPECT_EQ(l.stats().learn_failures, 1u);
  rec.fail = false;
  ASSERT_TRUE(l.learn("x.example", {"e_tcp_443"}, {{ip("192.0.2.1"), 60}}).ok());
  EXPECT_EQ(l.size(), 1u);
}

TEST(DnsLearner, SeededEntriesCountAgainstTheTotalAndSkipRenewals) {
  Recorder rec;
  DnsLearner l(rec, [](std::string_view) { return std::vector<std::string>{}; }, LearnLimits{}, 2);
  l.seed({"g"}, ip("192.0.2.1"), 5000);
  l.seed({"g"}, ip("192.0.2.2"), 5000);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_TRUE(rec.calls.empty());  // seeding teaches nothing
  ASSERT_TRUE(l.learn("a", {"g"}, {{ip("192.0.2.3"), 60}}).ok());
  EXPECT_TRUE(rec.calls.empty());  // full
  EXPECT_EQ(l.stats().over_total_bound, 1u);
  ASSERT_TRUE(l.learn("a", {"g"}, {{ip("192.0.2.1"), 60}}).ok());
  EXPECT_TRUE(rec.calls.empty());  // alive longer than 60 s + grace already
  EXPECT_EQ(l.stats().renewals_skipped, 1u);
}

TEST(DnsLearner, PruneForgetsExpired) {
  Recorder rec;
  LearnLimits lim;
  lim.min_ttl_s = 0;
  lim.grace_s = 0;
  DnsLearner l(rec, [](std::string_view) { return std::vector<std::string>{}; }, lim, 2);
  ASSERT_TRUE(l.learn("a", {"g"}, {{ip("192.0.2.1"), 1}}).ok());
  ASSERT_TRUE(l.learn("b", {"g"}, {{ip("192.0.2.2"), 1}}).ok());
  ASSERT_TRUE(l.learn("c", {"g"}, {{ip("192.0.2.3"), 100}}).ok());  // full: refused
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.stats().over_total_bound, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(l.learn("c", {"g"}, {{ip("192.0.2.3"), 100}}).ok());  // expired ones make room
  EXPECT_EQ(l.size(), 1u);
  EXPECT_TRUE(l.expiry("g", ip("192.0.2.3")).has_value());
}

}  // namespace
}  // namespace amlfw
