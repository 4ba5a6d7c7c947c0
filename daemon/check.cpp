// SPDX-License-Identifier: MIT
#include "daemon/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "daemon/fd.h"
#include "daemon/resolver.h"

namespace amlfw {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string seconds_text(milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

std::string addr_port(const IpAddr& a, uint16_t port) {
  return a.v6 ? "[" + a.str() + "]:" + std::to_string(port) : a.str() + ":" + std::to_string(port);
}

// The ports probed for one rule: single ports as they are, the first ports of a range,
// 443 for "every port" (the usual HTTPS endpoint), at most kMaxPortsPerRule in all.
std::vector<uint16_t> pick_ports(const std::vector<PortRange>& ranges) {
  std::vector<uint16_t> out;
  for (const auto& r : ranges) {
    if (r.all()) {
      out.push_back(443);
      continue;
    }
    for (uint32_t p = r.lo; p <= r.hi && out.size() < kMaxPortsPerRule; ++p) out.push_back(static_cast<uint16_t>(p));
    if (out.size() >= kMaxPortsPerRule) break;
  }
  if (out.empty()) out.push_back(443);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.size() > kMaxPortsPerRule) out.resize(kMaxPortsPerRule);
  return out;
}

// Severity for aggregating an endpoint's addresses: the worst one wins.
int severity(CheckStatus s) {
  switch (s) {
    case CheckStatus::kBlocked: return 5;
    case CheckStatus::kRefused: return 4;
    case CheckStatus::kTimeout: return 3;
    case CheckStatus::kUnreachable: return 2;
    case CheckStatus::kDnsFailure: return 1;
    default: return 0;
  }
}

CheckStatus status_of_errno(int err) {
  switch (err) {
    case 0: return CheckStatus::kReachable;
    case ETIMEDOUT: return CheckStatus::kTimeout;
    case ENETUNREACH:
    case ENETDOWN:
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT: return CheckStatus::kUnreachable;
    default: return CheckStatus::kRefused;  // ECONNREFUSED, EPERM, EACCES, EHOSTUNREACH ...
  }
}

socklen_t to_sockaddr(const IpAddr& a, uint16_t port, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof *ss);
  if (a.v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    a.to_bytes(reinterpret_cast<uint8_t*>(&s6->sin6_addr));
    return sizeof *s6;
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(port);
  a.to_bytes(reinterpret_cast<uint8_t*>(&s4->sin_addr));
  return sizeof *s4;
}

// A connect in progress.
struct Pending {
  size_t job = 0;
  Fd fd;
  Clock::time_point started, deadline;
};

// Starts a non-blocking connect. Returns the errno when it finished at once (0: connected).
std::optional<int> start_connect(const IpAddr& a, uint16_t port, Fd* out) {
  Fd fd(::socket(a.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno;
  sockaddr_storage ss;
  const socklen_t len = to_sockaddr(a, port, &ss);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  *out = std::move(fd);
  return std::nullopt;
}

struct Job {
  IpAddr addr;
  uint16_t port = 0;
  AddrProbe result;
};

void finish_job(Job& j, int err, double ms, milliseconds connect_timeout) {
  j.result.addr = j.addr;
  j.result.ms = ms;
  j.result.status = status_of_errno(err);
  if (err == ETIMEDOUT) j.result.detail = "no answer within " + seconds_text(connect_timeout);
  else if (err != 0) j.result.detail = std::strerror(err);
  else j.result.detail.clear();
}

// Runs every job, `concurrency` at a time, each within connect_timeout, all before `until`.
void run_jobs(std::vector<Job>& jobs, size_t concurrency, milliseconds connect_timeout, Clock::time_point until,
              milliseconds total_timeout) {
  concurrency = std::max<size_t>(concurrency, 1);
  std::vector<Pending> pending;
  size_t next = 0;
  while (next < jobs.size() || !pending.empty()) {
    while (next < jobs.size() && pending.size() < concurrency) {
      Job& j = jobs[next];
      const auto now = Clock::now();
      if (now >= until) {
        finish_job(j, ETIMEDOUT, 0, connect_timeout);
        j.result.detail = "not tried: the total time of " + seconds_text(total_timeout) + " ran out";
        ++next;
        continue;
      }
      Fd fd;
      auto done = start_connect(j.addr, j.port, &fd);
      if (done) {
        finish_job(j, *done, ms_since(now), connect_timeout);
      } else {
        pending.push_back(Pending{next, std::move(fd), now, std::min(now + connect_timeout, until)});
      }
      ++next;
    }
    if (pending.empty()) continue;
    auto now = Clock::now();
    auto first = std::min_element(pending.begin(), pending.end(),
                                  [](const Pending& a, const Pending& b) { return a.deadline < b.deadline; })->deadline;
    const auto wait_ms = std::max<int64_t>(
        0, std::chrono::duration_cast<milliseconds>(first - now).count() + 1);
    std::vector<pollfd> pfds;
    pfds.reserve(pending.size());
    for (const auto& p : pending) pfds.push_back(pollfd{p.fd.get(), POLLOUT, 0});
    int n = ::poll(pfds.data(), pfds.size(), static_cast<int>(std::min<int64_t>(wait_ms, 1000)));
    if (n < 0 && errno != EINTR) {
      const int e = errno;
      for (auto& p : pending) finish_job(jobs[p.job], e, ms_since(p.started), connect_timeout);
      pending.clear();
      continue;
    }
    now = Clock::now();
    std::vector<Pending> still;
    for (size_t i = 0; i < pending.size(); ++i) {
      Pending& p = pending[i];
      if (n > 0 && pfds[i].revents != 0) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(p.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        finish_job(jobs[p.job], err, ms_since(p.started), connect_timeout);
      } else if (now >= p.deadline) {
        finish_job(jobs[p.job], ETIMEDOUT, ms_since(p.started), connect_timeout);
        if (p.deadline < p.started + connect_timeout)
          jobs[p.job].result.detail = "no answer before the total time of " + seconds_text(total_timeout) + " ran out";
      } else {
        still.push_back(std::move(p));
      }
    }
    pending = std::move(still);
  }
}

// One line for the table: what happened to the worst address.
std::string describe(const EndpointResult& e) {
  if (e.status == CheckStatus::kNotProbed || e.status == CheckStatus::kDnsFailure) return e.detail;
  std::string s;
  for (const auto& a : e.addrs) {
    if (!s.empty()) s += "; ";
    s += addr_port(a.addr, e.target.port);
    if (a.status == CheckStatus::kReachable) {
      char buf[32];
      std::snprintf(buf, sizeof buf, " %.1f ms", a.ms);
      s += buf;
      continue;
    }
    s += " " + std::string(to_string(a.status)) + (a.detail.empty() ? "" : " (" + a.detail + ")");
    if (a.judgement) {
      if (a.status == CheckStatus::kBlocked) s += ": blocked by amlfw: " + a.judgement->why;
      else if (a.judgement->allow)
        s += std::string(a.status == CheckStatus::kTimeout ? ": dropped on the way or by the endpoint"
                         : a.status == CheckStatus::kRefused ? ": refused by the endpoint or a firewall on the way"
                                                             : "") +
             " (amlfw allows it: " + a.judgement->rule + ")";
      else s += "; amlfw would not allow it either: " + a.judgement->why;
    }
  }
  return s;
}

}  // namespace

std::string_view to_string(CheckStatus s) {
  switch (s) {
    case CheckStatus::kReachable: return "reachable";
    case CheckStatus::kBlocked: return "blocked";
    case CheckStatus::kRefused: return "refused";
    case CheckStatus::kTimeout: return "timeout";
    case CheckStatus::kUnreachable: return "unreachable";
    case CheckStatus::kDnsFailure: return "dns-failure";
    case CheckStatus::kNotProbed: return "not-probed";
  }
  return "?";
}

std::optional<IpAddr> sample_address(const PrefixSet& s) {
  if (!s.v4().empty()) {
    const Range4 r = s.v4().front();
    return IpAddr::v4addr(r.hi > r.lo ? r.lo + 1 : r.lo);
  }
  if (!s.v6().empty()) {
    const Range6 r = s.v6().front();
    return IpAddr::v6addr(r.hi > r.lo ? r.lo + 1 : r.lo);
  }
  return std::nullopt;
}

std::vector<CheckTarget> plan_check(const Policy& p, const CheckPlanOptions& o) {
  std::vector<CheckTarget> out;
  std::map<std::string, size_t> index;  // "host|port|proto" -> out position
  std::vector<std::string> known;
  for (const auto& n : o.known_names) {
    std::string norm;
    if (normalize_dns_name(n, &norm)) known.push_back(norm);
  }
  std::sort(known.begin(), known.end());
  known.erase(std::unique(known.begin(), known.end()), known.end());

  auto add = [&](CheckTarget t, const std::string& rule_id) {
    std::string key = (t.host.empty() ? (t.addr ? t.addr->str() : "~" + t.pattern) : t.host) + "|" +
                      std::to_string(t.port) + "|" + std::string(to_string(t.proto)) + "|" + (t.probe ? "p" : "n");
    if (auto it = index.find(key); it != index.end()) {
      auto& ids = out[it->second].rule_ids;
      if (std::find(ids.begin(), ids.end(), rule_id) == ids.end()) ids.push_back(rule_id);
      return;
    }
    t.rule_ids = {rule_id};
    index.emplace(std::move(key), out.size());
    out.push_back(std::move(t));
  };

  for (const auto& r : p.rules) {
    if (r.direction != Direction::kEgress) continue;
    const auto ports = pick_ports(r.ports);
    CheckTarget base;
    base.pattern = r.dest;
    base.rule_ports = r.ports;
    base.kind = r.kind;
    base.proto = r.proto == Proto::kUdp ? Proto::kUdp : Proto::kTcp;
    if (r.proto == Proto::kUdp) {
      CheckTarget t = base;
      t.port = ports.front();
      t.probe = false;
      t.note = "UDP: not probed (no handshake tells an answer from a silent drop)";
      if (r.kind == DestKind::kFqdn && r.pattern.kind() == NamePattern::Kind::kExact) t.host = r.pattern.base();
      add(std::move(t), r.id);
      continue;
    }
    if (r.kind == DestKind::kFqdn) {
      std::vector<std::pair<std::string, std::string>> names;  // name, note
      if (r.pattern.kind() == NamePattern::Kind::kExact) {
        names.emplace_back(r.pattern.base(), "");
      } else {
        if (o.wildcard_samples && r.pattern.kind() == NamePattern::Kind::kApexAndSubdomains)
          names.emplace_back(r.pattern.base(), "sample of " + r.dest);
        for (const auto& k : known)
          if (r.pattern.matches(k) && (names.empty() || names.front().first != k)) {
            names.emplace_back(k, "sample of " + r.dest);
            break;
          }
      }
      if (names.empty()) {
        CheckTarget t = base;
        t.port = ports.front();
        t.probe = false;
        t.note = "wildcard: nothing concrete to probe (no known name under it)";
        add(std::move(t), r.id);
        continue;
      }
      for (const auto& [name, note] : names)
        for (uint16_t port : ports) {
          CheckTarget t = base;
          t.host = name;
          t.port = port;
          t.note = note;
          add(std::move(t), r.id);
        }
      continue;
    }
    // Service tags and CIDRs: one address, when asked.
    const bool tag = r.kind == DestKind::kServiceTag;
    auto addr = sample_address(r.prefixes);
    if (!o.probe_ranges || !addr) {
      CheckTarget t = base;
      t.port = ports.front();
      t.probe = false;
      t.note = !addr ? std::string(tag ? "service tag" : "CIDR") + " with no address loaded"
                     : std::string(tag ? "service tag" : "CIDR") + ": not probed (--probe-tags probes one address)";
      add(std::move(t), r.id);
      continue;
    }
    for (uint16_t port : ports) {
      CheckTarget t = base;
      t.addr = addr;
      t.port = port;
      t.note = "one address of " + r.dest;
      add(std::move(t), r.id);
    }
  }
  return out;
}

AddrProbe probe_tcp(const IpAddr& a, uint16_t port, milliseconds timeout) {
  std::vector<Job> jobs(1);
  jobs[0].addr = a;
  jobs[0].port = port;
  run_jobs(jobs, 1, timeout, Clock::now() + timeout + milliseconds(1000), timeout + milliseconds(1000));
  return jobs[0].result;
}

Result<CheckReport> run_check(const std::vector<CheckTarget>& targets, const CheckOptions& o) {
  const auto t0 = Clock::now();
  const auto until = t0 + o.total_timeout;
  CheckReport rep;
  rep.endpoints.resize(targets.size());

  // 1. Names, resolved all at once.
  std::vector<std::string> names;
  for (const auto& t : targets)
    if (t.probe && !t.host.empty() && std::find(names.begin(), names.end(), t.host) == names.end())
      names.push_back(t.host);
  std::map<std::string, Result<Resolution>> resolved;
  if (!names.empty()) {
    if (o.dns_servers.empty()) {
      for (const auto& n : names)
        resolved.emplace(n, runtime_error("no DNS server to ask (dns.upstreams is empty and /etc/resolv.conf lists "
                                          "none but the proxy)"));
    } else {
      ResolverOptions ro;
      ro.servers = o.dns_servers;
      ro.timeout = std::min<milliseconds>(o.dns_timeout / 2, milliseconds(2000));
      ro.tries = 2;
      auto res = resolve_all(names, ro, std::min<milliseconds>(o.dns_timeout, o.total_timeout));
      if (!res.ok()) return std::move(res).error().context("check: resolver");
      for (size_t i = 0; i < names.size(); ++i) resolved.emplace(names[i], std::move((*res)[i]));
    }
  }

  // 2. Addresses to connect to: one IPv4 and one IPv6 per name, the tag's sample address.
  std::vector<Job> jobs;
  std::map<std::pair<IpAddr, uint16_t>, size_t> job_of;
  std::vector<std::vector<size_t>> jobs_of(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    const CheckTarget& t = targets[i];
    EndpointResult& e = rep.endpoints[i];
    e.target = t;
    if (!t.probe) {
      e.status = CheckStatus::kNotProbed;
      e.detail = t.note;
      continue;
    }
    std::vector<IpAddr> addrs;
    if (t.addr) {
      addrs.push_back(*t.addr);
    } else {
      const auto& r = resolved.at(t.host);
      if (!r.ok()) {
        e.status = CheckStatus::kDnsFailure;
        e.detail = "DNS: " + r.error().message;
        continue;
      }
      if (r->addrs.empty()) {
        e.status = CheckStatus::kDnsFailure;
        e.detail = std::string("DNS: ") + (r->nxdomain ? "no such name (NXDOMAIN)" : "no address in the answer") +
                   (r->partial_error.empty() ? "" : "; " + r->partial_error);
        continue;
      }
      bool v4 = false, v6 = false;
      for (const auto& a : r->addrs) {
        bool& seen = a.addr.v6 ? v6 : v4;
        if (seen) continue;
        seen = true;
        addrs.push_back(a.addr);
      }
    }
    for (const auto& a : addrs) {
      auto key = std::make_pair(a, t.port);
      auto it = job_of.find(key);
      if (it == job_of.end()) {
        it = job_of.emplace(key, jobs.size()).first;
        Job j;
        j.addr = a;
        j.port = t.port;
        jobs.push_back(std::move(j));
      }
      jobs_of[i].push_back(it->second);
    }
  }

  // 3. Connect.
  run_jobs(jobs, o.concurrency, o.connect_timeout, until, o.total_timeout);

  // 4. Judge the failures, aggregate per endpoint.
  for (size_t i = 0; i < targets.size(); ++i) {
    EndpointResult& e = rep.endpoints[i];
    if (jobs_of[i].empty()) continue;
    for (size_t j : jobs_of[i]) {
      AddrProbe a = jobs[j].result;
      if (a.status != CheckStatus::kReachable && o.judge) {
        a.judgement = o.judge(a.addr, targets[i].port, targets[i].proto, targets[i].host);
        const bool fast_error = a.status == CheckStatus::kRefused;
        if (fast_error && !a.judgement->allow) a.status = CheckStatus::kBlocked;
      }
      e.addrs.push_back(std::move(a));
    }
    // An address family without a route does not count while another address works.
    bool any_routed = std::any_of(e.addrs.begin(), e.addrs.end(),
                                  [](const AddrProbe& a) { return a.status != CheckStatus::kUnreachable; });
    e.status = CheckStatus::kReachable;
    for (const auto& a : e.addrs) {
      if (a.status == CheckStatus::kUnreachable && any_routed) continue;
      if (severity(a.status) > severity(e.status)) e.status = a.status;
    }
    e.detail = describe(e);
  }
  for (const auto& e : rep.endpoints) {
    if (e.status == CheckStatus::kReachable) ++rep.reachable;
    else if (e.status == CheckStatus::kNotProbed) ++rep.not_probed;
    else ++rep.failed;
  }
  rep.elapsed_ms = ms_since(t0);
  return rep;
}

}  // namespace amlfw
