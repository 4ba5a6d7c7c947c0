// SPDX-License-Identifier: MIT
#include "daemon/dns_learned.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace amlfw {
namespace {

IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

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

class DnsLearnedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/amlfw-learned-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/learned-addresses";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write_text(const std::string& s) { std::ofstream(path_) << s; }
  std::string dir_, path_;
};

TEST_F(DnsLearnedFileTest, RoundTripAndAtomicWrite) {
  std::vector<LearnedEntry> e = {{"e_tcp_443", ip("192.0.2.1"), 1800000000},
                                 {"e_tcp_80_443", ip("2001:db8::1"), 1800000001}};
  ASSERT_TRUE(write_learned_file(path_, e).ok());
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
  auto back = read_learned_file(path_);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, e);
  std::ifstream in(path_);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, kLearnedStateMagic);
  EXPECT_EQ(std::filesystem::status(path_).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
}

TEST_F(DnsLearnedFileTest, MissingFileIsEmpty) {
  auto r = read_learned_file(dir_ + "/nope");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST_F(DnsLearnedFileTest, CorruptOrForeignFilesAreErrorsNamingTheLine) {
  struct Case {
    std::string text, want;
  };
  const std::string m = std::string(kLearnedStateMagic) + "\n";
  std::vector<Case> cases = {
      {"", ":1: empty file"},
      {"hello world\n", ":1: not an amlfw learned-addresses file"},
      {"amlfw-learned-addresses 2\nend 0\n", ":1: format version '2' is not supported"},
      {m + "1800000000 e_tcp_443 192.0.2.1\n", ":2: no end line"},
      {m + "1800000000 e_tcp_443 192.0.2.1\nend 2\n", ":3: end line counts 2 entries"},
      {m + "1800000000 e_tcp_443 192.0.2.300\nend 1\n", ":2: bad address"},
      {m + "x e_tcp_443 192.0.2.1\nend 1\n", ":2: bad expiry"},
      {m + "1800000000 E/TCP 192.0.2.1\nend 1\n", ":2: bad group"},
      {m + "1800000000 e_tcp_443 192.0.2.1", ":2: incomplete last line"},
      {m + "end 0\n1 a 192.0.2.1\n", ":3: data after the end line"},
  };
  for (const auto& c : cases) {
    write_text(c.text);
    auto r = read_learned_file(path_);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error().message.find(path_ + c.want), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("delete the file"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().code, Exit::kData);
  }
}

TEST(DnsLearner, RestoreSkipsExpiredUnknownAndKnown) {
  Recorder rec;
  DnsLearner l(rec, [](std::string_view) { return std::vector<std::string>{}; }, LearnLimits{}, 3);
  const int64_t now = now_s();
  std::vector<LearnedEntry> e = {
      {"e_tcp_443", ip("192.0.2.1"), now + 100},   // restored with ~100 s
      {"e_tcp_443", ip("192.0.2.2"), now - 5},     // expired
      {"gone_group", ip("192.0.2.3"), now + 100},  // group no longer in the policy
      {"e_tcp_80", ip("192.0.2.4"), now + 500},
      {"e_tcp_80", ip("192.0.2.5"), now + 500},
      {"e_tcp_80", ip("192.0.2.6"), now + 500},    // beyond max_learned = 3
  };
  auto n = l.restore(e, {"e_tcp_443", "e_tcp_80"});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3u);
  ASSERT_EQ(rec.calls.size(), 2u);
  EXPECT_EQ(rec.calls[0].first, std::vector<std::string>{"e_tcp_443"});
  ASSERT_EQ(rec.calls[0].second.size(), 1u);
  EXPECT_NEAR(rec.calls[0].second[0].timeout_s, 100, 2);
  EXPECT_EQ(rec.calls[1].second.size(), 2u);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(l.stats().over_total_bound, 1u);
  // The snapshot gives the same expiries back (wall clock).
  auto snap = l.snapshot();
  ASSERT_EQ(snap.size(), 3u);
  for (const auto& s : snap) {
    auto it = std::find_if(e.begin(), e.end(), [&](const LearnedEntry& x) { return x.addr == s.addr; });
    ASSERT_NE(it, e.end());
    EXPECT_NEAR(s.expires_unix_s, it->expires_unix_s, 2);
  }
}

TEST(DnsLearner, FailureLeavesTheTableUnchanged) {
  Recorder rec;
  rec.fail = true;
  DnsLearner l(rec, [](std::string_view) { return std::vector<std::string>{"e_tcp_443"}; }, LearnLimits{}, 100);
  auto s = l.learn("x.example", {"e_tcp_443"}, {{ip("192.0.2.1"), 60}});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(l.size(), 0u);
  EXPECT_FALSE(l.dirty());
  EXPECT_EQ(l.stats().learn_failures, 1u);
  rec.fail = false;
  ASSERT_TRUE(l.learn("x.example", {"e_tcp_443"}, {{ip("192.0.2.1"), 60}}).ok());
  EXPECT_EQ(l.size(), 1u);
  EXPECT_TRUE(l.dirty());
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
