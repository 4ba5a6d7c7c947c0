// SPDX-License-Identifier: MIT
// The DNS proxy against the scripted mock upstream, with a fake Enforcer that records
// learn() calls and checks, at the moment of each call, that the client has no answer yet.
#include "daemon/dns_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "daemon/learn.h"
#include "tests/unit/mock_dns_server.h"
#include "tests/unit/ci_skip.h"

namespace amlfw {
namespace {

using namespace std::chrono_literals;
using test::kAnyType;
using test::kTypeA;
using test::kTypeAaaa;
using test::MockDnsServer;
using test::MockRecord;
using test::Rcode;

IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

struct LearnCall {
  std::vector<std::string> groups;
  std::vector<LearnedAddr> addrs;
  bool client_had_answer = false;  // must stay false: the answer comes after learn()
};

class FakeEnforcer final : public Enforcer {
 public:
  std::string_view name() const override { return "fake"; }
  Status apply(const Policy&, const std::vector<PortGroup>&) override { return {}; }
  Status learn(const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs) override {
    LearnCall c{groups, addrs, false};
    for (int fd : watch_fds) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) c.client_had_answer = true;
    }
    calls.push_back(c);
    if (fail) return runtime_error("learn: the kernel said no (test)");
    return {};
  }
  Status flush() override { return {}; }

  std::vector<LearnCall> calls;
  std::vector<int> watch_fds;
  bool fail = false;
};

Policy test_policy() {
  Policy p;
  auto add = [&](const char* pattern, std::vector<PortRange> ports, const char* id) {
    Rule r;
    r.id = id;
    r.kind = DestKind::kFqdn;
    r.direction = Direction::kEgress;
    r.proto = Proto::kTcp;
    r.ports = ports;
    r.pattern = NamePattern::parse(pattern).value();
    r.dest = pattern;
    p.rules.push_back(r);
  };
  add("*.anaconda.com", {{443, 443}}, "AR2");
  add("*pytorch.org", {{443, 443}}, "AR5");
  add("*.instances.azureml.ms", {{443, 443}, {8787, 8787}, {18881, 18881}}, "CH3");
  add("files.pythonhosted.org", {{443, 443}}, "AR4");
  add("*.example.test", {{443, 443}}, "T1");
  return p;
}

std::vector<uint8_t> rdata(const char* addr) {
  IpAddr a = ip(addr);
  std::vector<uint8_t> b(a.v6 ? 16 : 4);
  a.to_bytes(b.data());
  return b;
}

struct Reply {
  dns::Header h;
  std::vector<uint8_t> raw;
  std::vector<IpAddr> addrs;
};

class DnsProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto srv = MockDnsServer::start();
    ASSERT_TRUE(srv.ok()) << srv.error().message;
    dns_ = std::move(srv).value();
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(loop).value();
    policy_ = test_policy();
    LearnLimits lim;
    lim.min_ttl_s = 60;
    lim.max_ttl_s = 3600;
    lim.grace_s = 900;
    lim.max_per_name = 64;
    learner_ = std::make_unique<DnsLearner>(
        enforcer_, [this](std::string_view n) { return groups_for_name(policy_, n); }, lim, 1000);
  }
  void TearDown() override {
    proxy_.reset();
    loop_.reset();
  }

  DnsProxyOptions options() {
    DnsProxyOptions o;
    o.listen = {SocketAddress{ip("127.0.0.1"), 0}};
    o.upstreams = {SocketAddress{ip("127.0.0.1"), dns_->port()}};
    o.upstream_timeout = 300ms;
    return o;
  }
  void start(DnsProxyOptions o) {
    auto p = DnsProxy::create(*loop_, *learner_, std::move(o));
    ASSERT_TRUE(p.ok()) << p.error().message;
    proxy_ = std::move(p).value();
  }
  void start() { start(options()); }

  sockaddr_in proxy_addr() const {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(proxy_->bound()[0].port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
  }
  Fd udp_client() {
    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in sa = proxy_addr();
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    enforcer_.watch_fds.push_back(fd.get());
    return fd;
  }
  Fd tcp_client() {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa = proxy_addr();
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    enforcer_.watch_fds.push_back(fd.get());
    return fd;
  }

  // Runs the loop until `fd` is readable or `limit` passes.
  bool run_until_readable(int fd, std::chrono::milliseconds limit = 3s) {
    auto end = EventLoop::now() + limit;
    while (EventLoop::now() < end) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) return true;
      EXPECT_TRUE(loop_->run_once(5ms).ok());
    }
    return false;
  }
  void run_for(std::chrono::milliseconds d) {
    auto end = EventLoop::now() + d;
    while (EventLoop::now() < end) ASSERT_TRUE(loop_->run_once(5ms).ok());
  }

  static Reply decode(std::vector<uint8_t> raw, std::string_view name, uint16_t type) {
    Reply r;
    r.raw = raw;
    dns::Query q;
    auto qm = dns::make_query(0, name, type);
    dns::parse_query(qm, &q);
    dns::Answer ans;
    dns::parse_header(raw, &r.h);
    if (dns::parse_response(raw, r.h.id, q.question, true, &ans) == dns::ResponseStatus::kOk)
      for (auto& [a, ttl] : ans.addrs) r.addrs.push_back(a);
    return r;
  }

  std::optional<Reply> ask_udp(std::string_view name, uint16_t type = kTypeA, uint16_t id = 0x4242,
                               std::chrono::milliseconds limit = 3s) {
    Fd fd = udp_client();
    auto q = dns::make_query(id, name, type);
    EXPECT_EQ(::send(fd.get(), q.data(), q.size(), 0), static_cast<ssize_t>(q.size()));
    if (!run_until_readable(fd.get(), limit)) return std::nullopt;
    std::vector<uint8_t> buf(65535);
    ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n <= 0) return std::nullopt;
    buf.resize(static_cast<size_t>(n));
    return decode(buf, name, type);
  }

  static bool read_frame(int fd, std::vector<uint8_t>* out) {
    uint8_t len[2];
    if (::recv(fd, len, 2, MSG_WAITALL) != 2) return false;
    out->resize(dns::read16(len));
    return ::recv(fd, out->data(), out->size(), MSG_WAITALL) == static_cast<ssize_t>(out->size());
  }
  static void write_frame(int fd, const std::vector<uint8_t>& q) {
    std::vector<uint8_t> f = {static_cast<uint8_t>(q.size() >> 8), static_cast<uint8_t>(q.size())};
    f.insert(f.end(), q.begin(), q.end());
    ASSERT_EQ(::send(fd, f.data(), f.size(), MSG_NOSIGNAL), static_cast<ssize_t>(f.size()));
  }
  std::optional<Reply> ask_tcp(std::string_view name, uint16_t type = kTypeA, uint16_t id = 0x4343) {
    Fd fd = tcp_client();
    write_frame(fd.get(), dns::make_query(id, name, type));
    if (!run_until_readable(fd.get())) return std::nullopt;
    run_for(20ms);  // let the rest of a large answer be written
    std::vector<uint8_t> buf;
    if (!read_frame(fd.get(), &buf)) return std::nullopt;
    return decode(buf, name, type);
  }

  std::unique_ptr<MockDnsServer> dns_;
  std::unique_ptr<EventLoop> loop_;
  Policy policy_;
  FakeEnforcer enforcer_;
  std::unique_ptr<DnsLearner> learner_;
  std::unique_ptr<DnsProxy> proxy_;
};

TEST_F(DnsProxyTest, LearnsBeforeTheAnswerIsReleased) {
  dns_->add_a("repo.anaconda.com", "192.0.2.129", 30);
  dns_->add_a("repo.anaconda.com", "192.0.2.130", 7200);
  start();
  auto r = ask_udp("repo.anaconda.com");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->h.rcode(), 0);
  EXPECT_EQ(r->h.id, 0x4242);  // the client's id is restored
  EXPECT_EQ(r->addrs, (std::vector<IpAddr>{ip("192.0.2.129"), ip("192.0.2.130")}));
  ASSERT_EQ(enforcer_.calls.size(), 1u);
  const LearnCall& c = enforcer_.calls[0];
  EXPECT_FALSE(c.client_had_answer) << "the client had the answer before learn() returned";
  EXPECT_EQ(c.groups, std::vector<std::string>{"e_tcp_443"});
  ASSERT_EQ(c.addrs.size(), 2u);
  EXPECT_EQ(c.addrs[0].addr, ip("192.0.2.129"));
  EXPECT_EQ(c.addrs[0].timeout_s, 60u + 900u);    // TTL 30 raised to min_ttl, plus grace
  EXPECT_EQ(c.addrs[1].timeout_s, 3600u + 900u);  // TTL 7200 capped at max_ttl
  // The upstream saw a different, random id.
  auto qs = dns_->queries();
  ASSERT_EQ(qs.size(), 1u);
  EXPECT_EQ(learner_->size(), 2u);
}

TEST_F(DnsProxyTest, LearnFailureGivesServfail) {
  dns_->add_a("repo.anaconda.com", "192.0.2.129", 300);
  enforcer_.fail = true;
  start();
  auto r = ask_udp("repo.anaconda.com");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->h.rcode(), dns::kServFail);
  EXPECT_TRUE(r->addrs.empty());
  EXPECT_EQ(r->h.id, 0x4242);
  EXPECT_EQ(enforcer_.calls.size(), 1u);
  EXPECT_EQ(proxy_->stats().servfail_learn, 1u);
  EXPECT_EQ(learner_->size(), 0u);
}

TEST_F(DnsProxyTest, CnameChainsCountFromTheQuestion) {
  dns_->add_cname("mystore.anaconda.com", "blob.ams07.store.test", 60);
  dns_->add_cname("blob.ams07.store.test", "x.store.test", 60);
  dns_->add_a("x.store.test", "192.0.2.137", 300);
  start();
  auto r = ask_udp("mystore.anaconda.com");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->addrs, std::vector<IpAddr>{ip("192.0.2.137")});
  ASSERT_EQ(enforcer_.calls.size(), 1u);
  ASSERT_EQ(enforcer_.calls[0].addrs.size(), 1u);
  EXPECT_EQ(enforcer_.calls[0].addrs[0].addr, ip("192.0.2.137"));
  // (the mock runs no script while a handler is set)
  // The answer also carries an address for a name outside the chain: it teaches nothing.
  dns_->set_handler([](const test::DnsQuestion& q, const std::vector<uint8_t>& query) -> std::optional<std::vector<uint8_t>> {
    if (q.name != "extra.anaconda.com") return std::nullopt;
    return MockDnsServer::make_response(query, Rcode::kNoError,
                                        {{"extra.anaconda.com", kTypeA, 60, rdata("192.0.2.140")},
                                         {"evil.test", kTypeA, 60, rdata("192.0.2.141")}});
  });
  // A name whose chain leaves the pattern is still decided by the question.
  auto r2 = ask_udp("extra.anaconda.com");
  ASSERT_TRUE(r2);
  ASSERT_EQ(enforcer_.calls.size(), 2u);
  ASSERT_EQ(enforcer_.calls[1].addrs.size(), 1u);
  EXPECT_EQ(enforcer_.calls[1].addrs[0].addr, ip("192.0.2.140"));
  EXPECT_EQ(r2->raw.size() > 0, true);
}

TEST_F(DnsProxyTest, CaseAndTrailingDot) {
  dns_->add_a("download.pytorch.org", "192.0.2.132", 300);
  dns_->add_aaaa("download.pytorch.org", "2001:db8:c1::132", 300);
  start();
  auto r = ask_udp("DownLoad.PyTorch.ORG.");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->addrs, std::vector<IpAddr>{ip("192.0.2.132")});
  auto r6 = ask_udp("download.PYTORCH.org", kTypeAaaa);
  ASSERT_TRUE(r6);
  ASSERT_EQ(enforcer_.calls.size(), 2u);
  EXPECT_EQ(enforcer_.calls[0].addrs[0].addr, ip("192.0.2.132"));
  EXPECT_EQ(enforcer_.calls[1].addrs[0].addr, ip("2001:db8:c1::132"));
  // The apex of "*pytorch.org" too.
  dns_->add_a("pytorch.org", "192.0.2.80", 300);
  ASSERT_TRUE(ask_udp("PyTorch.org."));
  EXPECT_EQ(enforcer_.calls.size(), 3u);
}

TEST_F(DnsProxyTest, LookAlikesAndOtherNamesLearnNothing) {
  for (const char* n : {"evilpytorch.org", "anaconda.com.evil.example", "anaconda.com", "example.org",
                        "pythonhosted.org", "x.files.pythonhosted.org"}) {
    dns_->add_a(n, "192.0.2.201", 300);
  }
  start();
  for (const char* n : {"evilpytorch.org", "anaconda.com.evil.example", "anaconda.com", "example.org",
                        "pythonhosted.org", "x.files.pythonhosted.org"}) {
    auto r = ask_udp(n);
    ASSERT_TRUE(r) << n;
    EXPECT_EQ(r->h.rcode(), 0) << n;
    EXPECT_EQ(r->addrs, std::vector<IpAddr>{ip("192.0.2.201")}) << n << ": forwarded unchanged";
  }
  EXPECT_TRUE(enforcer_.calls.empty());
  EXPECT_EQ(learner_->size(), 0u);
}

TEST_F(DnsProxyTest, RebindingAnswersAreNotLearned) {
  dns_->add_a("rebind.anaconda.com", "10.0.0.5", 300);
  dns_->add_a("rebind.anaconda.com", "203.0.113.5", 300);
  dns_->add_aaaa("rebind.anaconda.com", "fd00::5", 300);
  dns_->add_a("local.anaconda.com", "127.0.0.1", 300);
  start();
  auto r = ask_udp("rebind.anaconda.com");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->addrs.size(), 2u);  // the answer itself is relayed
  ASSERT_EQ(enforcer_.calls.size(), 1u);
  ASSERT_EQ(enforcer_.calls[0].addrs.size(), 1u);
  EXPECT_EQ(enforcer_.calls[0].addrs[0].addr, ip("203.0.113.5"));  // documentation range: learned
  ASSERT_TRUE(ask_udp("rebind.anaconda.com", kTypeAaaa));
  ASSERT_TRUE(ask_udp("local.anaconda.com"));
  EXPECT_EQ(enforcer_.calls.size(), 1u);
  EXPECT_EQ(learner_->stats().refused_special, 3u);
}

TEST_F(DnsProxyTest, PerNameAndTotalBounds) {
  for (int i = 0; i < 70; ++i) dns_->add_a("many.anaconda.com", ("203.0.113." + std::to_string(i)).c_str(), 300);
  start();
  auto r = ask_tcp("many.anaconda.com");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->addrs.size(), 70u);  // the answer is not cut
  ASSERT_EQ(enforcer_.calls.size(), 1u);
  EXPECT_EQ(enforcer_.calls[0].addrs.size(), 64u);
  EXPECT_EQ(learner_->stats().over_name_bound, 6u);

  // Total bound: 64 learned + room for 2 more.
  LearnLimits lim = LearnLimits{};
  learner_->set_limits(lim, 66);
  std::vector<std::string> notices;
  learner_->set_notice([&](const std::string& l) { notices.push_back(l); });
  for (int i = 0; i < 3; ++i) dns_->add_a("three.anaconda.com", ("198.51.100." + std::to_string(i)).c_str(), 300);
  ASSERT_TRUE(ask_udp("three.anaconda.com"));
  ASSERT_EQ(enforcer_.calls.size(), 2u);
  EXPECT_EQ(enforcer_.calls[1].addrs.size(), 2u);
  EXPECT_EQ(learner_->size(), 66u);
  EXPECT_EQ(learner_->stats().over_total_bound, 1u);
  ASSERT_FALSE(notices.empty());
  EXPECT_NE(notices.back().find("dns.max_learned"), std::string::npos) << notices.back();
}

TEST_F(DnsProxyTest, RenewalsAndTheirSlack) {
  dns_->add_a("repo.anaconda.com", "192.0.2.129", 300);
  start();
  ASSERT_TRUE(ask_udp("repo.anaconda.com"));
  ASSERT_TRUE(ask_udp("repo.anaconda.com"));
  EXPECT_EQ(enforcer_.calls.size(), 1u);  // the second answer would renew by less than 1 s
  EXPECT_EQ(learner_->stats().renewals_skipped, 1u);
  learner_->set_renew_slack(0ms);
  run_for(10ms);
  ASSERT_TRUE(ask_udp("repo.anaconda.com"));
  ASSERT_EQ(enforcer_.calls.size(), 2u);  // every answer renews the lifetime
  EXPECT_EQ(enforcer_.calls[1].addrs[0].timeout_s, 300u + 900u);
}

TEST_F(DnsProxyTest, TruncatedOverUdpThenCompleteOverTcp) {
  for (int i = 0; i < 40; ++i) dns_->add_a("big.example.test", ("203.0.113." + std::to_string(100 + i)).c_str(), 300);
  start();
  auto u = ask_udp("big.example.test");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->h.tc());
  EXPECT_TRUE(u->addrs.empty());
  EXPECT_TRUE(enforcer_.calls.empty());
  auto t = ask_tcp("big.example.test");
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->h.tc());
  EXPECT_EQ(t->h.id, 0x4343);
  EXPECT_EQ(t->addrs.size(), 40u);
  ASSERT_EQ(enforcer_.calls.size(), 1u);
  EXPECT_EQ(enforcer_.calls[0].addrs.size(), 40u);
  EXPECT_FALSE(enforcer_.calls[0].client_had_answer);
  EXPECT_GE(dns_->tcp_query_count(), 1u);  // a TCP client is served over TCP upstream
}

TEST_F(DnsProxyTest, TcpPipelinedQueriesAndIdle) {
  dns_->add_a("a.example.test", "192.0.2.1", 300);
  dns_->add_a("b.example.test", "192.0.2.2", 300);
  auto o = options();
  o.tcp_idle = 150ms;
  start(o);
  Fd fd = tcp_client();
  write_frame(fd.get(), dns::make_query(1, "a.example.test", kTypeA));
  write_frame(fd.get(), dns::make_query(2, "b.example.test", kTypeA));
  std::vector<uint16_t> ids;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(run_until_readable(fd.get()));
    std::vector<uint8_t> buf;
    ASSERT_TRUE(read_frame(fd.get(), &buf));
    ids.push_back(dns::read16(buf.data()));
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint16_t>{1, 2}));
  EXPECT_EQ(proxy_->tcp_clients(), 1u);
  run_for(300ms);
  EXPECT_EQ(proxy_->tcp_clients(), 0u);  // idle: closed
  EXPECT_EQ(proxy_->stats().tcp_idle_closed, 1u);
  char c;
  EXPECT_EQ(::recv(fd.get(), &c, 1, MSG_DONTWAIT), 0);  // EOF
}

TEST_F(DnsProxyTest, TcpClientsAreBounded) {
  auto o = options();
  o.max_tcp_clients = 2;
  start(o);
  Fd a = tcp_client(), b = tcp_client();
  run_for(30ms);
  Fd c = tcp_client();
  run_for(30ms);
  EXPECT_EQ(proxy_->tcp_clients(), 2u);
  EXPECT_EQ(proxy_->stats().tcp_refused, 1u);
  char x;
  EXPECT_EQ(::recv(c.get(), &x, 1, MSG_DONTWAIT), 0);  // closed at once
}

TEST_F(DnsProxyTest, UpstreamDownGivesServfailQuickly) {
  // A port nobody listens on: connection refused (ICMP) at once.
  Fd probe(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  const uint16_t dead_port = ntohs(sa.sin_port);
  probe.reset();
  auto o = options();
  o.upstreams = {SocketAddress{ip("127.0.0.1"), dead_port}};
  start(o);
  auto t0 = EventLoop::now();
  auto r = ask_udp("repo.anaconda.com");
  auto took = EventLoop::now() - t0;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->h.rcode(), dns::kServFail);
  EXPECT_LT(took, 200ms);
  EXPECT_TRUE(enforcer_.calls.empty());
  // A silent upstream: SERVFAIL after the attempts time out (2 x 300 ms here).
  dns_->set_drop("repo.anaconda.com", kAnyType);
  proxy_->set_upstreams({SocketAddress{ip("127.0.0.1"), dns_->port()}});
  t0 = EventLoop::now();
  r = ask_udp("repo.anaconda.com");
  took = EventLoop::now() - t0;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->h.rcode(), dns::kServFail);
  EXPECT_GE(took, 550ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(dns_->query_count("repo.anaconda.com", kTypeA), 2u);
  EXPECT_TRUE(enforcer_.calls.empty());
}

TEST_F(DnsProxyTest, FailsOverToTheNextUpstream) {
  auto second = MockDnsServer::start();
  ASSERT_TRUE(second.ok());
  (*second)->add_a("repo.anaconda.com", "192.0.2.129", 300);
  dns_->set_rcode("repo.anaconda.com", kAnyType, Rcode::kServFail);
  auto o = options();
  o.upstreams.push_back(SocketAddress{ip("127.0.0.1"), (*second)->port()});
  start(o);
  auto r = ask_udp("repo.anaconda.com");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->h.rcode(), 0);
  EXPECT_EQ(r->addrs, std::vector<IpAddr>{ip("192.0.2.129")});
  EXPECT_EQ(proxy_->stats().upstream_failovers, 1u);
  // The one that answered is preferred from now on.
  ASSERT_TRUE(ask_udp("repo.anaconda.com"));
  EXPECT_EQ(dns_->query_count("repo.anaconda.com", kTypeA), 1u);
  EXPECT_EQ((*second)->query_count("repo.anaconda.com", kTypeA), 2u);
}

TEST_F(DnsProxyTest, StrayAnswersAreIgnored) {
  dns_->add_a("repo.anaconda.com", "192.0.2.129", 300);
  // The upstream answers with a wrong id first, then the real answer comes by the script.
  dns_->set_handler([](const test::DnsQuestion& q, const std::vector<uint8_t>& query) -> std::optional<std::vector<uint8_t>> {
    if (q.name != "spoof.anaconda.com") return std::nullopt;
    auto r = MockDnsServer::make_response(query, Rcode::kNoError, {{"spoof.anaconda.com", kTypeA, 60, rdata("192.0.2.66")}});
    r[0] ^= 0x55;  // wrong id
    return r;
  });
  start();
  auto r = ask_udp("spoof.anaconda.com", kTypeA, 0x4242, 1500ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->h.rcode(), dns::kServFail);  // only stray answers: the attempts time out
  EXPECT_TRUE(enforcer_.calls.empty());
  EXPECT_GE(proxy_->stats().stray_answers, 2u);
}

TEST_F(DnsProxyTest, MalformedQueries) {
  start();
  Fd fd = udp_client();
  std::vector<uint8_t> buf(65535);
  // Not even a header: dropped.
  uint8_t shortq[5] = {1, 2, 3, 4, 5};
  ::send(fd.get(), shortq, sizeof shortq, 0);
  run_for(50ms);
  EXPECT_LT(::recv(fd.get(), buf.data(), buf.size(), MSG_DONTWAIT), 0);
  // No question: FORMERR.
  auto q = dns::make_query(0x1111, "a.example.test", kTypeA);
  q[5] = 0;
  ::send(fd.get(), q.data(), q.size(), 0);
  ASSERT_TRUE(run_until_readable(fd.get()));
  ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
  ASSERT_GE(n, 12);
  EXPECT_EQ(buf[3] & 0xf, dns::kFormErr);
  EXPECT_EQ(dns::read16(buf.data()), 0x1111);
  // A name running past the end: FORMERR.
  q = dns::make_query(0x2222, "a.example.test", kTypeA);
  q[12] = 63;
  ::send(fd.get(), q.data(), q.size(), 0);
  ASSERT_TRUE(run_until_readable(fd.get()));
  n = ::recv(fd.get(), buf.data(), buf.size(), 0);
  ASSERT_GE(n, 12);
  EXPECT_EQ(buf[3] & 0xf, dns::kFormErr);
  // A response sent to the proxy: dropped.
  q = dns::make_query(0x3333, "a.example.test", kTypeA);
  q[2] |= 0x80;
  ::send(fd.get(), q.data(), q.size(), 0);
  run_for(50ms);
  EXPECT_LT(::recv(fd.get(), buf.data(), buf.size(), MSG_DONTWAIT), 0);
  EXPECT_EQ(dns_->query_count(), 0u);
  EXPECT_EQ(proxy_->stats().formerr, 2u);
  EXPECT_EQ(proxy_->stats().dropped, 2u);
  // Still serving.
  dns_->add_a("a.example.test", "192.0.2.1", 300);
  auto r = ask_udp("a.example.test");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->addrs, std::vector<IpAddr>{ip("192.0.2.1")});
}

TEST_F(DnsProxyTest, MalformedUpstreamAnswerForAnAllowedNameIsServfail) {
  dns_->set_handler([](const test::DnsQuestion&, const std::vector<uint8_t>& query) -> std::optional<std::vector<uint8_t>> {
    auto r = MockDnsServer::make_response(query, Rcode::kNoError, {{"x.anaconda.com", kTypeA, 60, {1, 2, 3}}});
    return r;  // an A record of 3 bytes
  });
  start();
  auto r = ask_udp("x.anaconda.com");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->h.rcode(), dns::kServFail);
  EXPECT_TRUE(enforcer_.calls.empty());
  EXPECT_GE(proxy_->stats().servfail_bad_answer, 1u);
}

TEST_F(DnsProxyTest, PendingQueriesAreBounded) {
  dns_->set_delay("slow.example.test", kAnyType, 400ms);
  dns_->add_a("slow.example.test", "192.0.2.9", 300);
  auto o = options();
  o.max_pending = 3;
  o.upstream_timeout = 1000ms;
  start(o);
  std::vector<Fd> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(udp_client());
    auto q = dns::make_query(static_cast<uint16_t>(100 + i), "slow.example.test", kTypeA);
    ::send(clients.back().get(), q.data(), q.size(), 0);
    run_for(5ms);
  }
  // The oldest was answered SERVFAIL to make room, at once.
  ASSERT_TRUE(run_until_readable(clients[0].get(), 100ms));
  std::vector<uint8_t> buf(512);
  ASSERT_GE(::recv(clients[0].get(), buf.data(), buf.size(), 0), 12);
  EXPECT_EQ(buf[3] & 0xf, dns::kServFail);
  EXPECT_EQ(proxy_->pending(), 3u);
  EXPECT_EQ(proxy_->stats().pending_overflow, 1u);
  for (int i = 1; i < 4; ++i) {
    ASSERT_TRUE(run_until_readable(clients[static_cast<size_t>(i)].get(), 2s)) << i;
    ASSERT_GE(::recv(clients[static_cast<size_t>(i)].get(), buf.data(), buf.size(), 0), 12);
    EXPECT_EQ(buf[3] & 0xf, 0) << i;
  }
  EXPECT_EQ(proxy_->pending(), 0u);
}

TEST_F(DnsProxyTest, TcpGarbageClosesOnlyThatClient) {
  dns_->add_a("a.example.test", "192.0.2.1", 300);
  start();
  Fd bad = tcp_client();
  // A malformed question first: FORMERR on the same connection.
  auto q = dns::make_query(0x0101, "a.example.test", kTypeA);
  q[5] = 0;
  write_frame(bad.get(), q);
  ASSERT_TRUE(run_until_readable(bad.get()));
  std::vector<uint8_t> buf;
  ASSERT_TRUE(read_frame(bad.get(), &buf));
  EXPECT_EQ(buf[3] & 0xf, dns::kFormErr);
  // Then a frame too short for a header: the stream cannot be trusted, the client is closed.
  write_frame(bad.get(), {1, 2, 3, 4, 5});
  run_for(50ms);
  char c;
  EXPECT_EQ(::recv(bad.get(), &c, 1, MSG_DONTWAIT), 0);
  EXPECT_EQ(proxy_->tcp_clients(), 0u);
  // Others are served.
  auto r = ask_tcp("a.example.test");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->addrs, std::vector<IpAddr>{ip("192.0.2.1")});
}

TEST_F(DnsProxyTest, Ipv6ListenAndUpstream) {
  auto v6 = MockDnsServer::start("::1");
  if (!v6.ok()) AMLFW_SKIP_OR_FAIL_IN_CI("no IPv6 loopback: " + v6.error().message);
  (*v6)->add_aaaa("files.pythonhosted.org", "2001:db8:c1::131", 300);
  auto o = options();
  o.listen = {SocketAddress{ip("::1"), 0}};
  o.upstreams = {SocketAddress{ip("::1"), (*v6)->port()}};
  start(o);
  Fd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(proxy_->bound()[0].port);
  sa.sin6_addr = in6addr_loopback;
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  enforcer_.watch_fds.push_back(fd.get());
  auto q = dns::make_query(0x6666, "files.pythonhosted.org", kTypeAaaa);
  ASSERT_EQ(::send(fd.get(), q.data(), q.size(), 0), static_cast<ssize_t>(q.size()));
  ASSERT_TRUE(run_until_readable(fd.get()));
  std::vector<uint8_t> buf(4096);
  ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
  ASSERT_GT(n, 12);
  buf.resize(static_cast<size_t>(n));
  Reply r = decode(buf, "files.pythonhosted.org", kTypeAaaa);
  EXPECT_EQ(r.h.id, 0x6666);
  EXPECT_EQ(r.addrs, std::vector<IpAddr>{ip("2001:db8:c1::131")});
  ASSERT_EQ(enforcer_.calls.size(), 1u);
  EXPECT_FALSE(enforcer_.calls[0].client_had_answer);
}

TEST_F(DnsProxyTest, NoUpstreamIsServfail) {
  auto o = options();
  o.upstreams.clear();
  start(o);
  auto r = ask_udp("repo.anaconda.com");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->h.rcode(), dns::kServFail);
}

TEST_F(DnsProxyTest, NxdomainAndNodataAreRelayed) {
  dns_->add_aaaa("v6only.anaconda.com", "2001:db8::5", 300);
  start();
  auto nx = ask_udp("nothing.anaconda.com");
  ASSERT_TRUE(nx);
  EXPECT_EQ(nx->h.rcode(), dns::kNxDomain);
  auto nodata = ask_udp("v6only.anaconda.com", kTypeA);
  ASSERT_TRUE(nodata);
  EXPECT_EQ(nodata->h.rcode(), 0);
  EXPECT_TRUE(nodata->addrs.empty());
  EXPECT_TRUE(enforcer_.calls.empty());
}

}  // namespace
}  // namespace amlfw
