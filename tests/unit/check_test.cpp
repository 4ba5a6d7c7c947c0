// SPDX-License-Identifier: MIT
// amlfw check: planning from a policy, TCP probes on loopback (reachable, refused, timed
// out), name resolution through a mock DNS server, judging, aggregation and time bounds.
#include "daemon/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "daemon/fd.h"
#include "tests/unit/mock_dns_server.h"

namespace amlfw {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

Rule name_rule(const std::string& id, const std::string& pattern, std::vector<PortRange> ports,
               Proto proto = Proto::kTcp) {
  Rule r;
  r.id = id;
  r.kind = DestKind::kFqdn;
  r.dest = pattern;
  auto p = NamePattern::parse(pattern);
  EXPECT_TRUE(p.ok()) << pattern;
  r.pattern = *p;
  r.ports = std::move(ports);
  r.proto = proto;
  return r;
}

Rule tag_rule(const std::string& id, const std::string& tag, const std::vector<std::string>& cidrs,
              std::vector<PortRange> ports) {
  Rule r;
  r.id = id;
  r.kind = DestKind::kServiceTag;
  r.dest = tag;
  for (const auto& c : cidrs) {
    auto p = Prefix::parse(c);
    EXPECT_TRUE(p.ok()) << c;
    r.prefixes.add(*p);
  }
  r.prefixes.normalize();
  r.ports = std::move(ports);
  return r;
}

PortRange port(uint16_t p) { return PortRange{p, p}; }

const CheckTarget* find(const std::vector<CheckTarget>& ts, const std::string& host, uint16_t p) {
  for (const auto& t : ts)
    if (t.host == host && t.port == p) return &t;
  return nullptr;
}

TEST(CheckPlan, ExactNamesWildcardsTagsUdpAndIngress) {
  Policy p;
  p.rules.push_back(tag_rule("NR2", "AzureMachineLearning", {"198.51.100.0/28", "2001:db8::/64"}, {port(443)}));
  p.rules.push_back(name_rule("AR4", "pypi.org", {port(80), port(443)}));
  p.rules.push_back(name_rule("AR2", "*.anaconda.com", {port(80), port(443)}));
  p.rules.push_back(name_rule("AR6", "*pytorch.org", {port(443)}));
  p.rules.push_back(name_rule("MH2", "management.azure.com", {port(443)}));
  p.rules.push_back(name_rule("MH3", "management.azure.com", {port(443)}));
  p.rules.push_back(name_rule("U1", "all.example.com", {PortRange{}}));
  p.rules.push_back(name_rule("U2", "range.example.com", {PortRange{8000, 8010}}));
  p.rules.push_back(name_rule("U3", "dns.example.com", {port(53)}, Proto::kUdp));
  Rule in = tag_rule("IN1", "BatchNodeManagement", {"203.0.113.0/28"}, {PortRange{29876, 29877}});
  in.direction = Direction::kIngress;
  p.rules.push_back(in);

  auto ts = plan_check(p, {});
  // pypi.org on both ports, probed.
  ASSERT_NE(find(ts, "pypi.org", 80), nullptr);
  ASSERT_NE(find(ts, "pypi.org", 443), nullptr);
  EXPECT_TRUE(find(ts, "pypi.org", 443)->probe);
  // Two rules, one endpoint, both rule ids.
  const auto* mgmt = find(ts, "management.azure.com", 443);
  ASSERT_NE(mgmt, nullptr);
  EXPECT_EQ(mgmt->rule_ids, (std::vector<std::string>{"MH2", "MH3"}));
  // Every port -> 443; a range -> its first kMaxPortsPerRule ports.
  EXPECT_NE(find(ts, "all.example.com", 443), nullptr);
  size_t range_ports = 0;
  for (const auto& t : ts) range_ports += t.host == "range.example.com";
  EXPECT_EQ(range_ports, kMaxPortsPerRule);
  EXPECT_NE(find(ts, "range.example.com", 8000), nullptr);
  EXPECT_EQ(find(ts, "range.example.com", 8010), nullptr);

  size_t wild = 0, tag = 0, udp = 0, ingress = 0;
  for (const auto& t : ts) {
    if (t.pattern == "*.anaconda.com" || t.pattern == "*pytorch.org") {
      ++wild;
      EXPECT_FALSE(t.probe);
      EXPECT_NE(t.note.find("wildcard"), std::string::npos);
    }
    if (t.kind == DestKind::kServiceTag && t.pattern == "AzureMachineLearning") {
      ++tag;
      EXPECT_FALSE(t.probe);
      EXPECT_NE(t.note.find("--probe-tags"), std::string::npos);
    }
    if (t.proto == Proto::kUdp) {
      ++udp;
      EXPECT_FALSE(t.probe);
      EXPECT_EQ(t.host, "dns.example.com");
    }
    if (t.pattern == "BatchNodeManagement") ++ingress;
  }
  EXPECT_EQ(wild, 2u);
  EXPECT_EQ(tag, 1u);
  EXPECT_EQ(udp, 1u);
  EXPECT_EQ(ingress, 0u) << "inbound rules are not probed";

  // Deterministic.
  auto again = plan_check(p, {});
  ASSERT_EQ(again.size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(again[i].host, ts[i].host);
    EXPECT_EQ(again[i].port, ts[i].port);
    EXPECT_EQ(again[i].pattern, ts[i].pattern);
  }
}

TEST(CheckPlan, SamplesAndRangesWhenAsked) {
  Policy p;
  p.rules.push_back(tag_rule("NR2", "AzureMachineLearning", {"198.51.100.16/28", "2001:db8::/64"}, {port(443)}));
  p.rules.push_back(tag_rule("V6", "OnlyV6", {"2001:db8:1::/64"}, {port(443)}));
  p.rules.push_back(name_rule("AR2", "*.anaconda.com", {port(443)}));
  p.rules.push_back(name_rule("AR6", "*pytorch.org", {port(443)}));
  p.rules.push_back(name_rule("AH3", "*.notebooks.azure.net", {port(443)}));
  CheckPlanOptions o;
  o.probe_ranges = true;
  o.wildcard_samples = true;
  o.known_names = {"repo.ANACONDA.com.", "evilanaconda.com", "download.pytorch.org"};
  auto ts = plan_check(p, o);

  const CheckTarget* aml = nullptr;
  const CheckTarget* v6 = nullptr;
  for (const auto& t : ts) {
    if (t.pattern == "AzureMachineLearning") aml = &t;
    if (t.pattern == "OnlyV6") v6 = &t;
  }
  ASSERT_NE(aml, nullptr);
  ASSERT_TRUE(aml->addr);
  EXPECT_EQ(aml->addr->str(), "198.51.100.17") << "the first address after the network address, IPv4 first";
  EXPECT_TRUE(aml->probe);
  ASSERT_NE(v6, nullptr);
  ASSERT_TRUE(v6->addr);
  EXPECT_EQ(v6->addr->str(), "2001:db8:1::1");

  // Known names (normalized) are samples; a look-alike is not.
  const auto* repo = find(ts, "repo.anaconda.com", 443);
  ASSERT_NE(repo, nullptr);
  EXPECT_TRUE(repo->probe);
  EXPECT_EQ(repo->note, "sample of *.anaconda.com");
  EXPECT_EQ(find(ts, "evilanaconda.com", 443), nullptr);
  // "*pytorch.org": its apex, and a known name under it.
  EXPECT_NE(find(ts, "pytorch.org", 443), nullptr);
  EXPECT_NE(find(ts, "download.pytorch.org", 443), nullptr);
  // No sample: not probed.
  bool notebooks = false;
  for (const auto& t : ts)
    if (t.pattern == "*.notebooks.azure.net") notebooks = !t.probe;
  EXPECT_TRUE(notebooks);
}

TEST(CheckPlan, SampleAddress) {
  PrefixSet s;
  EXPECT_FALSE(sample_address(s));
  s.add(*Prefix::parse("192.0.2.7/32"));
  s.normalize();
  EXPECT_EQ(sample_address(s)->str(), "192.0.2.7") << "a single address is itself";
}

// ---- probes on loopback ------------------------------------------------------------------

struct Listener {
  Fd fd;
  uint16_t port = 0;
  std::vector<Fd> fillers;  // connections that fill the accept queue
};

// A listening socket on 127.0.0.1. `full`: backlog 0 and its accept queue filled, so a
// further SYN is dropped and a connect times out.
Listener listen_loopback(bool full) {
  Listener l;
  l.fd = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(l.fd.valid());
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  EXPECT_EQ(::listen(l.fd.get(), full ? 0 : 64), 0);
  socklen_t len = sizeof sa;
  ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  l.port = ntohs(sa.sin_port);
  if (full) {
    for (int i = 0; i < 3; ++i) {
      Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      (void)::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
      l.fillers.push_back(std::move(c));
    }
    usleep(50 * 1000);
  }
  return l;
}

// A port nobody listens on (bound, then closed).
uint16_t closed_port() {
  Listener l = listen_loopback(false);
  return l.port;
}

const IpAddr kLoop = *IpAddr::parse("127.0.0.1");

TEST(CheckProbe, ReachableRefusedTimeout) {
  Listener open = listen_loopback(false);
  auto ok = probe_tcp(kLoop, open.port, milliseconds(1000));
  EXPECT_EQ(ok.status, CheckStatus::kReachable) << ok.detail;

  auto refused = probe_tcp(kLoop, closed_port(), milliseconds(1000));
  EXPECT_EQ(refused.status, CheckStatus::kRefused);
  EXPECT_NE(refused.detail.find("refused"), std::string::npos) << refused.detail;
  EXPECT_LT(refused.ms, 500);

  Listener full = listen_loopback(true);
  const auto t0 = Clock::now();
  auto slow = probe_tcp(kLoop, full.port, milliseconds(300));
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  EXPECT_EQ(slow.status, CheckStatus::kTimeout) << slow.detail;
  EXPECT_GE(took, 290);
  EXPECT_LT(took, 800);
  EXPECT_NE(slow.detail.find("no answer within 300 ms"), std::string::npos) << slow.detail;
}

class CheckRun : public ::testing::Test {
 protected:
  void SetUp() override {
    auto srv = test::MockDnsServer::start();
    ASSERT_TRUE(srv.ok()) << srv.error().message;
    dns_ = std::move(*srv);
  }
  CheckTarget name_target(const std::string& host, uint16_t p, const std::string& rule) {
    CheckTarget t;
    t.host = host;
    t.pattern = host;
    t.port = p;
    t.rule_ids = {rule};
    return t;
  }
  std::unique_ptr<test::MockDnsServer> dns_;
};

TEST_F(CheckRun, ResolvesConnectsJudgesAndAggregates) {
  Listener open = listen_loopback(false);
  const uint16_t closed = closed_port();
  dns_->add_a("ok.example.com", "127.0.0.1", 60);
  dns_->add_a("denied.example.com", "127.0.0.2", 60);   // nothing listens: refused
  dns_->add_a("upstream.example.com", "127.0.0.3", 60); // refused, but amlfw allows it
  dns_->set_rcode("broken.example.com", test::kAnyType, test::Rcode::kServFail);

  std::vector<CheckTarget> ts = {
      name_target("ok.example.com", open.port, "R1"),
      name_target("denied.example.com", closed, "R2"),
      name_target("upstream.example.com", closed, "R3"),
      name_target("nx.example.com", 443, "R4"),
      name_target("broken.example.com", 443, "R5"),
  };
  CheckTarget wild;
  wild.pattern = "*.example.org";
  wild.probe = false;
  wild.note = "wildcard: nothing concrete to probe";
  ts.push_back(wild);

  CheckOptions o;
  o.dns_servers = {dns_->endpoint()};
  o.dns_timeout = milliseconds(3000);
  size_t judged = 0;
  o.judge = [&](const IpAddr& a, uint16_t, Proto, const std::string& host) {
    ++judged;
    if (host == "denied.example.com") return CheckJudgement{false, "", "no rule allows " + a.str()};
    return CheckJudgement{true, "R3", "allowed"};
  };
  auto rep = run_check(ts, o);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  ASSERT_EQ(rep->endpoints.size(), ts.size());
  EXPECT_EQ(rep->endpoints[0].status, CheckStatus::kReachable) << rep->endpoints[0].detail;
  ASSERT_EQ(rep->endpoints[0].addrs.size(), 1u);
  EXPECT_FALSE(rep->endpoints[0].addrs[0].judgement) << "successes are not judged";
  EXPECT_EQ(rep->endpoints[1].status, CheckStatus::kBlocked);
  EXPECT_NE(rep->endpoints[1].detail.find("blocked by amlfw: no rule allows 127.0.0.2"), std::string::npos)
      << rep->endpoints[1].detail;
  EXPECT_EQ(rep->endpoints[2].status, CheckStatus::kRefused);
  EXPECT_NE(rep->endpoints[2].detail.find("amlfw allows it: R3"), std::string::npos) << rep->endpoints[2].detail;
  EXPECT_EQ(rep->endpoints[3].status, CheckStatus::kDnsFailure);
  EXPECT_NE(rep->endpoints[3].detail.find("NXDOMAIN"), std::string::npos) << rep->endpoints[3].detail;
  EXPECT_EQ(rep->endpoints[4].status, CheckStatus::kDnsFailure) << rep->endpoints[4].detail;
  EXPECT_EQ(rep->endpoints[5].status, CheckStatus::kNotProbed);
  EXPECT_EQ(judged, 2u);
  EXPECT_EQ(rep->reachable, 1u);
  EXPECT_EQ(rep->failed, 4u);
  EXPECT_EQ(rep->not_probed, 1u);
  EXPECT_FALSE(rep->ok());

  auto j = check_json(*rep);
  EXPECT_EQ(j["failed"], 4);
  EXPECT_EQ(j["endpoints"][1]["status"], "blocked");
  EXPECT_EQ(j["endpoints"][1]["addresses"][0]["amlfw"], "deny");
  EXPECT_EQ(j["endpoints"][2]["addresses"][0]["rule"], "R3");
  EXPECT_EQ(j["endpoints"][0]["host"], "ok.example.com");
  const std::string table = check_table(*rep);
  EXPECT_NE(table.find("1 reachable, 4 failed, 1 not probed"), std::string::npos) << table;
  EXPECT_NE(table.find("not-probed"), std::string::npos);
}

TEST_F(CheckRun, OneAddressPerFamilyAndTheWorstWins) {
  Listener open = listen_loopback(false);
  // Two IPv4 answers: only the first is probed.
  dns_->add_a("two.example.com", "127.0.0.1", 60);
  dns_->add_a("two.example.com", "127.0.0.9", 60);
  CheckOptions o;
  o.dns_servers = {dns_->endpoint()};
  auto rep = run_check({name_target("two.example.com", open.port, "R1")}, o);
  ASSERT_TRUE(rep.ok());
  ASSERT_EQ(rep->endpoints[0].addrs.size(), 1u);
  EXPECT_EQ(rep->endpoints[0].status, CheckStatus::kReachable);
  EXPECT_TRUE(rep->ok());
}

TEST_F(CheckRun, NoDnsServerIsADnsFailureNotACrash) {
  CheckOptions o;
  auto rep = run_check({name_target("a.example.com", 443, "R1")}, o);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->endpoints[0].status, CheckStatus::kDnsFailure);
  EXPECT_NE(rep->endpoints[0].detail.find("no DNS server"), std::string::npos);
}

TEST_F(CheckRun, BoundedConcurrencyAndTotalTime) {
  Listener full = listen_loopback(true);
  std::vector<CheckTarget> ts;
  for (int i = 0; i < 12; ++i) {
    CheckTarget t;
    t.pattern = "Tag" + std::to_string(i);
    t.kind = DestKind::kServiceTag;
    t.addr = IpAddr::v4addr((127u << 24) | static_cast<uint32_t>(1 + i));
    t.port = full.port;
    ts.push_back(t);
  }
  // 127.0.0.1 is the full listener (times out); 127.0.0.2.. have no listener (refused at
  // once). 4 at a time: the refusals do not wait behind the slow one.
  CheckOptions o;
  o.connect_timeout = milliseconds(300);
  o.total_timeout = milliseconds(10000);
  o.concurrency = 4;
  auto rep = run_check(ts, o);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->endpoints[0].status, CheckStatus::kTimeout);
  for (size_t i = 1; i < ts.size(); ++i) EXPECT_EQ(rep->endpoints[i].status, CheckStatus::kRefused) << i;
  EXPECT_LT(rep->elapsed_ms, 800);

  // Many slow ones, 2 at a time, 300 ms each, 500 ms in all: the total bound holds and the
  // ones never tried say so.
  std::vector<Listener> slow;
  std::vector<CheckTarget> ts2;
  for (int i = 0; i < 6; ++i) {
    slow.push_back(listen_loopback(true));
    CheckTarget t;
    t.pattern = "Slow" + std::to_string(i);
    t.kind = DestKind::kCidr;
    t.addr = kLoop;
    t.port = slow.back().port;
    ts2.push_back(t);
  }
  o.concurrency = 2;
  o.total_timeout = milliseconds(500);
  const auto t0 = Clock::now();
  auto rep2 = run_check(ts2, o);
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  ASSERT_TRUE(rep2.ok());
  EXPECT_LT(took, 900) << "the total time bounds the run";
  EXPECT_EQ(rep2->failed, 6u);
  size_t never = 0;
  for (const auto& e : rep2->endpoints) {
    EXPECT_EQ(e.status, CheckStatus::kTimeout);
    if (e.detail.find("total time") != std::string::npos) ++never;
  }
  EXPECT_GE(never, 2u) << "2 at a time, 300 ms each, 500 ms in all: at most 4 were tried";
}

}  // namespace
}  // namespace amlfw
