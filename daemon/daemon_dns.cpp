// SPDX-License-Identifier: MIT
// Daemon: the DNS proxy (SPEC guarantee 6). Started after the policy is programmed and the
// learned addresses of the last run are taught again, so no answer is served before the
// kernel enforces what earlier answers allowed.
#include <algorithm>

#include "daemon/daemon.h"
#include "daemon/daemon_dns.h"
#include "daemon/log.h"
#include "policy/render_nft.h"

namespace amlfw {
namespace {

using std::chrono::seconds;

constexpr auto kBindRetry = seconds(5);
constexpr auto kPruneEvery = seconds(60);
constexpr unsigned kNoticeBurst = 20;  // lines a minute

Result<DnsProxyOptions> proxy_options(const Config& c, const DnsUpstreams& ups) {
  DnsProxyOptions o;
  auto listen = parse_socket_address(c.dns.listen, 53);
  if (!listen.ok()) return usage_error(c.path + ": dns.listen: " + listen.error().message);
  o.listen.push_back(*listen);
  for (const auto& a : ups.addrs) o.upstreams.push_back(SocketAddress{a, ups.port});
  o.so_mark = c.dns.redirect ? kDnsProxyMark : 0;
  return o;
}

}  // namespace

std::vector<std::string> Daemon::dns_groups(std::string_view name) {
  auto groups = groups_for_name(policy_, name);
  if (groups.empty()) return groups;
  DnsRuntime& d = *dns_;
  if (d.groups_generation != generation_) {
    d.live_groups.clear();
    for (const auto& g : group_rules(policy_))
      if (g.has_names && g.enforced && g.direction == Direction::kEgress) d.live_groups.push_back(g.name);
    d.groups_generation = generation_;
  }
  std::erase_if(groups, [&](const std::string& g) {
    return std::find(d.live_groups.begin(), d.live_groups.end(), g) == d.live_groups.end();
  });
  return groups;
}

void Daemon::dns_notice(const std::string& line) {
  DnsRuntime& d = *dns_;
  const auto now = EventLoop::now();
  if (now - d.notice_window >= std::chrono::minutes(1)) {
    if (d.suppressed > 0) LOG_WARN("dns proxy: %u more such line(s) in the last minute not logged", d.suppressed);
    d.notice_window = now;
    d.notices = 0;
    d.suppressed = 0;
  }
  if (d.notices++ < kNoticeBurst) {
    LOG_WARN("dns proxy: %s", line.c_str());
  } else {
    ++d.suppressed;
  }
}

void Daemon::open_dns_proxy() {
  DnsRuntime& d = *dns_;
  auto p = DnsProxy::create(*loop_, *d.learner, d.options);
  if (!p.ok()) {
    if (p.error().message != d.last_bind_error)
      LOG_ERR("%s; wildcard names are not learned until it works (retrying every %llds)", p.error().message.c_str(),
              static_cast<long long>(kBindRetry.count()));
    d.last_bind_error = p.error().message;
    if (d.retry_timer == 0) d.retry_timer = loop_->add_timer([this] { open_dns_proxy(); });
    loop_->arm_timer(d.retry_timer, kBindRetry);
    return;
  }
  d.proxy = std::move(*p);
  d.last_bind_error.clear();
  std::string where;
  for (const auto& b : d.proxy->bound()) where += (where.empty() ? "" : ", ") + b.str();
  LOG_INFO("dns proxy: serving on %s (udp, tcp), %zu upstream(s)%s", where.c_str(), d.options.upstreams.size(),
           config_.dns.redirect ? ", local DNS redirected here" : "");
}

Status Daemon::start_dns() {
  auto opts = proxy_options(config_, upstreams_);
  if (!opts.ok()) return opts.error();
  dns_ = std::make_unique<DnsRuntime>();
  DnsRuntime& d = *dns_;
  d.options = std::move(*opts);
  d.learner = std::make_unique<DnsLearner>(
      *enforcer_, [this](std::string_view n) { return dns_groups(n); }, LearnLimits::from(config_.dns),
      config_.dns.max_learned);
  d.learner->set_notice([this](const std::string& l) { dns_notice(l); });
  d.learner->set_on_learned(
      [this](std::string_view name, const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs) {
        record_learned(std::string(name), groups, addrs);
      });
  // What restore_learned() taught again counts against dns.max_learned.
  const int64_t now = std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& r : learned_.records(now)) {
    if (r.expires_at <= now) continue;
    d.learner->seed(dns_groups(r.name), r.addr, static_cast<uint32_t>(std::min<int64_t>(r.expires_at - now, 1 << 30)));
  }
  d.prune_timer = loop_->add_timer([this] { dns_->learner->prune(); });
  loop_->arm_timer(d.prune_timer, kPruneEvery, kPruneEvery);
  if (d.options.upstreams.empty())
    LOG_WARN("dns proxy: no upstream (dns.upstreams empty and no usable nameserver in /etc/resolv.conf): "
             "every query gets SERVFAIL");
  open_dns_proxy();
  return {};
}

void Daemon::reload_dns() {
  if (!dns_) return;
  DnsRuntime& d = *dns_;
  auto opts = proxy_options(config_, upstreams_);
  if (!opts.ok()) {
    LOG_ERR("dns proxy: %s; it keeps its old settings", opts.error().message.c_str());
    return;
  }
  d.learner->set_limits(LearnLimits::from(config_.dns), config_.dns.max_learned);
  const bool reopen = !d.proxy || opts->listen != d.options.listen || opts->so_mark != d.options.so_mark;
  d.options = std::move(*opts);
  if (!reopen) {
    d.proxy->set_upstreams(d.options.upstreams);
    return;
  }
  d.proxy.reset();  // unbinds first: the new one may take the same port
  if (d.retry_timer != 0) loop_->disarm_timer(d.retry_timer);
  open_dns_proxy();
}

void Daemon::stop_dns() {
  if (!dns_) return;
  if (dns_->proxy) {
    const DnsProxyStats& s = dns_->proxy->stats();
    const DnsLearnStats& l = dns_->learner->stats();
    LOG_INFO("dns proxy: %llu queries (%llu tcp), %llu answers (%llu taught the kernel first), SERVFAIL: %llu upstream, "
             "%llu learn, %llu bad answer; %llu FORMERR/NOTIMP, %llu dropped, %llu pending overflow, %llu tcp refused; "
             "not learned: %llu special-use, %llu over the per-name bound, %llu over dns.max_learned",
             static_cast<unsigned long long>(s.queries_udp + s.queries_tcp),
             static_cast<unsigned long long>(s.queries_tcp), static_cast<unsigned long long>(s.answers),
             static_cast<unsigned long long>(s.learned_answers), static_cast<unsigned long long>(s.servfail_upstream),
             static_cast<unsigned long long>(s.servfail_learn), static_cast<unsigned long long>(s.servfail_bad_answer),
             static_cast<unsigned long long>(s.formerr), static_cast<unsigned long long>(s.dropped),
             static_cast<unsigned long long>(s.pending_overflow), static_cast<unsigned long long>(s.tcp_refused),
             static_cast<unsigned long long>(l.refused_special), static_cast<unsigned long long>(l.over_name_bound),
             static_cast<unsigned long long>(l.over_total_bound));
  }
  dns_->proxy.reset();
  if (dns_->retry_timer != 0) loop_->remove_timer(dns_->retry_timer);
  if (dns_->prune_timer != 0) loop_->remove_timer(dns_->prune_timer);
  dns_.reset();
}

}  // namespace amlfw
