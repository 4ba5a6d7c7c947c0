// SPDX-License-Identifier: MIT
// The Prometheus exposition (every line well-formed, every family typed, labels escaped),
// the HTTP answers of the metrics listener, and a scrape over TCP on loopback through the
// bounded StreamServer.
#include "daemon/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/control.h"

namespace amlfw {
namespace {

using namespace std::chrono_literals;

MetricsInput sample() {
  MetricsInput m;
  m.generation = 7;
  m.mode = "enforce";
  m.backend = "nftables";
  m.rules = 42;
  m.prefixes = 1234;
  m.learned_addresses = 17;
  m.service_tags_change = 375;
  m.service_tags_age_s = 3600;
  m.started_at = 1700000000;
  m.counters.resolve_failures = 3;
  m.counters.learn_over_name_limit = 6;
  m.counters.reloads = 2;
  m.rule_counters = {{"output", "NR2,NR3", 10, 1000},
                     {"output", "AR4 \"quoted\" \\ back\nslash", 1, 2},
                     {"output", "deny", 5, 300},
                     {"input", "deny", 1, 60}};
  m.control_clients = 1;
  m.control_oversized = 4;
  return m;
}

// Every line is a comment (# HELP / # TYPE) or `name{labels} value`; every sample's family
// has HELP and TYPE before it; families are not repeated.
void check_exposition(const std::string& text) {
  static const std::regex kSample(R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? -?[0-9]+$)re");
  static const std::regex kHelp(R"re(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)re");
  static const std::regex kType(R"re(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$)re");
  std::set<std::string> helped, typed;
  std::istringstream in(text);
  std::string line;
  ASSERT_EQ(text.back(), '\n');
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      EXPECT_TRUE(helped.insert(m[1]).second) << "HELP twice: " << line;
    } else if (std::regex_match(line, m, kType)) {
      EXPECT_TRUE(typed.insert(m[1]).second) << "TYPE twice: " << line;
      if (m[2] == "counter") {
        EXPECT_EQ(std::string(m[1]).substr(std::string(m[1]).size() - 6), "_total") << line;
      }
    } else if (std::regex_match(line, m, kSample)) {
      EXPECT_TRUE(helped.count(m[1])) << "no HELP before " << line;
      EXPECT_TRUE(typed.count(m[1])) << "no TYPE before " << line;
    } else {
      ADD_FAILURE() << "not an exposition line: '" << line << "'";
    }
  }
}

TEST(Metrics, ExpositionIsWellFormed) {
  const std::string t = render_metrics(sample());
  check_exposition(t);
  EXPECT_NE(t.find("\namlfw_generation 7\n"), std::string::npos);
  EXPECT_NE(t.find("\namlfw_rules 42\n"), std::string::npos);
  EXPECT_NE(t.find("\namlfw_prefixes 1234\n"), std::string::npos);
  EXPECT_NE(t.find("\namlfw_learned_addresses 17\n"), std::string::npos);
  EXPECT_NE(t.find("\namlfw_service_tags_change_number 375\n"), std::string::npos);
  EXPECT_NE(t.find("\namlfw_service_tags_age_seconds 3600\n"), std::string::npos);
  EXPECT_NE(t.find("amlfw_info{mode=\"enforce\",backend=\"nftables\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("amlfw_rule_packets_total{chain=\"output\",rules=\"NR2,NR3\"} 10\n"), std::string::npos);
  EXPECT_NE(t.find("amlfw_rule_bytes_total{chain=\"output\",rules=\"NR2,NR3\"} 1000\n"), std::string::npos);
  EXPECT_NE(t.find("rules=\"AR4 \\\"quoted\\\" \\\\ back\\nslash\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("amlfw_denied_packets_total{chain=\"output\",action=\"reject\"} 5\n"), std::string::npos);
  EXPECT_NE(t.find("amlfw_denied_packets_total{chain=\"input\",action=\"reject\"} 1\n"), std::string::npos);
  EXPECT_EQ(t.find("rules=\"deny\""), std::string::npos);  // deny is not an accepting rule
  EXPECT_NE(t.find("amlfw_errors_total{kind=\"resolve\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("amlfw_bounds_hit_total{bound=\"learn_per_name\"} 6\n"), std::string::npos);
  EXPECT_NE(t.find("amlfw_bounds_hit_total{bound=\"control_request_size\"} 4\n"), std::string::npos);
  EXPECT_NE(t.find("amlfw_reloads_total 2\n"), std::string::npos);
  EXPECT_NE(t.find("amlfw_connections{listener=\"control\"} 1\n"), std::string::npos);
}

TEST(Metrics, AuditModeAndNoData) {
  MetricsInput m;
  m.mode = "audit";
  m.backend = "ebpf";
  m.service_tags_age_s = -1;
  m.counters_ok = false;
  m.rule_counters = {{"output", "audit", 9, 900}};
  const std::string t = render_metrics(m);
  check_exposition(t);
  EXPECT_NE(t.find("amlfw_denied_packets_total{chain=\"output\",action=\"audit\"} 9\n"), std::string::npos);
  EXPECT_NE(t.find("\namlfw_counters_read_ok 0\n"), std::string::npos);
  EXPECT_NE(t.find("\namlfw_service_tags_age_seconds -1\n"), std::string::npos);
}

TEST(Metrics, RejectCountersPickTheEndOfChains) {
  const auto r = reject_counters(sample().rule_counters);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].chain, "output");
  EXPECT_EQ(r[0].packets, 5u);
  EXPECT_EQ(r[1].chain, "input");
}

TEST(Metrics, DeniedTableCountsAndStaysBounded) {
  DeniedTable t(3);
  const IpAddr a = *IpAddr::parse("203.0.113.200"), b = *IpAddr::parse("2001:db8::7"), c = *IpAddr::parse("198.51.100.97");
  t.note(a, 443, 6, 100);
  t.note(a, 443, 6, 101);
  t.note(a, 443, 17, 102);  // another protocol: another entry
  t.note(b, 53, 17, 103);
  auto e = t.entries();
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].dst, a);
  EXPECT_EQ(e[0].count, 2u);
  EXPECT_EQ(e[0].first_seen, 100);
  EXPECT_EQ(e[0].last_seen, 101);
  EXPECT_EQ(e[1].dst, b);  // ties: the most recent first
  // Full: the least recently seen (a:443/tcp, last at 101) makes room, counts notwithstanding.
  t.note(c, 8080, 6, 104);
  e = t.entries();
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(t.evicted(), 1u);
  for (const auto& x : e) EXPECT_FALSE(x.dst == a && x.proto == 6);
  EXPECT_EQ(e[0].dst, c);  // all counts 1 now: the most recent first
  DeniedTable none(0);
  none.note(a, 1, 6, 1);
  EXPECT_EQ(none.size(), 0u);
}

class NoCounters final : public Enforcer {
 public:
  std::string_view name() const override { return "none"; }
  Status apply(const Policy&, const std::vector<PortGroup>&) override { return {}; }
  Status learn(const std::vector<std::string>&, const std::vector<LearnedAddr>&) override { return {}; }
  Status flush() override { return {}; }
};

TEST(Metrics, BackendWithoutCountersGivesNone) {
  NoCounters e;
  auto c = read_rule_counters(e);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->empty());
}

TEST(MetricsHttp, Answers) {
  const std::string body = "amlfw_generation 1\n";
  std::string r = http_metrics_response("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n", body);
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
  EXPECT_NE(r.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
  EXPECT_EQ(r.substr(r.size() - body.size()), body);
  r = http_metrics_response("GET /metrics?x=1 HTTP/1.0\n\n", body);
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK", 0), 0u);
  r = http_metrics_response("HEAD /metrics HTTP/1.1\r\n\r\n", body);
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ(r.find(body), std::string::npos);  // no body for HEAD
  EXPECT_EQ(http_metrics_response("GET / HTTP/1.1\r\n\r\n", body).rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(http_metrics_response("POST /metrics HTTP/1.1\r\n\r\n", body).rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(http_metrics_response("hello\r\n\r\n", body).rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(http_metrics_response("GET /metrics SPDY/3\r\n\r\n", body).rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(http_metrics_response("", body).rfind("HTTP/1.1 400", 0), 0u);
}

// A scrape over TCP on 127.0.0.1 through the StreamServer, as the daemon wires it.
TEST(MetricsHttp, ScrapeOverLoopback) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  SocketAddress a{*IpAddr::parse("127.0.0.1"), 0};  // an ephemeral port
  auto fd = listen_tcp(a);
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  sockaddr_in sin{};
  socklen_t len = sizeof sin;
  ASSERT_EQ(::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&sin), &len), 0);
  const uint16_t port = ntohs(sin.sin_port);
  StreamServer::Limits lim;
  lim.max_clients = 2;
  lim.max_request = 8192;
  StreamServer::Canned canned;
  canned.oversize = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n";
  canned.busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
  const std::string body = render_metrics(sample());
  auto srv = StreamServer::create(
      **loop, std::move(*fd), lim, frame_http_head,
      [&](std::string_view head, const PeerCred&) { return StreamServer::Reply{http_metrics_response(head, body), true}; },
      nullptr, canned);
  ASSERT_TRUE(srv.ok());

  auto fetch = [port](const std::string& request) {
    Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return std::string("connect failed");
    timeval tv{3, 0};
    ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (size_t off = 0; off < request.size();) {
      ssize_t n = ::send(c.get(), request.data() + off, request.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(c.get(), buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  };
  std::string ok, big;
  std::atomic<bool> done{false};
  std::thread t([&] {
    ok = fetch("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    big = fetch("GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(10000, 'a') + "\r\n\r\n");
    done = true;
  });
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (!done && std::chrono::steady_clock::now() < end) ASSERT_TRUE((*loop)->run_once(10ms).ok());
  t.join();
  ASSERT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok.substr(0, 200);
  const auto head_end = ok.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  EXPECT_EQ(ok.substr(head_end + 4), body);
  EXPECT_EQ(big.rfind("HTTP/1.1 431", 0), 0u) << big.substr(0, 100);
  EXPECT_EQ((*srv)->stats().oversized, 1u);
}

}  // namespace
}  // namespace amlfw
