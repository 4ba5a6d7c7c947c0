// SPDX-License-Identifier: MIT
#include "daemon/resolver.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/unit/mock_dns_server.h"
#include "tests/unit/ci_skip.h"

namespace amlfw {
namespace {

using namespace std::chrono_literals;
using test::kAnyType;
using test::kTypeA;
using test::kTypeAaaa;
using test::MockDnsServer;
using test::Rcode;

IpAddr ip(const char* s) {
  auto a = IpAddr::parse(s);
  EXPECT_TRUE(a.has_value()) << s;
  return a.value_or(IpAddr{});
}

class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto srv = MockDnsServer::start();
    ASSERT_TRUE(srv.ok()) << srv.error().message;
    dns_ = std::move(srv).value();
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop.ok()) << loop.error().message;
    loop_ = std::move(loop).value();
  }
  void TearDown() override {
    resolver_.reset();  // before the loop
    loop_.reset();
  }

  Resolver& resolver(std::chrono::milliseconds timeout = 200ms, int tries = 2) {
    ResolverOptions o;
    o.servers = {dns_->endpoint()};
    o.timeout = timeout;
    o.tries = tries;
    auto r = Resolver::create(*loop_, o);
    EXPECT_TRUE(r.ok()) << r.error().message;
    resolver_ = std::move(r).value();
    return *resolver_;
  }

  void run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    auto end = EventLoop::now() + limit;
    while (!done() && EventLoop::now() < end) ASSERT_TRUE(loop_->run_once(20ms).ok());
  }

  Result<Resolution> resolve(std::string_view name) {
    if (!resolver_) resolver();
    std::optional<Result<Resolution>> out;
    resolver_->resolve(name, [&](Result<Resolution> r) { out.emplace(std::move(r)); });
    EXPECT_FALSE(out.has_value()) << "callback must not run inside resolve()";
    run_until([&] { return out.has_value(); });
    if (!out) return runtime_error("test: no callback within 5s");
    return std::move(*out);
  }

  std::unique_ptr<MockDnsServer> dns_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Resolver> resolver_;
};

TEST_F(ResolverTest, AandAaaaWithTtls) {
  dns_->add_a("api.example.com", "192.0.2.10", 300);
  dns_->add_a("api.example.com", "192.0.2.11", 60);
  dns_->add_aaaa("api.example.com", "2001:db8::10", 120);
  auto r = resolve("api.example.com");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "api.example.com");
  std::vector<ResolvedAddr> want{{ip("192.0.2.10"), 300}, {ip("192.0.2.11"), 60}, {ip("2001:db8::10"), 120}};
  EXPECT_EQ(r->addrs, want);
  EXPECT_EQ(r->min_ttl(), 60u);
  EXPECT_TRUE(r->complete);
  EXPECT_FALSE(r->nxdomain);
  EXPECT_EQ(dns_->query_count("api.example.com", kTypeA), 1u);
  EXPECT_EQ(dns_->query_count("api.example.com", kTypeAaaa), 1u);
  // c-ares closes its sockets once idle: every one left the loop.
  EXPECT_EQ(loop_->fd_count(), 0u);
}

TEST_F(ResolverTest, CaseAndTrailingDot) {
  dns_->add_a("api.example.com", "192.0.2.10", 30);
  auto r = resolve("API.Example.com.");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->addrs.size(), 1u);
  EXPECT_EQ(r->addrs[0].addr, ip("192.0.2.10"));
}

TEST_F(ResolverTest, CnameChainTtlIsTheSmallest) {
  dns_->add_cname("www.example.com", "edge.example.net", 30);
  dns_->add_cname("edge.example.net", "api.example.com", 500);
  dns_->add_a("api.example.com", "198.51.100.7", 300);
  dns_->add_aaaa("api.example.com", "2001:db8::7", 20);
  auto r = resolve("www.example.com");
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::vector<ResolvedAddr> want{{ip("198.51.100.7"), 30}, {ip("2001:db8::7"), 20}};
  EXPECT_EQ(r->addrs, want);
}

TEST_F(ResolverTest, NxdomainIsOkWithoutAddresses) {
  auto r = resolve("nothing.example.com");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->addrs.empty());
  EXPECT_TRUE(r->nxdomain);
  EXPECT_TRUE(r->complete);
}

TEST_F(ResolverTest, NodataForOneFamily) {
  dns_->add_a("v4only.example.com", "203.0.113.5", 42);
  auto r = resolve("v4only.example.com");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->addrs.size(), 1u);
  EXPECT_EQ(r->addrs[0], (ResolvedAddr{ip("203.0.113.5"), 42}));
  EXPECT_FALSE(r->nxdomain);
  EXPECT_TRUE(r->complete);
}

TEST_F(ResolverTest, ServfailIsAnError) {
  dns_->add_a("broken.example.com", "192.0.2.1", 60);
  dns_->set_rcode("broken.example.com", kAnyType, Rcode::kServFail);
  auto r = resolve("broken.example.com");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("broken.example.com"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("SERVFAIL"), std::string::npos) << r.error().message;
  EXPECT_EQ(dns_->query_count("broken.example.com", kTypeA), 2u);  // tries = 2
}

TEST_F(ResolverTest, RefusedIsAnError) {
  dns_->set_rcode("refused.example.com", kAnyType, Rcode::kRefused);
  auto r = resolve("refused.example.com");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("REFUSED"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("no usable answer"), std::string::npos) << r.error().message;
}

TEST_F(ResolverTest, NoAnswerTimesOutAfterTheConfiguredTries) {
  dns_->set_drop("slow.example.com", kAnyType);
  resolver(100ms, 2);
  auto start = EventLoop::now();
  auto r = resolve("slow.example.com");
  auto took = EventLoop::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_EQ(dns_->query_count("slow.example.com", kTypeA), 2u);  // two tries
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(loop_->fd_count(), 0u);
}

TEST_F(ResolverTest, OneFamilyFailingGivesPartialResult) {
  dns_->add_a("half.example.com", "192.0.2.33", 90);
  dns_->set_rcode("half.example.com", kTypeAaaa, Rcode::kServFail);
  auto r = resolve("half.example.com");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->addrs.size(), 1u);
  EXPECT_EQ(r->addrs[0], (ResolvedAddr{ip("192.0.2.33"), 90}));
  EXPECT_FALSE(r->complete);
  EXPECT_NE(r->partial_error.find("AAAA"), std::string::npos) << r->partial_error;
}

TEST_F(ResolverTest, OneFamilyFailingAndTheOtherEmptyIsAnError) {
  dns_->set_rcode("empty.example.com", kTypeA, Rcode::kServFail);
  dns_->add_aaaa("other.example.com", "2001:db8::1", 1);  // so the A side is not NXDOMAIN-only
  auto r = resolve("empty.example.com");
  EXPECT_FALSE(r.ok());
}

TEST_F(ResolverTest, TruncatedAnswerIsRetriedOverTcp) {
  dns_->add_a("big.example.com", "192.0.2.77", 600);
  dns_->add_aaaa("big.example.com", "2001:db8::77", 600);
  dns_->set_truncate("big.example.com", kAnyType);
  auto r = resolve("big.example.com");
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::vector<ResolvedAddr> want{{ip("192.0.2.77"), 600}, {ip("2001:db8::77"), 600}};
  EXPECT_EQ(r->addrs, want);
  EXPECT_EQ(dns_->tcp_query_count(), 2u);
  EXPECT_EQ(dns_->query_count(), 4u);  // A and AAAA, each over UDP then TCP
}

TEST_F(ResolverTest, LargeAnswerOver1232BytesGoesTcpAndKeepsEveryAddress) {
  for (int i = 1; i <= 150; ++i) dns_->add_a("many.example.com", "198.51.100." + std::to_string(i), 1000 + i);
  auto r = resolve("many.example.com");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->addrs.size(), 150u);
  for (int i = 1; i <= 150; ++i) {
    EXPECT_EQ(r->addrs[static_cast<size_t>(i - 1)],
              (ResolvedAddr{ip(("198.51.100." + std::to_string(i)).c_str()), static_cast<uint32_t>(1000 + i)}));
  }
  EXPECT_GE(dns_->tcp_query_count(), 1u);
}

TEST_F(ResolverTest, DuplicateAddressKeepsTheSmallestTtl) {
  dns_->add_a("dup.example.com", "192.0.2.5", 500);
  dns_->add_a("dup.example.com", "192.0.2.5", 50);
  auto r = resolve("dup.example.com");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->addrs.size(), 1u);
  EXPECT_EQ(r->addrs[0].ttl, 50u);
}

TEST_F(ResolverTest, InvalidNameFailsFromTheLoop) {
  auto r = resolve(std::string(300, 'a'));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a valid host name"), std::string::npos) << r.error().message;
  auto r2 = resolve("bad..example.com");
  EXPECT_FALSE(r2.ok());
  auto r3 = resolve("");
  EXPECT_FALSE(r3.ok());
  EXPECT_EQ(dns_->query_count(), 0u);
}

TEST_F(ResolverTest, ManyNamesConcurrentlyOnTheLoop) {
  constexpr int kNames = 300;
  for (int i = 0; i < kNames; ++i) {
    std::string n = "host" + std::to_string(i) + ".example.com";
    dns_->add_a(n, "192.0.2." + std::to_string(i % 250 + 1), static_cast<uint32_t>(i + 1));
    dns_->set_delay(n, kAnyType, 50ms);
  }
  auto& res = resolver(2000ms, 1);
  int done = 0, good = 0;
  auto start = EventLoop::now();
  for (int i = 0; i < kNames; ++i) {
    res.resolve("host" + std::to_string(i) + ".example.com", [&, i](Result<Resolution> r) {
      ++done;
      if (r.ok() && r->addrs.size() == 1 && r->addrs[0].ttl == static_cast<uint32_t>(i + 1) &&
          r->addrs[0].addr == ip(("192.0.2." + std::to_string(i % 250 + 1)).c_str()))
        ++good;
      else if (!r.ok())
        ADD_FAILURE() << r.error().message;
    });
  }
  EXPECT_EQ(res.pending(), static_cast<size_t>(kNames));
  run_until([&] { return done == kNames; }, 10s);
  auto took = EventLoop::now() - start;
  EXPECT_EQ(done, kNames);
  EXPECT_EQ(good, kNames);
  EXPECT_EQ(res.pending(), 0u);
  // Sequentially this would take 300 x 50ms = 15s.
  EXPECT_LT(took, 3s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << "ms";
}

TEST_F(ResolverTest, CallbackMayDestroyTheResolver) {
  dns_->add_a("a.example.com", "192.0.2.1", 10);
  dns_->add_a("b.example.com", "192.0.2.2", 10);
  auto& res = resolver();
  int calls = 0;
  for (const char* n : {"a.example.com", "b.example.com"}) {
    res.resolve(n, [&](Result<Resolution>) {
      ++calls;
      resolver_.reset();
    });
  }
  run_until([&] { return calls > 0; });
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(loop_->run_once(10ms).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop_->fd_count(), 0u);
  EXPECT_EQ(loop_->timer_count(), 0u);
}

TEST_F(ResolverTest, CallbackMayResolveAgain) {
  dns_->add_a("first.example.com", "192.0.2.1", 10);
  dns_->add_a("second.example.com", "192.0.2.2", 20);
  auto& res = resolver();
  std::optional<Result<Resolution>> second;
  res.resolve("first.example.com", [&](Result<Resolution> r) {
    ASSERT_TRUE(r.ok());
    res.resolve("second.example.com", [&](Result<Resolution> r2) { second.emplace(std::move(r2)); });
  });
  run_until([&] { return second.has_value(); });
  ASSERT_TRUE(second && second->ok());
  EXPECT_EQ((*second)->addrs.at(0).ttl, 20u);
}

TEST_F(ResolverTest, DestroyWithPendingQueriesCallsNothing) {
  dns_->set_drop("slow.example.com", kAnyType);
  auto& res = resolver(1000ms, 3);
  bool called = false;
  res.resolve("slow.example.com", [&](Result<Resolution>) { called = true; });
  ASSERT_TRUE(dns_->wait_for_queries(2, 2s));
  ASSERT_TRUE(loop_->run_once(10ms).ok());
  EXPECT_GT(loop_->fd_count(), 0u);
  resolver_.reset();
  EXPECT_EQ(loop_->fd_count(), 0u);
  EXPECT_EQ(loop_->timer_count(), 0u);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(loop_->run_once(10ms).ok());
  EXPECT_FALSE(called);
}

TEST_F(ResolverTest, CancelAllFailsPending) {
  dns_->set_drop("slow.example.com", kAnyType);
  auto& res = resolver(1000ms, 3);
  std::optional<Result<Resolution>> out;
  res.resolve("slow.example.com", [&](Result<Resolution> r) { out.emplace(std::move(r)); });
  res.cancel_all();
  EXPECT_FALSE(out.has_value());
  run_until([&] { return out.has_value(); }, 500ms);
  ASSERT_TRUE(out.has_value());
  ASSERT_FALSE(out->ok());
  EXPECT_NE(out->error().message.find("cancelled"), std::string::npos) << out->error().message;
}

TEST_F(ResolverTest, SetServersWhileBusyIsAppliedWhenIdle) {
  auto other = MockDnsServer::start();
  ASSERT_TRUE(other.ok()) << other.error().message;
  dns_->add_a("x.example.com", "192.0.2.1", 10);
  dns_->set_delay("x.example.com", kAnyType, 50ms);
  (*other)->add_a("x.example.com", "192.0.2.2", 10);
  auto& res = resolver();
  std::optional<Result<Resolution>> first;
  res.resolve("x.example.com", [&](Result<Resolution> r) { first.emplace(std::move(r)); });
  ASSERT_TRUE(res.set_servers({(*other)->endpoint()}).ok());
  EXPECT_FALSE(res.set_servers({"not-an-ip"}).ok());
  run_until([&] { return first.has_value(); });
  ASSERT_TRUE(first && first->ok());
  EXPECT_EQ((*first)->addrs.at(0).addr, ip("192.0.2.1"));  // the old server answered
  auto second = resolve("x.example.com");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->addrs.at(0).addr, ip("192.0.2.2"));  // then the new one
  EXPECT_EQ((*other)->query_count(), 2u);
}

TEST_F(ResolverTest, FailsOverToTheSecondServer) {
  auto good = MockDnsServer::start();
  ASSERT_TRUE(good.ok());
  (*good)->add_a("f.example.com", "192.0.2.9", 10);
  dns_->set_rcode("f.example.com", kAnyType, Rcode::kServFail);
  ResolverOptions o;
  o.servers = {dns_->endpoint(), (*good)->endpoint()};
  o.timeout = 200ms;
  auto r = Resolver::create(*loop_, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  resolver_ = std::move(r).value();
  auto res = resolve("f.example.com");
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->addrs.at(0).addr, ip("192.0.2.9"));
  EXPECT_GE(dns_->query_count(), 1u);
}

TEST_F(ResolverTest, TcpOnlyOption) {
  dns_->add_a("t.example.com", "192.0.2.4", 10);
  ResolverOptions o;
  o.servers = {dns_->endpoint()};
  o.use_tcp = true;
  auto r = Resolver::create(*loop_, o);
  ASSERT_TRUE(r.ok());
  resolver_ = std::move(r).value();
  auto res = resolve("t.example.com");
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(dns_->tcp_query_count(), dns_->query_count());
  EXPECT_EQ(dns_->query_count(), 2u);
}

TEST_F(ResolverTest, Ipv6ServerOverUdpAndTcp) {
  auto v6 = MockDnsServer::start("::1");
  if (!v6.ok()) AMLFW_SKIP_OR_FAIL_IN_CI("no IPv6 loopback: " + v6.error().message);
  (*v6)->add_aaaa("six.example.com", "2001:db8::6", 66);
  (*v6)->set_truncate("six.example.com", kTypeAaaa);
  (*v6)->set_delay("six.example.com", kTypeAaaa, 20ms);  // the delayed TCP reply path too
  EXPECT_EQ((*v6)->endpoint(), "[::1]:" + std::to_string((*v6)->port()));
  ResolverOptions o;
  o.servers = {(*v6)->endpoint()};
  auto r = Resolver::create(*loop_, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  resolver_ = std::move(r).value();
  auto res = resolve("six.example.com");
  ASSERT_TRUE(res.ok()) << res.error().message;
  ASSERT_EQ(res->addrs.size(), 1u);
  EXPECT_EQ(res->addrs[0], (ResolvedAddr{ip("2001:db8::6"), 66}));
  EXPECT_EQ((*v6)->tcp_query_count(), 1u);
}

TEST(ResolverServers, ParseServer) {
  auto a = parse_server("192.0.2.53");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->addr, *IpAddr::parse("192.0.2.53"));
  EXPECT_EQ(a->port, 53);
  auto b = parse_server("192.0.2.53:5353");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, 5353);
  auto c = parse_server("2001:db8::53");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->addr.v6);
  EXPECT_EQ(c->port, 53);
  auto d = parse_server("[2001:db8::53]:8053");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->addr, *IpAddr::parse("2001:db8::53"));
  EXPECT_EQ(d->port, 8053);
  auto e = parse_server("[2001:db8::53]");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->port, 53);
  for (const char* bad : {"", "dns.example.com", "192.0.2.53:", "192.0.2.53:0", "192.0.2.53:65536", "192.0.2.53:x",
                          "[2001:db8::53", "[2001:db8::53]x", "fe80::1%eth0", "300.1.1.1", "[192.0.2.1]:53:1"}) {
    auto r = parse_server(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Exit::kUsage);
      EXPECT_NE(r.error().message.find("dns server"), std::string::npos);
    }
  }
}

TEST(ResolverServers, CreateRejectsBadOptions) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  ResolverOptions o;
  EXPECT_FALSE(Resolver::create(**loop, o).ok());  // no server
  o.servers = {"192.0.2.1", "nonsense"};
  auto r = Resolver::create(**loop, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nonsense"), std::string::npos);
  o.servers = {"127.0.0.1"};
  o.tries = 0;
  EXPECT_FALSE(Resolver::create(**loop, o).ok());
}

TEST(ResolveAll, ManyNamesWithFailuresAndDeadline) {
  auto srv = MockDnsServer::start();
  ASSERT_TRUE(srv.ok()) << srv.error().message;
  auto& dns = **srv;
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) {
    names.push_back("n" + std::to_string(i) + ".example.org");
    dns.add_a(names.back(), "203.0.113." + std::to_string(i % 200 + 1), static_cast<uint32_t>(100 + i));
    dns.add_aaaa(names.back(), "2001:db8::" + std::to_string(i + 1), static_cast<uint32_t>(50 + i));
    dns.set_delay(names.back(), kAnyType, 30ms);
  }
  names.push_back("missing.example.org");  // NXDOMAIN
  names.push_back("fail.example.org");
  dns.set_rcode("fail.example.org", kAnyType, Rcode::kServFail);
  names.push_back("hang.example.org");
  dns.set_drop("hang.example.org", kAnyType);

  ResolverOptions o;
  o.servers = {dns.endpoint()};
  o.timeout = 5000ms;  // longer than the deadline: the deadline must cut it
  o.tries = 1;
  auto start = EventLoop::now();
  auto r = resolve_all(names, o, 1500ms);
  auto took = EventLoop::now() - start;
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), names.size());
  for (int i = 0; i < 200; ++i) {
    const auto& x = (*r)[static_cast<size_t>(i)];
    ASSERT_TRUE(x.ok()) << names[static_cast<size_t>(i)] << ": " << x.error().message;
    EXPECT_EQ(x->name, names[static_cast<size_t>(i)]);
    ASSERT_EQ(x->addrs.size(), 2u);
    EXPECT_EQ(x->addrs[0].ttl, static_cast<uint32_t>(100 + i));
    EXPECT_EQ(x->addrs[1].ttl, static_cast<uint32_t>(50 + i));
    EXPECT_EQ(x->addrs[1].addr, ip(("2001:db8::" + std::to_string(i + 1)).c_str()));
  }
  ASSERT_TRUE((*r)[200].ok());
  EXPECT_TRUE((*r)[200]->nxdomain);
  ASSERT_FALSE((*r)[201].ok());
  EXPECT_NE((*r)[201].error().message.find("SERVFAIL"), std::string::npos);
  ASSERT_FALSE((*r)[202].ok());
  EXPECT_NE((*r)[202].error().message.find("no answer within 1500ms"), std::string::npos) << (*r)[202].error().message;
  EXPECT_GE(took, 1500ms);
  EXPECT_LT(took, 4s);
}

TEST(ResolveAll, FinishesAsSoonAsAllAnswered) {
  auto srv = MockDnsServer::start();
  ASSERT_TRUE(srv.ok());
  (*srv)->add_a("one.example.org", "192.0.2.1", 5);
  auto start = EventLoop::now();
  auto r = resolve_all({"one.example.org"}, std::vector<std::string>{(*srv)->endpoint()}, 10s);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE((*r)[0].ok());
  EXPECT_LT(EventLoop::now() - start, 2s);
  auto empty = resolve_all({}, std::vector<std::string>{(*srv)->endpoint()}, 10s);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto bad = resolve_all({"x"}, std::vector<std::string>{"bogus"}, 1s);
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace amlfw
